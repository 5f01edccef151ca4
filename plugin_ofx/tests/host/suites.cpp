// Implementation of suites.h: the parameter, image effect and message suites.
#include "suites.h"

#include <cmath>
#include <cstdarg>
#include <cstdio>

#include "output.h"

namespace testhost {

ofx::Plugin* g_plugin = nullptr;
Effect* g_instance = nullptr;
const std::thread::id g_main_thread = std::this_thread::get_id();
thread_local RenderContext* t_render = nullptr;
std::vector<std::string> g_fetched_suites;
PropSet g_host_props;

namespace {

thread_local int t_in_action = 0;
std::mutex g_fetched_mutex;

Effect* EF(OfxImageEffectHandle h) { return reinterpret_cast<Effect*>(h); }

}  // namespace

OfxStatus call(const char* action, const void* handle, PropSet* in, PropSet* out) {
  ++t_in_action;
  OfxStatus st = g_plugin->mainEntry(action, handle, in ? H(in) : nullptr, out ? H(out) : nullptr);
  --t_in_action;
  return st;
}

void instance_changed(const std::string& name, const char* reason) {
  PropSet begin, in;
  begin.set_s(ofx::kPropChangeReason, {reason});
  in.set_s(ofx::kPropType, {ofx::kTypeParameter});
  in.set_s(ofx::kPropName, {name});
  in.set_s(ofx::kPropChangeReason, {reason});
  in.set_d(ofx::kPropTime, {double(g_opt.first)});
  in.set_d(ofx::kImageEffectPropRenderScale, {g_opt.proxy, g_opt.proxy});
  call(ofx::kActionBeginInstanceChanged, g_instance, &begin, nullptr);
  OfxStatus st = call(ofx::kActionInstanceChanged, g_instance, &in, nullptr);
  call(ofx::kActionEndInstanceChanged, g_instance, &begin, nullptr);
  if (st != ofx::kStatOK && st != ofx::kStatReplyDefault)
    emit("{\"event\":\"instance_changed\",\"param\":" + jstr(name) + ",\"status\":" + std::to_string(st) + "}");
}

std::string param_value_text(Param* p) {
  std::lock_guard<std::mutex> lock(p->mu);
  if (p->type == ofx::kParamTypeDouble) return std::to_string(p->dv);
  if (p->type == ofx::kParamTypeString) return p->sv;
  return std::to_string(p->iv);
}

namespace {

OfxStatus param_get(Param* p, va_list ap) {
  if (p->type == ofx::kParamTypeString && std::this_thread::get_id() != g_main_thread) {
    emit("{\"event\":\"misuse\",\"what\":\"string parameter read outside the main thread\",\"param\":" +
         jstr(p->name) + "}");
    g_exit = 3;
  }
  std::lock_guard<std::mutex> lock(p->mu);
  if (p->type == ofx::kParamTypeInteger || p->type == ofx::kParamTypeBoolean || p->type == ofx::kParamTypeChoice)
    *va_arg(ap, int*) = p->iv;
  else if (p->type == ofx::kParamTypeDouble) *va_arg(ap, double*) = p->dv;
  else if (p->type == ofx::kParamTypeString) *va_arg(ap, const char**) = p->sv.c_str();
  else return ofx::kStatErrUnsupported;
  return ofx::kStatOK;
}

OfxStatus param_set(Param* p, va_list ap) {
  {
    std::lock_guard<std::mutex> lock(p->mu);
    if (p->type == ofx::kParamTypeInteger || p->type == ofx::kParamTypeBoolean || p->type == ofx::kParamTypeChoice)
      p->iv = va_arg(ap, int);
    else if (p->type == ofx::kParamTypeDouble) p->dv = va_arg(ap, double);
    else if (p->type == ofx::kParamTypeString) p->sv = va_arg(ap, const char*);
    else return ofx::kStatErrUnsupported;
  }
  if (t_render) {  // OpenFX allows setting values in instance-changed and interact actions only
    emit("{\"event\":\"misuse\",\"what\":\"paramSetValue during render\",\"param\":" + jstr(p->name) + "}");
    g_exit = 3;
  }
  emit("{\"event\":\"param\",\"name\":" + jstr(p->name) + ",\"value\":" + jstr(param_value_text(p)) + "}");
  instance_changed(p->name, ofx::kChangePluginEdited);  // as hosts do
  return ofx::kStatOK;
}

// Makes the va_list of a variadic suite function's arguments after LAST, returns EXPR (which
// reads them from `ap`). C varargs cannot be forwarded to a function, so each variadic entry
// point of the suites is this one statement.
#define WITH_VARARGS(last, expr) \
  va_list ap;                    \
  va_start(ap, last);            \
  const OfxStatus st = (expr);   \
  va_end(ap);                    \
  return st

OfxStatus param_get_value(OfxParamHandle param, ...) { WITH_VARARGS(param, param_get(reinterpret_cast<Param*>(param), ap)); }
// No animation in this host: the value at any time is the value.
OfxStatus param_get_at_time(OfxParamHandle param, OfxTime time, ...) {
  WITH_VARARGS(time, param_get(reinterpret_cast<Param*>(param), ap));
}
OfxStatus param_set_value(OfxParamHandle param, ...) { WITH_VARARGS(param, param_set(reinterpret_cast<Param*>(param), ap)); }

OfxStatus param_unsupported_at_time(OfxParamHandle, OfxTime, ...) { return ofx::kStatErrUnsupported; }
OfxStatus param_unsupported_integral(OfxParamHandle, OfxTime, OfxTime, ...) { return ofx::kStatErrUnsupported; }

ofx::ParameterSuiteV1 g_param_suite = {
    [](OfxParamSetHandle set, const char* type, const char* name, OfxPropertySetHandle* props) -> OfxStatus {
      auto* ps = reinterpret_cast<ParamSet*>(set);
      if (ps->find(name)) return ofx::kStatErrExists;
      auto p = std::make_unique<Param>();
      p->name = name;
      p->type = type;
      p->props.set_s(ofx::kPropType, {ofx::kTypeParameter});
      p->props.set_s(ofx::kPropName, {name});
      p->props.set_s(ofx::kParamPropType, {type});
      if (props) *props = H(&p->props);
      ps->params.push_back(std::move(p));
      return ofx::kStatOK;
    },
    [](OfxParamSetHandle set, const char* name, OfxParamHandle* param, OfxPropertySetHandle* props) -> OfxStatus {
      Param* p = reinterpret_cast<ParamSet*>(set)->find(name);
      if (!p) return ofx::kStatErrUnknown;
      *param = reinterpret_cast<OfxParamHandle>(p);
      if (props) *props = H(&p->props);
      return ofx::kStatOK;
    },
    [](OfxParamSetHandle set, OfxPropertySetHandle* props) -> OfxStatus {
      *props = H(reinterpret_cast<ParamSet*>(set)->effect_props);
      return ofx::kStatOK;
    },
    [](OfxParamHandle param, OfxPropertySetHandle* props) -> OfxStatus {
      *props = H(&reinterpret_cast<Param*>(param)->props);
      return ofx::kStatOK;
    },
    param_get_value,
    param_get_at_time,
    param_unsupported_at_time,
    param_unsupported_integral,
    param_set_value,
    param_unsupported_at_time,
    [](OfxParamHandle, unsigned int* n) -> OfxStatus { *n = 0; return ofx::kStatOK; },
    [](OfxParamHandle, unsigned int, OfxTime*) -> OfxStatus { return ofx::kStatErrBadIndex; },
    [](OfxParamHandle, OfxTime, int, int* index) -> OfxStatus { *index = -1; return ofx::kStatFailed; },
    [](OfxParamHandle, OfxTime) -> OfxStatus { return ofx::kStatErrBadIndex; },
    [](OfxParamHandle) -> OfxStatus { return ofx::kStatOK; },
    [](OfxParamHandle, OfxParamHandle, OfxTime, const ofx::RangeD*) -> OfxStatus { return ofx::kStatErrUnsupported; },
    [](OfxParamSetHandle, const char*) -> OfxStatus { return ofx::kStatOK; },
    [](OfxParamSetHandle) -> OfxStatus { return ofx::kStatOK; },
};

ofx::ImageEffectSuiteV1 g_effect_suite = {
    [](OfxImageEffectHandle e, OfxPropertySetHandle* props) -> OfxStatus {
      *props = H(&EF(e)->props);
      return ofx::kStatOK;
    },
    [](OfxImageEffectHandle e, OfxParamSetHandle* set) -> OfxStatus {
      *set = reinterpret_cast<OfxParamSetHandle>(&EF(e)->params);
      return ofx::kStatOK;
    },
    [](OfxImageEffectHandle e, const char* name, OfxPropertySetHandle* props) -> OfxStatus {
      if (EF(e)->instance) return ofx::kStatErrBadHandle;
      auto c = std::make_unique<Clip>();
      c->name = name;
      c->props.set_s(ofx::kPropType, {ofx::kTypeClip});
      c->props.set_s(ofx::kPropName, {name});
      *props = H(&c->props);
      EF(e)->clips[name] = std::move(c);
      return ofx::kStatOK;
    },
    [](OfxImageEffectHandle e, const char* name, OfxImageClipHandle* clip, OfxPropertySetHandle* props) -> OfxStatus {
      if (!EF(e)->instance) return ofx::kStatErrBadHandle;
      auto it = EF(e)->clips.find(name);
      if (it == EF(e)->clips.end()) return ofx::kStatErrUnknown;
      *clip = reinterpret_cast<OfxImageClipHandle>(it->second.get());
      if (props) *props = H(&it->second->props);
      return ofx::kStatOK;
    },
    [](OfxImageClipHandle clip, OfxPropertySetHandle* props) -> OfxStatus {
      *props = H(&reinterpret_cast<Clip*>(clip)->props);
      return ofx::kStatOK;
    },
    [](OfxImageClipHandle clip, OfxTime t, const ofx::RectD*, OfxPropertySetHandle* image) -> OfxStatus {
      Clip* c = reinterpret_cast<Clip*>(clip);
      if (c->name == ofx::kImageEffectOutputClipName) {
        if (!t_render) return ofx::kStatFailed;
        *image = H(&t_render->output->props);
        g_images_out++;
        return ofx::kStatOK;
      }
      const double tr = std::round(t);
      const int index = int(tr) - g_opt.first;
      if (!g_opt.connected || std::abs(t - tr) > 1e-6 || index < 0 || index >= g_opt.count) return ofx::kStatFailed;
      if (!t_in_action) {
        emit("{\"event\":\"misuse\",\"what\":\"clipGetImage outside an action\"}");
        g_exit = 3;
      }
      const double sx = t_render ? t_render->sx : g_opt.proxy, sy = t_render ? t_render->sy : g_opt.proxy;
      *image = H(&source_image(index, sx, sy).release()->props);
      g_images_out++;
      g_images_fetched++;
      return ofx::kStatOK;
    },
    [](OfxPropertySetHandle image) -> OfxStatus {
      HostImage* img = PS(image)->image;
      if (!img) return ofx::kStatErrBadHandle;
      g_images_out--;
      if (!img->host_owned) delete img;
      return ofx::kStatOK;
    },
    [](OfxImageClipHandle, OfxTime, ofx::RectD* rod) -> OfxStatus {
      *rod = {double(g_opt.ox), double(g_opt.oy), double(g_opt.ox + g_opt.width), double(g_opt.oy + g_opt.height)};
      return ofx::kStatOK;
    },
    [](OfxImageEffectHandle) -> int {
      if (!t_render) return 0;
      const int n = t_render->abort_calls++;
      return t_render->abort_after >= 0 && n >= t_render->abort_after ? 1 : 0;
    },
    [](OfxImageEffectHandle, size_t, OfxImageMemoryHandle*) -> OfxStatus { return ofx::kStatErrUnsupported; },
    [](OfxImageMemoryHandle) -> OfxStatus { return ofx::kStatErrUnsupported; },
    [](OfxImageMemoryHandle, void**) -> OfxStatus { return ofx::kStatErrUnsupported; },
    [](OfxImageMemoryHandle) -> OfxStatus { return ofx::kStatErrUnsupported; },
};

// Formats a host message and emits it as one JSON event of kind `event`.
OfxStatus emit_message(const char* event, const char* type, const char* id, const char* fmt, va_list ap) {
  char buf[4096];
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  emit(std::string("{\"event\":\"") + event + "\",\"type\":" + jstr(type ? type : "") + ",\"id\":" +
       jstr(id ? id : "") + ",\"text\":" + jstr(buf) + "}");
  return ofx::kStatOK;
}
OfxStatus message_v1(void*, const char* type, const char* id, const char* fmt, ...) {
  WITH_VARARGS(fmt, emit_message("message", type, id, fmt, ap));
}
OfxStatus message_persistent(void*, const char* type, const char* id, const char* fmt, ...) {
  WITH_VARARGS(fmt, emit_message("persistent", type, id, fmt, ap));
}
ofx::MessageSuiteV2 g_message_suite = {
    message_v1, message_persistent, [](void*) -> OfxStatus {
      emit("{\"event\":\"persistent_clear\"}");
      return ofx::kStatOK;
    }};

const void* fetch_suite(OfxPropertySetHandle, const char* name, int version) {
  const std::string n = name;
  {
    std::lock_guard<std::mutex> lock(g_fetched_mutex);
    g_fetched_suites.push_back(n + "/" + std::to_string(version));
  }
  if (n == ofx::kPropertySuite && version == 1) return &g_prop_suite;
  if (n == ofx::kImageEffectSuite && version == 1) return &g_effect_suite;
  if (n == ofx::kParameterSuite && version == 1) return &g_param_suite;
  if (n == ofx::kMessageSuite && version == 1) return &g_message_suite;
  if (n == ofx::kMessageSuite && version == 2 && g_opt.message_v2) return &g_message_suite;
  return nullptr;
}

}  // namespace

ofx::Host g_host = {H(&g_host_props), fetch_suite};

}  // namespace testhost
