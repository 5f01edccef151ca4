// ipfacediff's own small OpenFX test host (Linux/macOS): loads a bundle by path the way hosts
// do and drives one image effect through a scripted session.
//
// In:  ofx_test_host BUNDLE [options] -- COMMAND...
//      options describe the Source clip (a raw file of frames, H x W x C, top row first) and the
//      image layout the host hands out (origin, row bytes, premultiplication, depth);
//      (--proxy S: actions other than render run at render scale S, as in a host's proxy mode);
//      commands: set:NAME=VALUE  analyze  wait:PREFIX[|PREFIX..]:SECONDS  status
//                render:T,T,..:THREADS:SCALE:OUTDIR  abortrender:T[:AFTER]  source:PATH  disconnect
//                reopen  sleep:S
// Out: one JSON object per line on stdout (describe, param, message, status, render, leaks,
//      error events) and OUTDIR/frame_<t>_<i>.raw for the i-th render of a render command (the
//      output image, packed, top row first). Exit status 0, or 3 when a wait timed out or the host saw a protocol
//      misuse: an image never released, a string parameter read outside the main thread (hosts
//      built on the stock HostSupport library return it from one shared buffer), a render that
//      returns OK with rows of its output never written. A plugin crash kills the process: the caller
//      sees a signal, not a result.
// Walk: dlopen -> OfxGetNumberOfPlugins/OfxGetPlugin -> setHost -> Load -> Describe ->
// DescribeInContext -> CreateInstance -> commands -> DestroyInstance -> Unload -> dlclose, then
// compares the process's threads and file descriptors with those before dlopen.
#include <dirent.h>
#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "ofx_api.h"

