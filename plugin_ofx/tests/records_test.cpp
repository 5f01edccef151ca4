// Checks of the job-record serializer (src/records.cpp), run by test_ofx_plugin.py.
//
// In: nothing. Out: one line per failed check on stdout and exit status 1, or "ok N" and 0.
// Covers: the round trip of every persistent field (hashes with the top bit set, negative
// origins, each dtype), that the text changes when the job is done, and that every kind of
// broken record (another tag, odd or non-hex text, truncated msgpack, a missing or mistyped
// field, counts that disagree, values out of range) decodes to null instead of a record.
#include <cstdio>
#include <string>

#include "records.h"

namespace {

using ipfd::plugin::JobState;
using ipfd::plugin::Record;

int g_checks = 0, g_failed = 0;

void check(bool ok, const std::string& what) {
  ++g_checks;
  if (!ok) {
    ++g_failed;
    std::printf("FAILED: %s\n", what.c_str());
  }
}

Record sample(ipfd::DType dtype) {
  Record r;
  r.id = "ofx-0123456789abcdef-fedcba9876543210";
  r.address = "tcp://127.0.0.1:5555";
  r.params_hash = 0xfedcba9876543210ULL;
  r.first = -3;
  r.count = 3;
  r.fmt.dtype = dtype;
  r.fmt.channels = 4;
  r.fmt.width = 40;
  r.fmt.height = 24;
  r.fmt.x1 = -8;
  r.fmt.y1 = 5;
  r.fmt.premult = true;
  r.frame_hashes = {0x8000000000000001ULL, 0, 0xffffffffffffffffULL};
  return r;
}

bool same(const Record& a, const Record& b) {
  return a.id == b.id && a.address == b.address && a.params_hash == b.params_hash && a.first == b.first &&
         a.count == b.count && a.fmt.dtype == b.fmt.dtype && a.fmt.same_pixels(b.fmt) && a.frame_hashes == b.frame_hashes;
}

// Hex of a msgpack map built by hand, for records the encoder would never write.
std::string hex(const std::string& bytes) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) out += {digits[c >> 4], digits[c & 15]};
  return out;
}

}  // namespace

int main() {
  for (ipfd::DType d : {ipfd::DType::u8, ipfd::DType::u16, ipfd::DType::f32}) {
    const Record r = sample(d);
    const auto back = ipfd::plugin::decode_record(ipfd::plugin::encode_record(r));
    check(back && same(*back, r), std::string("round trip of a ") + ipfd::dtype_name(d) + " record");
  }
  Record r = sample(ipfd::DType::u16);
  const std::string pending = ipfd::plugin::encode_record(r);
  r.state = JobState::Done;
  const std::string done = ipfd::plugin::encode_record(r);
  check(pending != done, "the text changes when the job is done (the host re-renders)");
  check(pending.rfind("ipfd-ofx2:", 0) == 0, "the text starts with the record tag");

  const std::string body = pending.substr(10);
  const std::string broken[][2] = {
      {"", "empty text"},
      {"ipfd-ofx1;job=x;address=y", "the old key=value format"},
      {"ipfd-ofx2:" + body.substr(0, body.size() - 1), "an odd number of hex digits"},
      {"ipfd-ofx2:" + body.substr(0, body.size() - 2), "truncated msgpack"},
      {"ipfd-ofx2:" + body.substr(0, body.size() - 2) + "zz", "a non-hex digit"},
      {"ipfd-ofx2:" + hex("\x91\x01"), "a msgpack list, not a map"},
      {"ipfd-ofx2:" + hex(std::string("\x81\xa3job\xa1x", 7)), "a map without the other fields"},
  };
  for (const auto& [text, what] : broken) check(!ipfd::plugin::decode_record(text), "refused: " + what);

  auto refused_after = [&](const char* what, auto change) {
    Record bad = sample(ipfd::DType::u8);
    change(bad);
    check(!ipfd::plugin::decode_record(ipfd::plugin::encode_record(bad)), std::string("refused: ") + what);
  };
  refused_after("a hash count that disagrees with count", [](Record& b) { b.frame_hashes.pop_back(); });
  refused_after("an empty job id", [](Record& b) { b.id.clear(); });
  refused_after("an empty address", [](Record& b) { b.address.clear(); });
  refused_after("two channels", [](Record& b) { b.fmt.channels = 2; });
  refused_after("zero width", [](Record& b) { b.fmt.width = 0; });
  refused_after("no frames", [](Record& b) { b.count = 0, b.frame_hashes.clear(); });

  if (g_failed) return 1;
  std::printf("ok %d\n", g_checks);
  return 0;
}
