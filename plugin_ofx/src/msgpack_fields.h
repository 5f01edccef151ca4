// Reading and writing msgpack maps field by field (msgpack-cxx, no Boost): the engine
// protocol's headers (engine_client.cpp) and the plugin's job records (records.cpp).
//
// In: msgpack objects and field names. Out: typed values, or ProtocolViolation naming the
// field and where it was read ("JobInfo field 'state' is not a string"); packers for strings.
#pragma once

#include <cstdint>
#include <climits>
#include <string>
#include <string_view>
#include <vector>

#include <msgpack.hpp>

#include "engine_client.h"

namespace ipfd::mp {

inline const msgpack::object* find(const msgpack::object& map, std::string_view key) {
  if (map.type != msgpack::type::MAP) return nullptr;
  for (std::uint32_t i = 0; i < map.via.map.size; ++i) {
    const auto& kv = map.via.map.ptr[i];
    if (kv.key.type == msgpack::type::STR && std::string_view(kv.key.via.str.ptr, kv.key.via.str.size) == key)
      return &kv.val;
  }
  return nullptr;
}

[[noreturn]] inline void violation(const std::string& what) { throw ProtocolViolation(what); }

inline const msgpack::object& need(const msgpack::object& map, std::string_view key, const char* where) {
  const msgpack::object* o = find(map, key);
  if (!o) violation(std::string(where) + " has no field '" + std::string(key) + "'");
  return *o;
}

inline bool is_nil(const msgpack::object* o) { return !o || o->type == msgpack::type::NIL; }

inline std::string as_str(const msgpack::object& o, std::string_view key, const char* where) {
  if (o.type != msgpack::type::STR) violation(std::string(where) + " field '" + std::string(key) + "' is not a string");
  return std::string(o.via.str.ptr, o.via.str.size);
}

inline std::int64_t as_int(const msgpack::object& o, std::string_view key, const char* where) {
  if (o.type == msgpack::type::POSITIVE_INTEGER) {
    if (o.via.u64 > std::uint64_t(INT64_MAX)) violation(std::string(where) + " field '" + std::string(key) + "' is too large");
    return std::int64_t(o.via.u64);
  }
  if (o.type == msgpack::type::NEGATIVE_INTEGER) return o.via.i64;
  violation(std::string(where) + " field '" + std::string(key) + "' is not an integer");
}

inline std::uint64_t as_u64(const msgpack::object& o, std::string_view key, const char* where) {
  if (o.type != msgpack::type::POSITIVE_INTEGER)
    violation(std::string(where) + " field '" + std::string(key) + "' is not a non-negative integer");
  return o.via.u64;
}

inline double as_num(const msgpack::object& o, std::string_view key, const char* where) {
  if (o.type == msgpack::type::FLOAT32 || o.type == msgpack::type::FLOAT64) return o.via.f64;
  return double(as_int(o, key, where));
}

inline bool as_bool(const msgpack::object& o, std::string_view key, const char* where) {
  if (o.type != msgpack::type::BOOLEAN) violation(std::string(where) + " field '" + std::string(key) + "' is not a boolean");
  return o.via.boolean;
}

inline std::string str_field(const msgpack::object& m, std::string_view key, const char* where) {
  return as_str(need(m, key, where), key, where);
}

inline std::string opt_str(const msgpack::object& m, std::string_view key, const char* where) {
  const msgpack::object* o = find(m, key);
  return is_nil(o) ? std::string() : as_str(*o, key, where);
}

inline double opt_num(const msgpack::object& m, std::string_view key, const char* where, double dflt) {
  const msgpack::object* o = find(m, key);
  return is_nil(o) ? dflt : as_num(*o, key, where);
}

inline int opt_int(const msgpack::object& m, std::string_view key, const char* where, int dflt) {
  const msgpack::object* o = find(m, key);
  if (is_nil(o)) return dflt;
  std::int64_t v = as_int(*o, key, where);
  if (v < INT32_MIN || v > INT32_MAX) violation(std::string(where) + " field '" + std::string(key) + "' is out of range");
  return int(v);
}

// ---- packing ----
using Packer = msgpack::packer<msgpack::sbuffer>;

inline void pack_str(Packer& pk, std::string_view s) {
  pk.pack_str(std::uint32_t(s.size()));
  pk.pack_str_body(s.data(), std::uint32_t(s.size()));
}

inline std::vector<std::uint8_t> finish(const msgpack::sbuffer& buf) {
  return std::vector<std::uint8_t>(reinterpret_cast<const std::uint8_t*>(buf.data()),
                                   reinterpret_cast<const std::uint8_t*>(buf.data()) + buf.size());
}

}  // namespace ipfd::mp