namespace {

// ---- output -------------------------------------------------------------------------------
std::mutex g_out_mutex;
int g_exit = 0;

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

// ---- property sets ------------------------------------------------------------------------
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

PropSet* PS(OfxPropertySetHandle h) { return reinterpret_cast<PropSet*>(h); }
OfxPropertySetHandle H(PropSet* p) { return reinterpret_cast<OfxPropertySetHandle>(p); }

template <class T> std::vector<T>& vec(Prop& p);
template <> std::vector<int>& vec<int>(Prop& p) { return p.i; }
template <> std::vector<double>& vec<double>(Prop& p) { return p.d; }
template <> std::vector<void*>& vec<void*>(Prop& p) { return p.p; }

template <class T> OfxStatus set1(OfxPropertySetHandle h, const char* n, int idx, T v, char type) {
  if (!h) return ofx::kStatErrBadHandle;
  return PS(h)->with(n, type, [&](Prop& p) {
    auto& a = vec<T>(p);
    if (idx < 0) return ofx::kStatErrBadIndex;
    if (int(a.size()) <= idx) a.resize(idx + 1);
    a[idx] = v;
    return ofx::kStatOK;
  }, true);
}
template <class T> OfxStatus setN(OfxPropertySetHandle h, const char* n, int count, const T* v, char type) {
  if (!h) return ofx::kStatErrBadHandle;
  return PS(h)->with(n, type, [&](Prop& p) { vec<T>(p).assign(v, v + count); return ofx::kStatOK; }, true);
}
template <class T> OfxStatus get1(OfxPropertySetHandle h, const char* n, int idx, T* v, char type) {
  if (!h) return ofx::kStatErrBadHandle;
  return PS(h)->with(n, type, [&](Prop& p) {
    auto& a = vec<T>(p);
    if (idx < 0 || idx >= int(a.size())) return ofx::kStatErrBadIndex;
    *v = a[idx];
    return ofx::kStatOK;
  }, false);
}
template <class T> OfxStatus getN(OfxPropertySetHandle h, const char* n, int count, T* v, char type) {
  if (!h) return ofx::kStatErrBadHandle;
  return PS(h)->with(n, type, [&](Prop& p) {
    auto& a = vec<T>(p);
    if (count > int(a.size())) return ofx::kStatErrBadIndex;
    for (int i = 0; i < count; ++i) v[i] = a[i];
    return ofx::kStatOK;
  }, false);
}

OfxStatus propSetString(OfxPropertySetHandle h, const char* n, int idx, const char* v) {
  if (!h || !v) return ofx::kStatErrBadHandle;
  return PS(h)->with(n, 's', [&](Prop& p) {
    if (idx < 0) return ofx::kStatErrBadIndex;
    if (int(p.s.size()) <= idx) p.s.resize(idx + 1);
    p.s[idx] = v;
    return ofx::kStatOK;
  }, true);
}
OfxStatus propSetStringN(OfxPropertySetHandle h, const char* n, int count, const char* const* v) {
  if (!h) return ofx::kStatErrBadHandle;
  return PS(h)->with(n, 's', [&](Prop& p) { p.s.assign(v, v + count); return ofx::kStatOK; }, true);
}
OfxStatus propGetString(OfxPropertySetHandle h, const char* n, int idx, char** v) {
  if (!h) return ofx::kStatErrBadHandle;
  return PS(h)->with(n, 's', [&](Prop& p) {
    if (idx < 0 || idx >= int(p.s.size())) return ofx::kStatErrBadIndex;
    *v = const_cast<char*>(p.s[idx].c_str());
    return ofx::kStatOK;
  }, false);
}
OfxStatus propGetStringN(OfxPropertySetHandle h, const char* n, int count, char** v) {
  for (int i = 0; i < count; ++i) {
    OfxStatus st = propGetString(h, n, i, &v[i]);
    if (st != ofx::kStatOK) return st;
  }
  return ofx::kStatOK;
}
OfxStatus propReset(OfxPropertySetHandle, const char*) { return ofx::kStatOK; }
OfxStatus propGetDimension(OfxPropertySetHandle h, const char* n, int* count) {
  if (!h) return ofx::kStatErrBadHandle;
  std::lock_guard<std::mutex> lock(PS(h)->mu);
  auto it = PS(h)->props.find(n);
  if (it == PS(h)->props.end()) return ofx::kStatErrUnknown;
  const Prop& p = it->second;
  *count = int(p.type == 'i' ? p.i.size() : p.type == 'd' ? p.d.size() : p.type == 's' ? p.s.size() : p.p.size());
  return ofx::kStatOK;
}

ofx::PropertySuiteV1 g_prop_suite = {
    [](OfxPropertySetHandle h, const char* n, int i, void* v) { return set1<void*>(h, n, i, v, 'p'); },
    propSetString,
    [](OfxPropertySetHandle h, const char* n, int i, double v) { return set1<double>(h, n, i, v, 'd'); },
    [](OfxPropertySetHandle h, const char* n, int i, int v) { return set1<int>(h, n, i, v, 'i'); },
    [](OfxPropertySetHandle h, const char* n, int c, void* const* v) { return setN<void*>(h, n, c, v, 'p'); },
    propSetStringN,
    [](OfxPropertySetHandle h, const char* n, int c, const double* v) { return setN<double>(h, n, c, v, 'd'); },
    [](OfxPropertySetHandle h, const char* n, int c, const int* v) { return setN<int>(h, n, c, v, 'i'); },
    [](OfxPropertySetHandle h, const char* n, int i, void** v) { return get1<void*>(h, n, i, v, 'p'); },
    propGetString,
    [](OfxPropertySetHandle h, const char* n, int i, double* v) { return get1<double>(h, n, i, v, 'd'); },
    [](OfxPropertySetHandle h, const char* n, int i, int* v) { return get1<int>(h, n, i, v, 'i'); },
    [](OfxPropertySetHandle h, const char* n, int c, void** v) { return getN<void*>(h, n, c, v, 'p'); },
    propGetStringN,
    [](OfxPropertySetHandle h, const char* n, int c, double* v) { return getN<double>(h, n, c, v, 'd'); },
    [](OfxPropertySetHandle h, const char* n, int c, int* v) { return getN<int>(h, n, c, v, 'i'); },
    propReset,
    propGetDimension,
};

// ---- the session's clip and image layout ---------------------------------------------------
struct Options {
  std::string bundle, clip_path, context = ofx::kImageEffectContextFilter;
  int width = 0, height = 0, channels = 4, first = 0, count = 0, ox = 0, oy = 0, pad = 0;
  std::string depth = ofx::kBitDepthByte;
  bool negative_rowbytes = false, premult = false, message_v2 = true;
  double proxy = 1.0;       // render scale of actions other than render
  bool connected = true;    // the Source clip
};
Options g_opt;
std::vector<std::vector<std::uint8_t>> g_frames;  // top-first packed frames of the Source clip
std::mutex g_frames_mutex;

std::size_t sample_size() { return g_opt.depth == ofx::kBitDepthByte ? 1 : g_opt.depth == ofx::kBitDepthShort ? 2 : 4; }
std::size_t pixel_size() { return sample_size() * std::size_t(g_opt.channels); }

void load_frames(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) die("cannot read clip " + path);
  std::vector<std::uint8_t> all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::size_t fb = std::size_t(g_opt.width) * g_opt.height * pixel_size();
  if (fb == 0 || all.size() % fb) die("clip size does not match --size/--channels/--depth");
  std::lock_guard<std::mutex> lock(g_frames_mutex);
  g_frames.clear();
  for (std::size_t off = 0; off < all.size(); off += fb) g_frames.emplace_back(all.begin() + off, all.begin() + off + fb);
  g_opt.count = int(g_frames.size());
}

