// The ipfacediff OpenFX image effect ("IP-FaceDiff"): a thin client of the engine.
//
// In: host actions through mainEntry (describe, params, Analyze, render) and the host suites.
// Out: rendered frames (the engine's edit of each frame, or the input passed through), a
// status line, persistent messages. Nothing is computed here except pixel packing.
//
// Flow. Analyze (push button, main thread) reads every frame of the Source clip's range at
// full resolution (temporal clip access), hashes each frame's raw pixels, packs them for the
// wire and hands them to this instance's Worker (worker.h), which follows the job on the
// engine and keeps the finished frames in memory. The job id is derived from (clip content
// hash, parameter hash), so re-analysing identical input is recognised by the engine and never
// recomputed. Render (any thread, any order) never touches the network: it looks up the result
// for (parameter hash, frame), checks that the source frame still hashes to what was analysed,
// and copies the edited frame into the output window (pixels.h); otherwise it passes the input
// through and posts a message. Parameters are read (params.h) and the status line and the
// secret `analysis` parameter (the job record, records.h, kept with the project; it changes
// when the job is done, which makes the host re-render) are written only in main-thread
// actions, as OpenFX requires.
//
// Thread safety (declared kOfxImageEffectRenderFullySafe): per-instance state sits behind one
// mutex; finished frames are immutable shared buffers; sockets belong to worker threads only.
// mainEntry catches every exception; worker threads catch everything too.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <vector>

#include "engine_client.h"
#include "hash.h"
#include "host.h"
#include "ofx_api.h"
#include "params.h"
#include "pixels.h"
#include "records.h"
#include "worker.h"

namespace ipfd::plugin {
namespace {

constexpr const char* kPluginId = "io.github.ipfacediff.IPFaceDiff";
constexpr int kMaxRecords = 4;

// ---- instances ----------------------------------------------------------------------------
struct Instance;
void evict_locked(Instance* I, const std::shared_ptr<Record>& keep);

struct Instance {
  OfxImageEffectHandle effect = nullptr;
  OfxImageClipHandle source = nullptr, output = nullptr;
  std::vector<OfxParamHandle> params;  // param_table() order

  std::mutex mu;                                 // guards settings, records, current, record fields, message
  Settings settings;                             // read from the parameters in main-thread actions
  std::uint64_t settings_hash = 0;               // params_hash(settings)
  std::vector<std::shared_ptr<Record>> records;  // newest last
  std::shared_ptr<Record> current;               // the one the status line reports
  std::string idle_status = param_table()[kStatus].text;
  std::string posted_message;                    // last persistent message (to post changes only)
  bool recovery_tried = false;
  std::string saved_analysis;  // the `analysis` parameter at createInstance (not changed afterwards)

  Worker worker{mu, [this](const std::shared_ptr<Record>& done) { evict_locked(this, done); }};

