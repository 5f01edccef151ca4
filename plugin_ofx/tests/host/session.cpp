// Implementation of session.h (all but the commands).
#include "session.h"

#include <dirent.h>

#include <chrono>
#include <cstring>
#include <sstream>
#include <thread>

#include "output.h"

namespace testhost {

namespace {

std::unique_ptr<Effect> g_instance_owner;

int count_dir(const char* path) {
  int n = 0;
  if (DIR* d = opendir(path)) {
    while (dirent* e = readdir(d)) n += e->d_name[0] != '.';
    closedir(d);
  }
  return n - (std::strcmp(path, "/proc/self/fd") == 0 ? 1 : 0);  // the DIR's own descriptor
}

std::string number_json(double v) {
  std::ostringstream o;
  o.precision(17);
  o << v;
  return o.str();
}

// A numeric property as JSON (null when unset).
std::string number_prop_json(PropSet& props, const char* name) {
  std::lock_guard<std::mutex> lock(props.mu);
  auto it = props.props.find(name);
  if (it == props.props.end()) return "null";
  if (it->second.type == 'i' && !it->second.i.empty()) return std::to_string(it->second.i[0]);
  if (it->second.type == 'd' && !it->second.d.empty()) return number_json(it->second.d[0]);
  return "null";
}

std::string default_json(Param& p) {
  if (p.type == ofx::kParamTypeString) return jstr(p.props.gs(ofx::kParamPropDefault));
  return number_prop_json(p.props, ofx::kParamPropDefault);
}

}  // namespace

int count_threads() { return count_dir("/proc/self/task"); }

// A thread that pthread_join has returned for can stay listed in /proc/self/task for a moment:
// the kernel wakes the joiner when it clears the thread's id, before it removes the task. So a
// count right after a join can be one too high (about 1 in 100 joins on a 2-core machine).
// Waits up to 2 s for the count to fall to `expected`; a thread that really leaked stays listed.
int count_threads_settled(int expected) {
  int n = count_threads();
  for (int i = 0; i < 200 && n > expected; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    n = count_threads();
  }
  return n;
}
int count_fds() { return count_dir("/proc/self/fd"); }

std::unique_ptr<Effect> g_descriptor, g_context_descriptor;

void create_instance(const std::map<std::string, std::string>* restore) {
  auto inst = std::make_unique<Effect>();
  inst->instance = true;
  inst->props.copy_from(g_context_descriptor->props);
  inst->props.set_s(ofx::kPropType, {"OfxTypeImageEffectInstance"});
  inst->props.set_s(ofx::kImageEffectPropContext, {g_opt.context});
  inst->props.set_i("OfxPropIsInteractive", {1});
  inst->props.set_d("OfxImageEffectPropProjectSize", {double(g_opt.width), double(g_opt.height)});
  inst->props.set_d("OfxImageEffectPropProjectExtent", {double(g_opt.width), double(g_opt.height)});
  inst->props.set_d("OfxImageEffectPropProjectOffset", {0.0, 0.0});
  inst->props.set_d("OfxImageEffectPropPixelAspectRatio", {1.0});
  inst->props.set_d("OfxImageEffectPropFrameRate", {24.0});
  inst->props.set_d("OfxImageEffectInstancePropEffectDuration", {double(g_opt.count)});
  inst->props.set_p(ofx::kPropInstanceData, nullptr);
  inst->params.effect_props = &inst->props;
  for (auto& d : g_context_descriptor->params.params) {
    auto p = std::make_unique<Param>();
    p->name = d->name;
    p->type = d->type;
    p->props.copy_from(d->props);
    if (p->type == ofx::kParamTypeString) p->sv = p->props.gs(ofx::kParamPropDefault);
    else if (p->type == ofx::kParamTypeDouble) p->dv = p->props.gd(ofx::kParamPropDefault);
    else p->iv = p->props.gi(ofx::kParamPropDefault);
    if (restore && restore->count(p->name)) {
      const std::string& v = restore->at(p->name);
      if (p->type == ofx::kParamTypeString) p->sv = v;
      else if (p->type == ofx::kParamTypeDouble) p->dv = std::stod(v);
      else if (p->type != ofx::kParamTypePushButton) p->iv = std::stoi(v);
    }
    inst->params.params.push_back(std::move(p));
  }
  const char* comps = g_opt.channels == 4 ? ofx::kImageComponentRGBA : ofx::kImageComponentRGB;
  for (auto& [name, d] : g_context_descriptor->clips) {
    auto c = std::make_unique<Clip>();
    c->name = name;
    c->props.copy_from(d->props);
    c->props.set_s(ofx::kImageEffectPropPixelDepth, {g_opt.depth});
    c->props.set_s(ofx::kImageEffectPropComponents, {comps});
    c->props.set_s("OfxImageClipPropUnmappedPixelDepth", {g_opt.depth});
    c->props.set_s("OfxImageClipPropUnmappedComponents", {comps});
    c->props.set_s(ofx::kImageEffectPropPreMultiplication,
                   {g_opt.channels == 4 ? (g_opt.premult ? ofx::kImagePreMultiplied : ofx::kImageUnPreMultiplied)
                                        : ofx::kImageOpaque});
    c->props.set_d(ofx::kImageEffectPropFrameRange, {double(g_opt.first), double(g_opt.first + g_opt.count - 1)});
    c->props.set_d("OfxImageEffectPropUnmappedFrameRange", {double(g_opt.first), double(g_opt.first + g_opt.count - 1)});
    c->props.set_d("OfxImageEffectPropFrameRate", {24.0});
    c->props.set_d(ofx::kImagePropPixelAspectRatio, {1.0});
    c->props.set_i(ofx::kImageClipPropConnected, {1});
    c->props.set_i("OfxImageClipPropContinuousSamples", {0});
    c->props.set_s("OfxImageClipPropFieldOrder", {"OfxFieldNone"});
    inst->clips[name] = std::move(c);
  }
  g_instance_owner = std::move(inst);
  g_instance = g_instance_owner.get();
  OfxStatus st = call(ofx::kActionCreateInstance, g_instance, nullptr, nullptr);
  emit("{\"event\":\"create\",\"status\":" + std::to_string(st) + "}");
  if (st != ofx::kStatOK && st != ofx::kStatReplyDefault) die("CreateInstance failed");
}

void destroy_instance() {
  OfxStatus st = call(ofx::kActionDestroyInstance, g_instance, nullptr, nullptr);
  emit("{\"event\":\"destroy\",\"status\":" + std::to_string(st) + ",\"threads\":" + std::to_string(count_threads()) +
       ",\"fds\":" + std::to_string(count_fds()) + "}");
  g_instance = nullptr;
  g_instance_owner.reset();
}

std::string status_text() {
  call(ofx::kActionSyncPrivateData, g_instance, nullptr, nullptr);
  Param* p = g_instance->params.find("status");
  return p ? param_value_text(p) : "";
}

void describe_json() {
  std::ostringstream o;
  auto arr = [](const std::vector<std::string>& v) {
    std::string s = "[";
    for (std::size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + jstr(v[i]);
    return s + "]";
  };
  PropSet& d = g_descriptor->props;
  o << "{\"event\":\"describe\",\"label\":" << jstr(d.gs(ofx::kPropLabel))
    << ",\"contexts\":" << arr(d.gsv(ofx::kImageEffectPropSupportedContexts))
    << ",\"depths\":" << arr(d.gsv(ofx::kImageEffectPropSupportedPixelDepths))
    << ",\"thread_safety\":" << jstr(d.gs(ofx::kImageEffectPluginRenderThreadSafety))
    << ",\"temporal\":" << d.gi(ofx::kImageEffectPropTemporalClipAccess)
    << ",\"multires\":" << d.gi(ofx::kImageEffectPropSupportsMultiResolution, 1)
    << ",\"tiles\":" << d.gi(ofx::kImageEffectPropSupportsTiles, 1) << ",\"clips\":{";
  bool first = true;
  for (auto& [name, c] : g_context_descriptor->clips) {
    o << (first ? "" : ",") << jstr(name) << ":{\"components\":" << arr(c->props.gsv(ofx::kImageEffectPropSupportedComponents))
      << ",\"temporal\":" << c->props.gi(ofx::kImageEffectPropTemporalClipAccess) << "}";
    first = false;
  }
  o << "},\"params\":[";
  first = true;
  for (auto& p : g_context_descriptor->params.params) {
    o << (first ? "" : ",") << "{\"name\":" << jstr(p->name) << ",\"type\":" << jstr(p->type)
      << ",\"label\":" << jstr(p->props.gs(ofx::kPropLabel)) << ",\"animates\":" << p->props.gi(ofx::kParamPropAnimates, 1)
      << ",\"secret\":" << p->props.gi(ofx::kParamPropSecret, 0)
      << ",\"string_mode\":" << jstr(p->props.gs(ofx::kParamPropStringMode))
      << ",\"script_name\":" << jstr(p->props.gs(ofx::kParamPropScriptName)) << ",\"default\":" << default_json(*p)
      << ",\"min\":" << number_prop_json(p->props, ofx::kParamPropMin)
      << ",\"max\":" << number_prop_json(p->props, ofx::kParamPropMax)
      << ",\"options\":" << arr(p->props.gsv(ofx::kParamPropChoiceOption)) << "}";
    first = false;
  }
  o << "]}";
  emit(o.str());
}

}  // namespace testhost