struct HostImage {
  PropSet props;
  std::vector<std::uint8_t> buf;
  std::uint8_t* data = nullptr;
  ofx::RectI bounds{0, 0, 0, 0};
  std::ptrdiff_t rb = 0;
  bool host_owned = false;
  std::uint8_t* pixel(int x, int y) { return data + std::ptrdiff_t(y - bounds.y1) * rb + std::ptrdiff_t(x - bounds.x1) * std::ptrdiff_t(pixel_size()); }
};
std::atomic<int> g_images_out{0}, g_images_fetched{0};

// Bounds of the frame at render scale s (the test uses scales that divide the sizes evenly).
ofx::RectI scaled_bounds(double sx, double sy) {
  return {int(std::floor(g_opt.ox * sx)), int(std::floor(g_opt.oy * sy)),
          int(std::floor(g_opt.ox * sx)) + int(std::lround(g_opt.width * sx)),
          int(std::floor(g_opt.oy * sy)) + int(std::lround(g_opt.height * sy))};
}

std::unique_ptr<HostImage> make_image(ofx::RectI b, double sx, double sy) {
  auto img = std::make_unique<HostImage>();
  img->props.image = img.get();
  img->bounds = b;
  const int w = b.x2 - b.x1, h = b.y2 - b.y1;
  const std::size_t stride = std::size_t(w) * pixel_size() + std::size_t(g_opt.pad);
  img->buf.assign(stride * std::size_t(h) + 16, 0xCD);  // 0xCD: "never written"
  if (g_opt.negative_rowbytes) {  // rows stored top-first: row y1 is the last in memory
    img->data = img->buf.data() + stride * std::size_t(h - 1);
    img->rb = -std::ptrdiff_t(stride);
  } else {
    img->data = img->buf.data();
    img->rb = std::ptrdiff_t(stride);
  }
  PropSet& p = img->props;
  p.set_s(ofx::kPropType, {"OfxTypeImage"});
  p.set_p(ofx::kImagePropData, img->data);
  p.set_i(ofx::kImagePropBounds, {b.x1, b.y1, b.x2, b.y2});
  p.set_i(ofx::kImagePropRegionOfDefinition, {b.x1, b.y1, b.x2, b.y2});
  p.set_i(ofx::kImagePropRowBytes, {int(img->rb)});
  p.set_s(ofx::kImageEffectPropPixelDepth, {g_opt.depth});
  p.set_s(ofx::kImageEffectPropComponents, {g_opt.channels == 4 ? ofx::kImageComponentRGBA : ofx::kImageComponentRGB});
  p.set_s(ofx::kImageEffectPropPreMultiplication,
          {g_opt.channels == 4 ? (g_opt.premult ? ofx::kImagePreMultiplied : ofx::kImageUnPreMultiplied) : ofx::kImageOpaque});
  p.set_d(ofx::kImageEffectPropRenderScale, {sx, sy});
  p.set_d(ofx::kImagePropPixelAspectRatio, {1.0});
  p.set_s("OfxImagePropField", {"OfxFieldNone"});
  p.set_s("OfxImagePropUniqueIdentifier", {std::to_string(reinterpret_cast<std::uintptr_t>(img.get()))});
  return img;
}

