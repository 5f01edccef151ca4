// Property sets as the host keeps them, and the property suite the plugin reads them through.
//
// In: names and typed values (int, double, string, pointer) from the host and the plugin.
// Out: `PropSet` (thread-safe; typed getters for the host's own use), the handle casts `PS`/`H`,
// and `g_prop_suite` (OfxPropertySuite V1: typed set/get by index or in bulk, dimension).
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "ofx_api.h"

namespace testhost {

struct Prop {
  char type = 's';  // i d s p
  std::vector<int> i;
  std::vector<double> d;
  std::vector<std::string> s;
  std::vector<void*> p;
};

struct HostImage;
struct PropSet {
  std::mutex mu;
  std::map<std::string, Prop> props;
  HostImage* image = nullptr;  // set for image property sets
  template <class F> OfxStatus with(const char* name, char type, F f, bool create) {
    std::lock_guard<std::mutex> lock(mu);
    auto it = props.find(name);
    if (it == props.end()) {
      if (!create) return ofx::kStatErrUnknown;
      it = props.emplace(name, Prop{}).first;
      it->second.type = type;
    }
    if (it->second.type != type) return ofx::kStatErrValue;
    return f(it->second);
  }
  void set_s(const char* n, std::vector<std::string> v) { std::lock_guard<std::mutex> l(mu); props[n] = Prop{'s', {}, {}, std::move(v), {}}; }
  void set_i(const char* n, std::vector<int> v) { std::lock_guard<std::mutex> l(mu); props[n] = Prop{'i', std::move(v), {}, {}, {}}; }
  void set_d(const char* n, std::vector<double> v) { std::lock_guard<std::mutex> l(mu); props[n] = Prop{'d', {}, std::move(v), {}, {}}; }
  void set_p(const char* n, void* v) { std::lock_guard<std::mutex> l(mu); props[n] = Prop{'p', {}, {}, {}, {v}}; }
  std::string gs(const char* n, int i = 0) {
    std::lock_guard<std::mutex> l(mu);
    auto it = props.find(n);
    return it != props.end() && it->second.type == 's' && int(it->second.s.size()) > i ? it->second.s[i] : "";
  }
  std::vector<std::string> gsv(const char* n) {
    std::lock_guard<std::mutex> l(mu);
    auto it = props.find(n);
    return it != props.end() && it->second.type == 's' ? it->second.s : std::vector<std::string>{};
  }
  int gi(const char* n, int dflt = 0) {
    std::lock_guard<std::mutex> l(mu);
    auto it = props.find(n);
    return it != props.end() && it->second.type == 'i' && !it->second.i.empty() ? it->second.i[0] : dflt;
  }
  double gd(const char* n, double dflt = 0) {
    std::lock_guard<std::mutex> l(mu);
    auto it = props.find(n);
    return it != props.end() && it->second.type == 'd' && !it->second.d.empty() ? it->second.d[0] : dflt;
  }
  void* gp(const char* n) {
    std::lock_guard<std::mutex> l(mu);
    auto it = props.find(n);
    return it != props.end() && it->second.type == 'p' && !it->second.p.empty() ? it->second.p[0] : nullptr;
  }
  void copy_from(PropSet& o) {
    std::lock_guard<std::mutex> l(o.mu);
    props = o.props;
  }
};

inline PropSet* PS(OfxPropertySetHandle h) { return reinterpret_cast<PropSet*>(h); }
inline OfxPropertySetHandle H(PropSet* p) { return reinterpret_cast<OfxPropertySetHandle>(p); }

extern ofx::PropertySuiteV1 g_prop_suite;

}  // namespace testhost
