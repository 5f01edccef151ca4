// Implementation of output.h.
#include "output.h"

#include <cstdio>
#include <cstdlib>
#include <mutex>

namespace testhost {

namespace {
std::mutex g_out_mutex;
}  // namespace

std::atomic<int> g_exit{0};

std::string jstr(const std::string& s) {
  std::string o = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') o += '\\', o += char(c);
    else if (c == '\n') o += "\\n";
    else if (c < 0x20) {
      char b[8];
      std::snprintf(b, sizeof b, "\\u%04x", c);
      o += b;
    } else o += char(c);
  }
  return o + "\"";
}

void emit(const std::string& json) {
  std::lock_guard<std::mutex> lock(g_out_mutex);
  std::fputs(json.c_str(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

[[noreturn]] void die(const std::string& why) {
  emit("{\"event\":\"fatal\",\"error\":" + jstr(why) + "}");
  std::exit(2);
}

}  // namespace testhost