// Source frame t at scale (sx, sy): nearest-neighbour downsampling of the stored frame.
std::unique_ptr<HostImage> source_image(int index, double sx, double sy) {
  auto img = make_image(scaled_bounds(sx, sy), sx, sy);
  std::lock_guard<std::mutex> lock(g_frames_mutex);
  const auto& f = g_frames[std::size_t(index)];
  const std::size_t pb = pixel_size();
  for (int Y = img->bounds.y1; Y < img->bounds.y2; ++Y)
    for (int X = img->bounds.x1; X < img->bounds.x2; ++X) {
      int x = std::min(g_opt.width - 1, int(std::floor((X + 0.5) / sx)) - g_opt.ox);
      int y = std::min(g_opt.height - 1, int(std::floor((Y + 0.5) / sy)) - g_opt.oy);
      x = std::max(0, x);
      y = std::max(0, y);
      const int row = g_opt.height - 1 - y;  // stored top-first
      std::memcpy(img->pixel(X, Y), &f[(std::size_t(row) * g_opt.width + x) * pb], pb);
    }
  return img;
}

// ---- effects, clips, params ----------------------------------------------------------------
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
Effect* EF(OfxImageEffectHandle h) { return reinterpret_cast<Effect*>(h); }

ofx::Plugin* g_plugin = nullptr;
Effect* g_instance = nullptr;

struct RenderContext {
  HostImage* output = nullptr;
  double sx = 1, sy = 1;
  int abort_after = -1;  // abort() says 1 from this call on (-1: never)
  int abort_calls = 0;
};
const std::thread::id g_main_thread = std::this_thread::get_id();
thread_local RenderContext* t_render = nullptr;
thread_local int t_in_action = 0;

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

std::string param_value_text(Param* p) {
  std::lock_guard<std::mutex> lock(p->mu);
  if (p->type == ofx::kParamTypeDouble) return std::to_string(p->dv);
  if (p->type == ofx::kParamTypeString) return p->sv;
  return std::to_string(p->iv);
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

OfxStatus param_get_value(OfxParamHandle param, ...) {
  va_list ap;
  va_start(ap, param);
  OfxStatus st = param_get(reinterpret_cast<Param*>(param), ap);
  va_end(ap);
  return st;
}
// No animation in this host: the value at any time is the value.
OfxStatus param_get_at_time(OfxParamHandle param, OfxTime time, ...) {
  va_list ap;
  va_start(ap, time);
  OfxStatus st = param_get(reinterpret_cast<Param*>(param), ap);
  va_end(ap);
  return st;
}
OfxStatus param_set_value(OfxParamHandle param, ...) {
  va_list ap;
  va_start(ap, param);
  OfxStatus st = param_set(reinterpret_cast<Param*>(param), ap);
  va_end(ap);
  return st;
}

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
  va_list ap;
  va_start(ap, fmt);
  OfxStatus status = emit_message("message", type, id, fmt, ap);
  va_end(ap);
  return status;
}
OfxStatus message_persistent(void*, const char* type, const char* id, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  OfxStatus status = emit_message("persistent", type, id, fmt, ap);
  va_end(ap);
  return status;
}
ofx::MessageSuiteV2 g_message_suite = {
    message_v1, message_persistent, [](void*) -> OfxStatus {
      emit("{\"event\":\"persistent_clear\"}");
      return ofx::kStatOK;
    }};

PropSet g_host_props;
std::vector<std::string> g_fetched_suites;
const void* fetch_suite(OfxPropertySetHandle, const char* name, int version) {
  const std::string n = name;
  {
    std::lock_guard<std::mutex> lock(g_out_mutex);
    g_fetched_suites.push_back(n + "/" + std::to_string(version));
  }
  if (n == ofx::kPropertySuite && version == 1) return &g_prop_suite;
  if (n == ofx::kImageEffectSuite && version == 1) return &g_effect_suite;
  if (n == ofx::kParameterSuite && version == 1) return &g_param_suite;
  if (n == ofx::kMessageSuite && version == 1) return &g_message_suite;
  if (n == ofx::kMessageSuite && version == 2 && g_opt.message_v2) return &g_message_suite;
  return nullptr;
}
ofx::Host g_host = {H(&g_host_props), fetch_suite};

