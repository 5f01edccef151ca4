// The effect, its clips and parameters as the host keeps them, and the host's suites.
//
// In: the loaded plugin (`g_plugin`) and the instance the session made (`g_instance`).
// Out: `call` (one action into the plugin's main entry), `instance_changed` (the begin /
// changed / end triple hosts send), the parameter, image effect and message suites behind
// `g_host`'s fetchSuite (which records every suite asked for in `g_fetched_suites`), and the
// per-thread render context the image effect suite answers from. Protocol misuses (a string
// parameter read off the main thread, a value set during render, an image fetched outside an
// action) are reported as `misuse` events and set exit status 3.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "images.h"
#include "ofx_api.h"
#include "props.h"

namespace testhost {

struct Param {
  std::string name, type;
  PropSet props;
  std::mutex mu;
  int iv = 0;
  double dv = 0;
  std::string sv;
};
struct ParamSet {
  std::vector<std::unique_ptr<Param>> params;
  PropSet* effect_props = nullptr;
  Param* find(const std::string& n) {
    for (auto& p : params) if (p->name == n) return p.get();
    return nullptr;
  }
};
struct Clip {
  std::string name;
  PropSet props;
};
struct Effect {
  PropSet props;
  ParamSet params;
  std::map<std::string, std::unique_ptr<Clip>> clips;
  bool instance = false;
};

extern ofx::Plugin* g_plugin;
extern Effect* g_instance;

struct RenderContext {
  HostImage* output = nullptr;
  double sx = 1, sy = 1;
  int abort_after = -1;  // abort() says 1 from this call on (-1: never)
  int abort_calls = 0;
};
extern const std::thread::id g_main_thread;
extern thread_local RenderContext* t_render;  // set while this thread runs a render action

OfxStatus call(const char* action, const void* handle, PropSet* in, PropSet* out);
void instance_changed(const std::string& name, const char* reason);
std::string param_value_text(Param* p);

extern PropSet g_host_props;  // the host's own properties (main fills them before setHost)
extern ofx::Host g_host;
extern std::vector<std::string> g_fetched_suites;  // "name/version" of every fetchSuite call

}  // namespace testhost
