// Fast 64-bit hashing of bytes, for job ids and for recognising analysed frames (not
// cryptographic: it tells frames and settings apart, it does not protect anything).
//
// In: bytes and a seed. Out: 64-bit hashes, and their 16-digit hex text.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>

namespace ipfd::plugin {

inline std::uint64_t mix64(std::uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

inline std::uint64_t hash_bytes(const void* data, std::size_t n, std::uint64_t seed) {
  const auto* p = static_cast<const std::uint8_t*>(data);
  std::uint64_t h = seed ^ (n * 0x9e3779b97f4a7c15ULL);
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    std::uint64_t w;
    std::memcpy(&w, p + i, 8);
    h ^= w * 0x87c37b91114253d5ULL;
    h = ((h << 31) | (h >> 33)) * 0x4cf5ad432745937fULL;
  }
  std::uint64_t tail = 0;
  std::memcpy(&tail, p + i, n - i);
  h ^= tail * 0x87c37b91114253d5ULL;
  return mix64(h);
}

inline std::string hex64(std::uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

}  // namespace ipfd::plugin