// ---- process accounting --------------------------------------------------------------------
int count_dir(const char* path) {
  int n = 0;
  if (DIR* d = opendir(path)) {
    while (dirent* e = readdir(d)) n += e->d_name[0] != '.';
    closedir(d);
  }
  return n - (std::strcmp(path, "/proc/self/fd") == 0 ? 1 : 0);  // the DIR's own descriptor
}
int count_threads() { return count_dir("/proc/self/task"); }
int count_fds() { return count_dir("/proc/self/fd"); }

// ---- session ------------------------------------------------------------------------------
std::unique_ptr<Effect> g_descriptor, g_context_descriptor, g_instance_owner;

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

void write_raw(const std::string& path, HostImage& img) {
  std::ofstream out(path, std::ios::binary);
  const std::size_t len = std::size_t(img.bounds.x2 - img.bounds.x1) * pixel_size();
  for (int y = img.bounds.y2 - 1; y >= img.bounds.y1; --y)
    out.write(reinterpret_cast<const char*>(img.pixel(img.bounds.x1, y)), std::streamsize(len));
}

// True when some row of the window still holds only the 0xCD fill of make_image.
bool has_unwritten_row(HostImage& img) {
  const std::size_t len = std::size_t(img.bounds.x2 - img.bounds.x1) * pixel_size();
  for (int y = img.bounds.y1; y < img.bounds.y2; ++y) {
    const std::uint8_t* row = img.pixel(img.bounds.x1, y);
    if (std::all_of(row, row + len, [](std::uint8_t b) { return b == 0xCD; })) return true;
  }
  return false;
}

OfxStatus render_one(int t, double scale, int abort_after, const std::string& outdir, int thread_index, std::size_t seq) {
  const ofx::RectI b = scaled_bounds(scale, scale);
  auto out = make_image(b, scale, scale);
  out->host_owned = true;
  RenderContext ctx;
  ctx.output = out.get();
  ctx.sx = ctx.sy = scale;
  ctx.abort_after = abort_after;
  t_render = &ctx;
  PropSet in;
  in.set_d(ofx::kPropTime, {double(t)});
  in.set_i(ofx::kImageEffectPropRenderWindow, {b.x1, b.y1, b.x2, b.y2});
  in.set_d(ofx::kImageEffectPropRenderScale, {scale, scale});
  in.set_s(ofx::kImageEffectPropFieldToRender, {"OfxFieldNone"});
  in.set_i(ofx::kImageEffectPropSequentialRenderStatus, {0});
  in.set_i(ofx::kImageEffectPropInteractiveRenderStatus, {0});
  const auto start = std::chrono::steady_clock::now();
  OfxStatus st = call(ofx::kImageEffectActionRender, g_instance, &in, nullptr);
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  t_render = nullptr;
  if (st == ofx::kStatOK && has_unwritten_row(*out)) {  // a host would show (and cache) this frame
    emit("{\"event\":\"misuse\",\"what\":\"render returned OK without writing its output\",\"time\":" +
         std::to_string(t) + "}");
    g_exit = 3;
  }
  if (!outdir.empty() && st == ofx::kStatOK) write_raw(outdir + "/frame_" + std::to_string(t) + "_" + std::to_string(seq) + ".raw", *out);
  emit("{\"event\":\"render\",\"time\":" + std::to_string(t) + ",\"seq\":" + std::to_string(seq) +
       ",\"status\":" + std::to_string(st) +
       ",\"thread\":" + std::to_string(thread_index) + ",\"ms\":" + std::to_string(ms) +
       ",\"abort_calls\":" + std::to_string(ctx.abort_calls) + "}");
  return st;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  std::istringstream in(s);
  while (std::getline(in, cur, sep)) out.push_back(cur);
  return out;
}

