// ipfacediff's own small OpenFX test host (Linux/macOS): loads a bundle by path the way hosts
// do and drives one image effect through a scripted session.
//
// In:  ofx_test_host BUNDLE [options] -- COMMAND...
//      options describe the Source clip (a raw file of frames, H x W x C, top row first) and the
//      image layout the host hands out (origin, row bytes, premultiplication, depth);
//      (--proxy S: actions other than render run at render scale S, as in a host's proxy mode);
//      commands: set:NAME=VALUE  analyze  wait:PREFIX[|PREFIX..]:SECONDS  status
//                render:T,T,..:THREADS:SCALE:OUTDIR  abortrender:T[:AFTER]  source:PATH  disconnect
//                reopen  sleep:S  joins:N (N threads started and joined: the host's own thread count)
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
//
// Parts: output (JSON events, exit status), props (property sets and the property suite),
// images (the Source clip, host images), suites (effect, clips, params and the host's
// suites), session (the instance's life) and commands (the scripted commands); this file
// parses the command line and walks the plugin from dlopen to dlclose.
#include <dlfcn.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "output.h"
#include "session.h"

using namespace testhost;

namespace {

// Fills g_opt from the options; the command words after `--`.
std::vector<std::string> parse_args(int argc, char** argv) {
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
  return commands;
}

// dlopens the binary inside the bundle (NAME.ofx.bundle/Contents/<arch>/NAME.ofx) and sets
// g_plugin to its first plugin, which must be an image effect; the library handle.
void* open_plugin(const std::string& bundle) {
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
  return lib;
}

// setHost, Load, Describe and DescribeInContext, as hosts do before making an instance.
void describe_plugin(const std::string& bundle) {
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
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> commands = parse_args(argc, argv);
  load_frames(g_opt.clip_path);
  std::thread([] {}).join();  // lets runtime helpers (e.g. ThreadSanitizer's) start before the baseline
  const int threads_before = count_threads(), fds_before = count_fds();

  std::string bundle = g_opt.bundle;
  while (!bundle.empty() && bundle.back() == '/') bundle.pop_back();
  void* lib = open_plugin(bundle);
  describe_plugin(bundle);
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
       ",\"threads_after\":" + std::to_string(count_threads_settled(threads_before)) + ",\"fds_before\":" + std::to_string(fds_before) +
       ",\"fds_after_destroy\":" + std::to_string(fds_destroyed) + ",\"fds_after\":" + std::to_string(count_fds()) +
       ",\"images_outstanding\":" + std::to_string(g_images_out.load()) + ",\"images_fetched\":" +
       std::to_string(g_images_fetched.load()) + ",\"suites\":[" + suites + "]}");
  if (g_images_out.load() != 0) g_exit = 3;
  return g_exit;
}
