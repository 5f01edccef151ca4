// The test host's output: one JSON object per line on stdout, and its exit status.
//
// In: event text from every part of the host, on any thread. Out: `emit` (whole lines, never
// interleaved), `jstr` (a JSON string literal), `die` (a fatal event, exit 2) and `g_exit` (3 once
// a wait timed out or the plugin misused the host).
#pragma once

#include <atomic>
#include <string>

namespace testhost {

extern std::atomic<int> g_exit;

std::string jstr(const std::string& s);
void emit(const std::string& json);
[[noreturn]] void die(const std::string& why);

}  // namespace testhost