void run_command(const std::string& cmd) {
  if (cmd.rfind("set:", 0) == 0) {
    const std::string kv = cmd.substr(4);
    const auto eq = kv.find('=');
    if (eq == std::string::npos) die("set needs NAME=VALUE");
    const std::string name = kv.substr(0, eq), value = kv.substr(eq + 1);
    Param* p = g_instance->params.find(name);
    if (!p) die("no parameter " + name);
    {
      std::lock_guard<std::mutex> lock(p->mu);
      if (p->type == ofx::kParamTypeString) p->sv = value;
      else if (p->type == ofx::kParamTypeDouble) p->dv = std::stod(value);
      else p->iv = std::stoi(value);
    }
    instance_changed(name, ofx::kChangeUserEdited);
  } else if (cmd == "analyze") {
    const auto start = std::chrono::steady_clock::now();
    instance_changed("analyze", ofx::kChangeUserEdited);
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    emit("{\"event\":\"analyze\",\"ms\":" + std::to_string(ms) + ",\"status_text\":" + jstr(status_text()) + "}");
  } else if (cmd.rfind("wait:", 0) == 0) {
    auto parts = split(cmd.substr(5), ':');
    if (parts.size() != 2) die("wait:PREFIX[|PREFIX]:SECONDS");
    const auto prefixes = split(parts[0], '|');
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(int(std::stod(parts[1]) * 1000));
    std::string s;
    while (true) {
      s = status_text();
      bool hit = false;
      for (const auto& p : prefixes) hit = hit || s.rfind(p, 0) == 0;
      if (hit) break;
      if (std::chrono::steady_clock::now() > deadline) {
        emit("{\"event\":\"timeout\",\"status_text\":" + jstr(s) + "}");
        g_exit = 3;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    Param* a = g_instance->params.find("analysis");
    emit("{\"event\":\"status\",\"status_text\":" + jstr(s) + ",\"analysis\":" + jstr(a ? param_value_text(a) : "") + "}");
  } else if (cmd == "status") {
    std::string s = status_text();
    Param* a = g_instance->params.find("analysis");
    emit("{\"event\":\"status\",\"status_text\":" + jstr(s) + ",\"analysis\":" + jstr(a ? param_value_text(a) : "") + "}");
  } else if (cmd.rfind("render:", 0) == 0) {
    auto parts = split(cmd.substr(7), ':');
    if (parts.size() != 4) die("render:T,T,..:THREADS:SCALE:OUTDIR");
    std::vector<int> times;
    for (auto& t : split(parts[0], ',')) times.push_back(std::stoi(t));
    const int threads = std::max(1, std::stoi(parts[1]));
    const double scale = std::stod(parts[2]);
    const std::string outdir = parts[3];
    PropSet seq;
    seq.set_d(ofx::kImageEffectPropFrameRange, {double(g_opt.first), double(g_opt.first + g_opt.count - 1)});
    seq.set_d(ofx::kImageEffectPropFrameStep, {1.0});
    seq.set_i("OfxPropIsInteractive", {0});
    seq.set_d(ofx::kImageEffectPropRenderScale, {scale, scale});
    seq.set_i(ofx::kImageEffectPropSequentialRenderStatus, {0});
    seq.set_i(ofx::kImageEffectPropInteractiveRenderStatus, {0});
    call(ofx::kImageEffectActionBeginSequenceRender, g_instance, &seq, nullptr);
    std::atomic<std::size_t> next{0};
    std::vector<std::thread> pool;
    for (int k = 0; k < threads; ++k)
      pool.emplace_back([&, k] {
        for (std::size_t i; (i = next++) < times.size();) render_one(times[i], scale, -1, outdir, k, i);
      });
    for (auto& th : pool) th.join();
    call(ofx::kImageEffectActionEndSequenceRender, g_instance, &seq, nullptr);
  } else if (cmd.rfind("abortrender:", 0) == 0) {  // abort() turns 1 after AFTER calls (default 0)
    auto parts = split(cmd.substr(12), ':');
    render_one(std::stoi(parts.at(0)), 1.0, parts.size() > 1 ? std::stoi(parts[1]) : 0, "", 0, 0);
  } else if (cmd == "disconnect") {  // the Source clip loses its input
    g_opt.connected = false;
    g_instance->clips.at(ofx::kImageEffectSimpleSourceClipName)->props.set_i(ofx::kImageClipPropConnected, {0});
  } else if (cmd.rfind("source:", 0) == 0) {
    load_frames(cmd.substr(7));
  } else if (cmd == "reopen") {
    // Save the persistent parameters, destroy the instance, create a new one from them (as a
    // host does when a project is closed and opened again).
    std::map<std::string, std::string> saved;
    for (auto& p : g_instance->params.params)
      if (p->props.gi(ofx::kParamPropPersistant, 1) && p->type != ofx::kParamTypePushButton)
        saved[p->name] = param_value_text(p.get());
    destroy_instance();
    create_instance(&saved);
  } else if (cmd.rfind("sleep:", 0) == 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(int(std::stod(cmd.substr(6)) * 1000)));
  } else {
    die("unknown command " + cmd);
  }
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

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> commands;
  bool in_commands = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) die("missing value for " + a);
      return argv[++i];
    };
    if (in_commands) commands.push_back(a);
    else if (a == "--") in_commands = true;
    else if (a == "--clip") g_opt.clip_path = next();
    else if (a == "--size") {
      auto v = split(next(), 'x');
      g_opt.width = std::stoi(v.at(0));
      g_opt.height = std::stoi(v.at(1));
    } else if (a == "--channels") g_opt.channels = std::stoi(next());
    else if (a == "--depth") {
      std::string d = next();
      g_opt.depth = d == "byte" ? ofx::kBitDepthByte : d == "short" ? ofx::kBitDepthShort : d == "float" ? ofx::kBitDepthFloat : "";
      if (g_opt.depth.empty()) die("--depth byte|short|float");
    } else if (a == "--first") g_opt.first = std::stoi(next());
    else if (a == "--origin") {
      auto v = split(next(), ',');
      g_opt.ox = std::stoi(v.at(0));
      g_opt.oy = std::stoi(v.at(1));
    } else if (a == "--negative-rowbytes") g_opt.negative_rowbytes = true;
    else if (a == "--pad") g_opt.pad = std::stoi(next());
    else if (a == "--premult") g_opt.premult = true;
    else if (a == "--context") g_opt.context = next() == "general" ? ofx::kImageEffectContextGeneral : ofx::kImageEffectContextFilter;
    else if (a == "--no-message-v2") g_opt.message_v2 = false;
    else if (a == "--proxy") g_opt.proxy = std::stod(next());
    else if (g_opt.bundle.empty()) g_opt.bundle = a;
    else die("unknown option " + a);
  }
  if (g_opt.bundle.empty() || g_opt.clip_path.empty()) die("usage: ofx_test_host BUNDLE --clip RAW --size WxH ... -- COMMANDS");
  load_frames(g_opt.clip_path);

  std::thread([] {}).join();  // lets runtime helpers (e.g. ThreadSanitizer's) start before the baseline
  const int threads_before = count_threads(), fds_before = count_fds();

  // Find the binary inside the bundle: NAME.ofx.bundle/Contents/<arch>/NAME.ofx
  std::string bundle = g_opt.bundle;
  while (!bundle.empty() && bundle.back() == '/') bundle.pop_back();
  std::string base = bundle.substr(bundle.find_last_of('/') + 1);
  const std::string suffix = ".bundle";
  if (base.size() <= suffix.size() || base.compare(base.size() - suffix.size(), suffix.size(), suffix) != 0)
    die("not an OFX bundle: " + bundle);
  base = base.substr(0, base.size() - suffix.size());  // NAME.ofx
