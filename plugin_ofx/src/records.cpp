// Implementation of records.h.
#include "records.h"

#include <cstring>
#include <exception>

#include "msgpack_fields.h"

namespace ipfd::plugin {

namespace {

constexpr std::string_view kTag = "ipfd-ofx2:";
constexpr const char* kWhere = "job record";

std::string to_hex(const char* data, std::size_t n) {
  static const char digits[] = "0123456789abcdef";
  std::string out(2 * n, '0');
  for (std::size_t i = 0; i < n; ++i) {
    out[2 * i] = digits[std::uint8_t(data[i]) >> 4];
    out[2 * i + 1] = digits[std::uint8_t(data[i]) & 15];
  }
  return out;
}

int nibble(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// Empty (and ok = false) unless `hex` is an even count of lowercase hex digits.
std::string from_hex(std::string_view hex, bool& ok) {
  ok = hex.size() % 2 == 0;
  std::string out(ok ? hex.size() / 2 : 0, '\0');
  for (std::size_t i = 0; ok && i < out.size(); ++i) {
    const int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
    ok = hi >= 0 && lo >= 0;
    out[i] = char(hi << 4 | lo);
  }
  return ok ? out : std::string();
}

int int_field(const msgpack::object& m, std::string_view key) {
  const std::int64_t v = mp::as_int(mp::need(m, key, kWhere), key, kWhere);
  if (v < INT32_MIN || v > INT32_MAX) mp::violation(std::string(kWhere) + " field '" + std::string(key) + "' is out of range");
  return int(v);
}

DType dtype_field(const msgpack::object& m) {
  const std::string name = mp::str_field(m, "dtype", kWhere);
  for (DType d : {DType::u8, DType::u16, DType::f32})
    if (name == ipfd::dtype_name(d)) return d;
  mp::violation("job record has an unknown dtype " + name);
}

}  // namespace

std::string encode_record(const Record& r) {
  msgpack::sbuffer buf;
  mp::Packer pk(&buf);
  pk.pack_map(8);
  mp::pack_str(pk, "job");
  mp::pack_str(pk, r.id);
  mp::pack_str(pk, "address");
  mp::pack_str(pk, r.address);
  mp::pack_str(pk, "params");
  pk.pack_uint64(r.params_hash);
  mp::pack_str(pk, "first");
  pk.pack_int64(r.first);
  mp::pack_str(pk, "count");
  pk.pack_int64(r.count);
  mp::pack_str(pk, "format");
  pk.pack_map(7);
  mp::pack_str(pk, "dtype");
  mp::pack_str(pk, ipfd::dtype_name(r.fmt.dtype));
  for (auto [key, value] : {std::pair<const char*, int>{"channels", r.fmt.channels}, {"width", r.fmt.width},
                            {"height", r.fmt.height}, {"x1", r.fmt.x1}, {"y1", r.fmt.y1}}) {
    mp::pack_str(pk, key);
    pk.pack_int64(value);
  }
  mp::pack_str(pk, "premult");
  pk.pack(r.fmt.premult);
  mp::pack_str(pk, "hashes");
  std::string hashes(r.frame_hashes.size() * 8, '\0');
  for (std::size_t i = 0; i < r.frame_hashes.size(); ++i)
    for (int b = 0; b < 8; ++b) hashes[8 * i + b] = char(r.frame_hashes[i] >> (8 * b));
  pk.pack_bin(std::uint32_t(hashes.size()));
  pk.pack_bin_body(hashes.data(), std::uint32_t(hashes.size()));
  mp::pack_str(pk, "done");
  pk.pack(r.state == JobState::Done);  // changes when the job is done: the host re-renders
  return std::string(kTag) + to_hex(buf.data(), buf.size());
}

std::shared_ptr<Record> decode_record(const std::string& text) {
  if (text.compare(0, kTag.size(), kTag) != 0) return nullptr;
  bool ok = false;
  const std::string bytes = from_hex(std::string_view(text).substr(kTag.size()), ok);
  if (!ok) return nullptr;
  try {
    msgpack::object_handle handle = msgpack::unpack(bytes.data(), bytes.size());
    const msgpack::object& m = handle.get();
    if (m.type != msgpack::type::MAP) return nullptr;
    auto r = std::make_shared<Record>();
    r->id = mp::str_field(m, "job", kWhere);
    r->address = mp::str_field(m, "address", kWhere);
    r->params_hash = mp::as_u64(mp::need(m, "params", kWhere), "params", kWhere);
    r->first = int_field(m, "first");
    r->count = int_field(m, "count");
    const msgpack::object& f = mp::need(m, "format", kWhere);
    if (f.type != msgpack::type::MAP) return nullptr;
    r->fmt.dtype = dtype_field(f);
    r->fmt.channels = int_field(f, "channels");
    r->fmt.width = int_field(f, "width");
    r->fmt.height = int_field(f, "height");
    r->fmt.x1 = int_field(f, "x1");
    r->fmt.y1 = int_field(f, "y1");
    r->fmt.premult = mp::as_bool(mp::need(f, "premult", kWhere), "premult", kWhere);
    const msgpack::object& h = mp::need(m, "hashes", kWhere);
    if (h.type != msgpack::type::BIN || h.via.bin.size % 8) return nullptr;
    for (std::uint32_t i = 0; i < h.via.bin.size; i += 8) {
      std::uint64_t v = 0;
      for (int b = 7; b >= 0; --b) v = v << 8 | std::uint8_t(h.via.bin.ptr[i + b]);
      r->frame_hashes.push_back(v);
    }
    mp::as_bool(mp::need(m, "done", kWhere), "done", kWhere);
    if (r->id.empty() || r->address.empty() || r->count < 1 || int(r->frame_hashes.size()) != r->count ||
        (r->fmt.channels != 3 && r->fmt.channels != 4) || r->fmt.width < 1 || r->fmt.height < 1)
      return nullptr;
    return r;
  } catch (const std::exception&) {  // msgpack's unpack errors and ProtocolViolation
    return nullptr;
  }
}

}  // namespace ipfd::plugin