  // main thread only: what the status / analysis params hold
  std::string shown_status, shown_analysis;
};

Instance* instance_of(OfxImageEffectHandle effect) {
  OfxPropertySetHandle props = nullptr;
  E->getPropertySet(effect, &props);
  void* ptr = nullptr;
  P->propGetPointer(props, ofx::kPropInstanceData, 0, &ptr);
  if (!ptr) throw Failure(ofx::kStatErrBadHandle, "no instance data");
  return static_cast<Instance*>(ptr);
}

// Main-thread actions only (see read_settings): render uses the copy kept here.
Settings refresh_settings(Instance* I) {
  Settings s = read_settings(I->params);
  const std::uint64_t h = params_hash(s);
  std::lock_guard<std::mutex> lock(I->mu);
  I->settings = s;
  I->settings_hash = h;
  return s;
}

// Finished frames stay in memory; beyond the budget ($IPFACEDIFF_OFX_CACHE_MB, default 4096 MB
// per instance) the oldest other finished analyses are dropped (Analyze fetches them again).
void evict_locked(Instance* I, const std::shared_ptr<Record>& keep) {
  static const std::size_t budget = [] {
    const char* env = std::getenv("IPFACEDIFF_OFX_CACHE_MB");
    long long mb = env ? std::atoll(env) : 4096;
    return std::size_t(std::max(1LL, mb)) << 20;
  }();
  auto total = [&] {
    std::size_t sum = 0;
    for (const auto& r : I->records) sum += r->results.size() * r->fmt.frame_bytes();
    return sum;
  };
  for (auto it = I->records.begin(); it != I->records.end() && total() > budget;) {
    if (*it != keep && *it != I->current && !(*it)->results.empty()) it = I->records.erase(it);
    else ++it;
  }
}

// After a project is reopened (or an effect copied), the secret `analysis` parameter (as read
// at createInstance) names the job: follow it again without re-reading the clip. Tried once
// per instance, from any thread.
void recover(Instance* I) {
  {
    std::lock_guard<std::mutex> lock(I->mu);
    if (I->recovery_tried || !I->records.empty()) return;
    I->recovery_tried = true;
  }
  auto rec = decode_record(I->saved_analysis);
  if (!rec) return;
  rec->state = JobState::Connecting;
  rec->status = "reconnecting to job " + short_id(rec->id) + "…";
  {
    std::lock_guard<std::mutex> lock(I->mu);
    if (!I->records.empty()) return;  // an Analyze got there first
    I->records.push_back(rec);
    I->current = rec;
  }
  I->worker.start(rec, {}, Settings{});
}

// Main thread only: mirror the current status (and the persisted analysis) into the params.
void sync_params(Instance* I) {
  std::string status, analysis;
  {
    std::lock_guard<std::mutex> lock(I->mu);
    status = I->current ? I->current->status : I->idle_status;
    if (I->current) analysis = encode_record(*I->current);
  }
  if (status != I->shown_status) {
    Q->paramSetValue(I->params[kStatus], status.c_str());
    I->shown_status = status;
  }
  if (!analysis.empty() && analysis != I->shown_analysis) {
    Q->paramSetValue(I->params[kAnalysis], analysis.c_str());  // changes when the job is done: the host re-renders
    I->shown_analysis = analysis;
  }
}

void set_idle(Instance* I, const std::string& text) {
  std::lock_guard<std::mutex> lock(I->mu);
  I->current.reset();
  I->idle_status = text;
}

// ---- Analyze ------------------------------------------------------------------------------
bool is_full_scale(double sx, double sy) { return std::abs(sx - 1.0) < 1e-6 && std::abs(sy - 1.0) < 1e-6; }

void need_full_scale(double sx, double sy) {
  if (is_full_scale(sx, sy)) return;
  char scale[64];
  std::snprintf(scale, sizeof scale, "%g x %g", sx, sy);
  throw UserError(std::string("Analyze needs full-resolution frames but the host gives them at render scale ") + scale +
                  " (proxy mode): switch proxy off and press Analyze again");
}

void analyze(Instance* I, OfxPropertySetHandle in_args) {
  Settings s = refresh_settings(I);
  // No prompt check here: the engine checks the prompt (engine.prompts.prompt_problem, the one
  // rule for CLI, protocol and plugins) when it answers SUBMIT, and its sentence becomes the
  // status. A copy of the rule in C++ would be a second home that drifts.
  if (s.address.empty())
    throw UserError(std::string("the engine address is empty (e.g. ") + param_table()[kAddress].text + ")");

  if (g_host && !prop_int(g_host->host, ofx::kImageEffectPropTemporalClipAccess, 0, 1))
    throw UserError("this host does not let effects read other frames (temporal clip access), which Analyze needs");
  OfxPropertySetHandle src_props = nullptr;
  E->clipGetPropertySet(I->source, &src_props);
  if (!prop_int(src_props, ofx::kImageClipPropConnected, 0, 1)) throw UserError("the Source clip is not connected");
  // Images in an action come at its render scale; a proxy-scale job would be upscaled at render.
  need_full_scale(prop_double(in_args, ofx::kImageEffectPropRenderScale, 0, 1.0),
                  prop_double(in_args, ofx::kImageEffectPropRenderScale, 1, 1.0));
  double range[2] = {0, 0};
  P->propGetDoubleN(src_props, ofx::kImageEffectPropFrameRange, 2, range);
  const int first = int(std::ceil(range[0] - 1e-6)), last = int(std::floor(range[1] + 1e-6));
  const int count = last - first + 1;
  if (count < 1) throw UserError("the Source clip has no frames");
  if (count > kProtocolMaxFrames)
    throw UserError("the clip has " + std::to_string(count) + " frames; one job takes at most " +
                    std::to_string(kProtocolMaxFrames) + ": trim it");
  const std::uint64_t phash = params_hash(s);

  // Pressed again with unchanged settings while the job is alive or done: refresh only.
  {
    std::lock_guard<std::mutex> lock(I->mu);
    auto& c = I->current;
    if (c && c->params_hash == phash && c->first == first && c->count == count && c->address == s.address &&
        !c->mismatch && (!terminal(c->state) || c->state == JobState::Done))
      return;
  }

  // Read the whole range (temporal clip access), hash and pack it.
  Format fmt;
  std::vector<Buffer> frames;
  std::vector<std::uint64_t> hashes;
  std::uint64_t total = 0;
  for (int t = first; t <= last; ++t) {
    ofx::RectD rod{0, 0, 0, 0};
    const bool have_rod = E->clipGetRegionOfDefinition(I->source, t, &rod) == ofx::kStatOK;
    Image img(I->source, t, have_rod ? &rod : nullptr);
    if (!img) throw UserError("the host gave no image for frame " + std::to_string(t));
    need_full_scale(img.sx, img.sy);
    Format f = format_of(img);
    if (t == first) {
      fmt = f;
      if (f.width < 8 || f.height < 8) throw UserError("the frames are too small (" + describe_format(f) + ")");
    } else if (!f.same_pixels(fmt)) {
      throw UserError("frame " + std::to_string(t) + " is " + describe_format(f) + ", frame " + std::to_string(first) +
                      " is " + describe_format(fmt) + ": one job needs frames of one size and format");
    }
    total += fmt.frame_bytes();
    if (total > (std::uint64_t(4) << 30))
      throw UserError("the clip is larger than 4 GiB of pixels: analyse a shorter range");
    hashes.push_back(frame_hash(img));
    frames.push_back(to_wire(img));
  }

  auto rec = std::make_shared<Record>();
  rec->address = s.address;
  rec->params_hash = phash;
  rec->first = first;
  rec->count = count;
  rec->fmt = fmt;
  rec->frame_hashes = hashes;
  std::uint64_t clip = format_seed(fmt);
  clip = hash_bytes(hashes.data(), hashes.size() * sizeof(std::uint64_t), clip);
  rec->id = "ofx-" + hex64(clip) + "-" + hex64(phash);
  rec->status = "submitting…";

  {
    std::lock_guard<std::mutex> lock(I->mu);
    for (auto it = I->records.begin(); it != I->records.end(); ++it)
      if ((*it)->id == rec->id && (*it)->address == rec->address) {
        if ((*it)->state == JobState::Done) {  // identical input and settings: reuse the frames
          (*it)->mismatch = false;
          I->current = *it;
          return;
        }
        I->records.erase(it);
        break;
      }
    I->records.push_back(rec);
    while (int(I->records.size()) > kMaxRecords) I->records.erase(I->records.begin());
    I->current = rec;
  }
  I->worker.start(rec, std::move(frames), s);
}

// ---- render -------------------------------------------------------------------------------
void post_message(Instance* I, const std::string& text, bool serious) {
  {
    std::lock_guard<std::mutex> lock(I->mu);
    if (text == I->posted_message) return;
    I->posted_message = text;
  }
  if (M2 && M2->setPersistentMessage) {
    if (text.empty()) M2->clearPersistentMessage(I->effect);
    else M2->setPersistentMessage(I->effect, serious ? ofx::kMessageError : ofx::kMessageWarning, "ipfacediff", "%s",
                                  text.c_str());
  } else if (M1 && !text.empty()) {
    // Without persistent messages, only problems the user must act on are worth a message.
    M1->message(I->effect, serious ? ofx::kMessageError : ofx::kMessageLog, "ipfacediff", "%s", text.c_str());
  }
}

std::string passthrough_reason(const Record* r) {
  if (!r) return "ipfacediff: not analysed with these settings — press Analyze (showing the input)";
  switch (r->state) {
    case JobState::Done: return "";
    case JobState::Connecting:
    case JobState::Uploading:
    case JobState::Queued:
    case JobState::Running:
    case JobState::Fetching:
      return "ipfacediff: the edit is not ready yet (see the status line); showing the input";
    default:
      return "ipfacediff: " + r->status + " (showing the input)";
  }
}

bool serious(const Record* r) {
  return r && (r->state == JobState::Unreachable || r->state == JobState::Failed || r->state == JobState::Error ||
               r->state == JobState::Lost);
}

bool source_connected(Instance* I) {
  OfxPropertySetHandle props = nullptr;
  E->clipGetPropertySet(I->source, &props);
  return prop_int(props, ofx::kImageClipPropConnected, 0, 1) != 0;
}

// An aborted render returns kOfxStatFailed: its output is unwritten or half written, and the
// host must not keep it as a finished frame.
OfxStatus render(Instance* I, OfxPropertySetHandle in_args) {
  const OfxTime t = prop_double(in_args, ofx::kPropTime, 0, 0.0);
  int w[4] = {0, 0, 0, 0};
  P->propGetIntN(in_args, ofx::kImageEffectPropRenderWindow, 4, w);
  const ofx::RectI win{w[0], w[1], w[2], w[3]};
  const double sx = prop_double(in_args, ofx::kImageEffectPropRenderScale, 0, 1.0);
  const double sy = prop_double(in_args, ofx::kImageEffectPropRenderScale, 1, 1.0);
  if (E->abort(I->effect)) return ofx::kStatFailed;

  Image dst(I->output, t, nullptr);
  if (!dst) throw Failure(ofx::kStatFailed, "the host gave no output image");
  std::unique_ptr<Image> src(new Image(I->source, t, nullptr));
  if (!*src) src.reset();
  if (src && (src->dtype != dst.dtype || src->channels != dst.channels))
    throw Failure(ofx::kStatErrImageFormat, "the input and output images differ in depth or components");
  // The window must lie inside the output image.
  ofx::RectI wnd{std::max(win.x1, dst.bounds.x1), std::max(win.y1, dst.bounds.y1), std::min(win.x2, dst.bounds.x2),
                 std::min(win.y2, dst.bounds.y2)};
  if (wnd.x1 >= wnd.x2 || wnd.y1 >= wnd.y2) return ofx::kStatOK;

  std::uint64_t phash;
  {
    std::lock_guard<std::mutex> lock(I->mu);
    phash = I->settings_hash;
  }
  const double tr = std::round(t);
  const bool whole_frame = std::abs(t - tr) < 1e-3;
  auto find = [&]() -> std::shared_ptr<Record> {
    std::lock_guard<std::mutex> lock(I->mu);
    for (auto it = I->records.rbegin(); it != I->records.rend(); ++it) {
      const Record& r = **it;
      if (r.params_hash == phash && tr >= r.first && tr < r.first + r.count) return *it;
    }
    return nullptr;
  };
  std::shared_ptr<Record> rec = whole_frame ? find() : nullptr;
  if (!rec && whole_frame) {
    recover(I);
    rec = find();
  }

  std::string reason;
  Buffer frame;
  bool is_serious = false;
  if (!src) {
    reason = source_connected(I) ? "ipfacediff: the host gave no Source image for frame " + std::to_string(int(tr)) +
                                       " (showing black)"
                                 : "ipfacediff: the Source clip is not connected (showing black)";
    is_serious = true;
  } else if (!whole_frame) {
    reason = "ipfacediff: the engine edits whole frames only; showing the input at sub-frame time";
  } else {
    std::lock_guard<std::mutex> lock(I->mu);
    reason = passthrough_reason(rec.get());
    is_serious = serious(rec.get());
    if (rec && rec->state == JobState::Done) {
      if (dst.dtype != rec->fmt.dtype || dst.channels != rec->fmt.channels)
        reason = "ipfacediff: the clip's pixel format changed since Analyze — press Analyze (showing the input)";
      else frame = rec->results[std::size_t(tr - rec->first)];
    }
  }
  if (frame.data && (sx > 1.0 + 1e-6 || sy > 1.0 + 1e-6)) {
    frame = Buffer();  // the edit exists at full resolution only: never upscale it
    reason = "ipfacediff: render scale above 1 is not supported (showing the input)";
  }
  if (frame.data && is_full_scale(sx, sy)) {
    // At full scale the source must still be the analysed frame.
    const std::size_t idx = std::size_t(tr - rec->first);
    if (!format_of(*src).same_pixels(rec->fmt) || frame_hash(*src) != rec->frame_hashes[idx]) {
      frame = Buffer();
      reason = "ipfacediff: frame " + std::to_string(int(tr)) +
               " differs from the analysed clip (the input changed) — press Analyze (showing the input)";
      std::lock_guard<std::mutex> lock(I->mu);
      rec->mismatch = true;
    }
  }

  if (!frame.data) {
    post_message(I, reason, is_serious);
    return passthrough(dst, src.get(), wnd, I->effect) ? ofx::kStatOK : ofx::kStatFailed;
  }
  if (!write_result(rec->fmt, frame, dst, src.get(), wnd, 1.0 / sx, 1.0 / sy, I->effect)) return ofx::kStatFailed;
  post_message(I, "", false);
  return ofx::kStatOK;
}

// ---- describe -----------------------------------------------------------------------------
OfxStatus describe(OfxImageEffectHandle effect) {
  OfxPropertySetHandle props = nullptr;
  E->getPropertySet(effect, &props);
  P->propSetString(props, ofx::kPropLabel, 0, "IP-FaceDiff");
  P->propSetString(props, ofx::kImageEffectPluginPropGrouping, 0, "ipfacediff");
  P->propSetString(props, ofx::kPropPluginDescription, 0,
                   "Text-driven, identity-preserving face edits from the ipfacediff engine. Write a prompt, press "
                   "Analyze; frames show the edit once the engine is done.");
  P->propSetString(props, ofx::kImageEffectPropSupportedContexts, 0, ofx::kImageEffectContextFilter);
  P->propSetString(props, ofx::kImageEffectPropSupportedContexts, 1, ofx::kImageEffectContextGeneral);
  P->propSetString(props, ofx::kImageEffectPropSupportedPixelDepths, 0, ofx::kBitDepthByte);
  P->propSetString(props, ofx::kImageEffectPropSupportedPixelDepths, 1, ofx::kBitDepthShort);
  P->propSetString(props, ofx::kImageEffectPropSupportedPixelDepths, 2, ofx::kBitDepthFloat);
  P->propSetInt(props, ofx::kImageEffectPropSupportsMultiResolution, 0, 1);
  P->propSetInt(props, ofx::kImageEffectPropSupportsTiles, 0, 0);
  P->propSetInt(props, ofx::kImageEffectPropTemporalClipAccess, 0, 1);
  P->propSetInt(props, ofx::kImageEffectPropSupportsMultipleClipDepths, 0, 0);
  P->propSetInt(props, ofx::kImageEffectPluginPropSingleInstance, 0, 0);
  P->propSetString(props, ofx::kImageEffectPluginRenderThreadSafety, 0, ofx::kImageEffectRenderFullySafe);
  P->propSetInt(props, ofx::kImageEffectPluginPropHostFrameThreading, 0, 0);
  P->propSetInt(props, ofx::kImageEffectInstancePropSequentialRender, 0, 0);
  return ofx::kStatOK;
}

OfxStatus describe_in_context(OfxImageEffectHandle effect) {
  for (const char* name : {ofx::kImageEffectSimpleSourceClipName, ofx::kImageEffectOutputClipName}) {
    OfxPropertySetHandle clip = nullptr;
    if (E->clipDefine(effect, name, &clip) != ofx::kStatOK || !clip)
      throw Failure(ofx::kStatErrMissingHostFeature, std::string("cannot define clip ") + name);
    P->propSetString(clip, ofx::kImageEffectPropSupportedComponents, 0, ofx::kImageComponentRGBA);
    P->propSetString(clip, ofx::kImageEffectPropSupportedComponents, 1, ofx::kImageComponentRGB);
    P->propSetInt(clip, ofx::kImageEffectPropSupportsTiles, 0, 0);
    if (std::strcmp(name, ofx::kImageEffectSimpleSourceClipName) == 0)
      P->propSetInt(clip, ofx::kImageEffectPropTemporalClipAccess, 0, 1);
  }
  OfxParamSetHandle set = nullptr;
  E->getParamSet(effect, &set);
  define_params(set);
  return ofx::kStatOK;
}

// ---- instance lifetime --------------------------------------------------------------------
OfxStatus create_instance(OfxImageEffectHandle effect) {
  auto I = std::make_unique<Instance>();
  I->effect = effect;
  if (E->clipGetHandle(effect, ofx::kImageEffectSimpleSourceClipName, &I->source, nullptr) != ofx::kStatOK ||
      E->clipGetHandle(effect, ofx::kImageEffectOutputClipName, &I->output, nullptr) != ofx::kStatOK)
    throw Failure(ofx::kStatErrBadHandle, "missing clips");
  OfxParamSetHandle set = nullptr;
  E->getParamSet(effect, &set);
  I->params = fetch_params(set);
  char* text = nullptr;
  Q->paramGetValue(I->params[kStatus], &text);
  I->shown_status = text ? text : "";
  text = nullptr;
  Q->paramGetValue(I->params[kAnalysis], &text);
  I->shown_analysis = I->saved_analysis = text ? text : "";
  refresh_settings(I.get());
  OfxPropertySetHandle props = nullptr;
  E->getPropertySet(effect, &props);
  P->propSetPointer(props, ofx::kPropInstanceData, 0, I.get());
  I.release();
  return ofx::kStatOK;
}

OfxStatus destroy_instance(OfxImageEffectHandle effect) {
  Instance* I = instance_of(effect);
  I->worker.stop();
  OfxPropertySetHandle props = nullptr;
  E->getPropertySet(effect, &props);
  P->propSetPointer(props, ofx::kPropInstanceData, 0, nullptr);
  delete I;
  return ofx::kStatOK;
}

OfxStatus instance_changed(Instance* I, OfxPropertySetHandle in_args) {
  const std::string type = prop_str(in_args, ofx::kPropType);
  const std::string name = prop_str(in_args, ofx::kPropName);
  const std::string reason = prop_str(in_args, ofx::kPropChangeReason);
  const auto& table = param_table();
  if (type == ofx::kTypeParameter && (name == table[kStatus].name || name == table[kAnalysis].name)) return ofx::kStatOK;
  if (type == ofx::kTypeParameter && name == table[kAnalyze].name && reason == ofx::kChangeUserEdited) {
    try {
      analyze(I, in_args);
    } catch (const UserError& e) {
      set_idle(I, std::string("error: ") + e.what());
    }
  } else {
    refresh_settings(I);
    recover(I);
  }
  sync_params(I);
  return ofx::kStatOK;
}

OfxStatus purge_caches(Instance* I) {
  std::lock_guard<std::mutex> lock(I->mu);
  I->records.erase(std::remove_if(I->records.begin(), I->records.end(),
                                  [&](const std::shared_ptr<Record>& r) { return r != I->current && r != I->worker.record_locked(); }),
                   I->records.end());
  return ofx::kStatOK;
}

// ---- entry points -------------------------------------------------------------------------
OfxStatus load() { return fetch_suites() ? ofx::kStatOK : ofx::kStatErrMissingHostFeature; }

OfxStatus unload() {
  ipfd::shutdown_context();  // all instances (and their sockets) are gone by now
  return ofx::kStatOK;
}

OfxStatus dispatch(const char* action, const void* handle, OfxPropertySetHandle in_args) {
  auto effect = static_cast<OfxImageEffectHandle>(const_cast<void*>(handle));
  const std::string a = action;
  if (a == ofx::kActionLoad) return load();
  if (a == ofx::kActionUnload) return unload();
  if (a == ofx::kActionDescribe) return describe(effect);
  if (a == ofx::kImageEffectActionDescribeInContext) return describe_in_context(effect);
  if (a == ofx::kActionCreateInstance) return create_instance(effect);
  if (a == ofx::kActionDestroyInstance) return destroy_instance(effect);
  if (a == ofx::kImageEffectActionRender) return render(instance_of(effect), in_args);
  if (a == ofx::kActionInstanceChanged) return instance_changed(instance_of(effect), in_args);
  if (a == ofx::kImageEffectActionBeginSequenceRender) {
    refresh_settings(instance_of(effect));
    return ofx::kStatOK;
  }
  if (a == ofx::kActionSyncPrivateData || a == ofx::kActionBeginInstanceEdit) {
    Instance* I = instance_of(effect);
    refresh_settings(I);
    recover(I);
    sync_params(I);
    return ofx::kStatOK;
  }
  if (a == ofx::kActionPurgeCaches) return purge_caches(instance_of(effect));
  return ofx::kStatReplyDefault;
}

OfxStatus main_entry(const char* action, const void* handle, OfxPropertySetHandle in_args,
                     OfxPropertySetHandle /*out_args*/) {
  // Nothing may escape into the host: every failure becomes a status code (and a message).
  try {
    if (!action) return ofx::kStatErrBadHandle;
    return dispatch(action, handle, in_args);
  } catch (const Failure& e) {
    if (M1 && handle) M1->message(const_cast<void*>(handle), ofx::kMessageError, "ipfacediff", "ipfacediff: %s", e.what());
    return e.status;
  } catch (const std::bad_alloc&) {
    return ofx::kStatErrMemory;
  } catch (const std::exception& e) {
    if (M1 && handle) M1->message(const_cast<void*>(handle), ofx::kMessageError, "ipfacediff", "ipfacediff: %s", e.what());
    return ofx::kStatFailed;
  } catch (...) {
    return ofx::kStatFailed;
  }
}

void set_host(ofx::Host* host) { g_host = host; }

ofx::Plugin g_plugin = {ofx::kImageEffectPluginApi, ofx::kImageEffectPluginApiVersion, kPluginId, 1, 0, set_host,
                        main_entry};

}  // namespace
}  // namespace ipfd::plugin

IPFD_OFX_EXPORT int OfxGetNumberOfPlugins(void) { return 1; }
IPFD_OFX_EXPORT ofx::Plugin* OfxGetPlugin(int nth) { return nth == 0 ? &ipfd::plugin::g_plugin : nullptr; }