#if defined(__APPLE__)
  const std::string arch = "MacOS";
#else
  const std::string arch = "Linux-x86-64";
#endif
  const std::string binary = bundle + "/Contents/" + arch + "/" + base;
  void* lib = dlopen(binary.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!lib) die(std::string("dlopen failed: ") + dlerror());
  auto get_count = reinterpret_cast<int (*)()>(dlsym(lib, "OfxGetNumberOfPlugins"));
  auto get_plugin = reinterpret_cast<ofx::Plugin* (*)(int)>(dlsym(lib, "OfxGetPlugin"));
  if (!get_count || !get_plugin) die("the binary does not export OfxGetNumberOfPlugins/OfxGetPlugin");
  const int n = get_count();
  if (n < 1) die("the binary has no plugins");
  g_plugin = get_plugin(0);
  if (!g_plugin || std::strcmp(g_plugin->pluginApi, ofx::kImageEffectPluginApi) != 0 ||
      g_plugin->apiVersion != ofx::kImageEffectPluginApiVersion)
    die("plugin 0 is not an image effect of API version 1");
  emit("{\"event\":\"load\",\"plugins\":" + std::to_string(n) + ",\"id\":" + jstr(g_plugin->pluginIdentifier) +
       ",\"version\":\"" + std::to_string(g_plugin->pluginVersionMajor) + "." +
       std::to_string(g_plugin->pluginVersionMinor) + "\"}");

  g_host_props.set_s(ofx::kPropName, {"io.github.ipfacediff.testhost"});
  g_host_props.set_s(ofx::kPropLabel, {"ipfacediff test host"});
  g_host_props.set_i(ofx::kImageEffectPropSupportsMultiResolution, {1});
  g_host_props.set_i(ofx::kImageEffectPropSupportsTiles, {1});
  g_host_props.set_i(ofx::kImageEffectPropTemporalClipAccess, {1});
  g_host_props.set_s(ofx::kImageEffectPropSupportedComponents, {ofx::kImageComponentRGBA, ofx::kImageComponentRGB});
  g_host_props.set_s(ofx::kImageEffectPropSupportedPixelDepths, {ofx::kBitDepthByte, ofx::kBitDepthShort, ofx::kBitDepthFloat});
  g_host_props.set_s(ofx::kImageEffectPropSupportedContexts, {ofx::kImageEffectContextFilter, ofx::kImageEffectContextGeneral});
  g_plugin->setHost(&g_host);

  if (OfxStatus st = call(ofx::kActionLoad, nullptr, nullptr, nullptr); st != ofx::kStatOK && st != ofx::kStatReplyDefault)
    die("Load failed: " + std::to_string(st));
  g_descriptor = std::make_unique<Effect>();
  g_descriptor->props.set_s(ofx::kPropType, {"OfxTypeImageEffect"});
  g_descriptor->props.set_s("OfxPluginPropFilePath", {bundle});
  g_descriptor->params.effect_props = &g_descriptor->props;
  if (OfxStatus st = call(ofx::kActionDescribe, g_descriptor.get(), nullptr, nullptr); st != ofx::kStatOK)
    die("Describe failed: " + std::to_string(st));
  auto contexts = g_descriptor->props.gsv(ofx::kImageEffectPropSupportedContexts);
  if (std::find(contexts.begin(), contexts.end(), g_opt.context) == contexts.end())
    die("the plugin does not support context " + g_opt.context);
  g_context_descriptor = std::make_unique<Effect>();
  g_context_descriptor->props.copy_from(g_descriptor->props);
  g_context_descriptor->params.effect_props = &g_context_descriptor->props;
  PropSet ctx_args;
  ctx_args.set_s(ofx::kImageEffectPropContext, {g_opt.context});
  if (OfxStatus st = call(ofx::kImageEffectActionDescribeInContext, g_context_descriptor.get(), &ctx_args, nullptr);
      st != ofx::kStatOK)
    die("DescribeInContext failed: " + std::to_string(st));
  if (!g_context_descriptor->clips.count(ofx::kImageEffectSimpleSourceClipName) ||
      !g_context_descriptor->clips.count(ofx::kImageEffectOutputClipName))
    die("the plugin did not define the Source and Output clips");
  describe_json();

  create_instance(nullptr);
  for (const auto& c : commands) run_command(c);
  if (g_instance) destroy_instance();
  const int threads_destroyed = count_threads(), fds_destroyed = count_fds();

  OfxStatus st = call(ofx::kActionUnload, nullptr, nullptr, nullptr);
  g_context_descriptor.reset();
  g_descriptor.reset();
  dlclose(lib);
  std::string suites;
  for (std::size_t i = 0; i < g_fetched_suites.size(); ++i) suites += (i ? "," : "") + jstr(g_fetched_suites[i]);
  emit("{\"event\":\"leaks\",\"unload_status\":" + std::to_string(st) + ",\"threads_before\":" +
       std::to_string(threads_before) + ",\"threads_after_destroy\":" + std::to_string(threads_destroyed) +
       ",\"threads_after\":" + std::to_string(count_threads()) + ",\"fds_before\":" + std::to_string(fds_before) +
       ",\"fds_after_destroy\":" + std::to_string(fds_destroyed) + ",\"fds_after\":" + std::to_string(count_fds()) +
       ",\"images_outstanding\":" + std::to_string(g_images_out.load()) + ",\"images_fetched\":" +
       std::to_string(g_images_fetched.load()) + ",\"suites\":[" + suites + "]}");
  if (g_images_out.load() != 0) g_exit = 3;
  return g_exit;
}
