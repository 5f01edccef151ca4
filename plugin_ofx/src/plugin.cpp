// The ipfacediff OpenFX image effect ("IP-FaceDiff"): a thin client of the engine.
//
// In: host actions through mainEntry (describe, params, Analyze, render) and the host suites.
// Out: rendered frames (the engine's edit of each frame, or the input passed through), a
// status line, persistent messages. Nothing is computed here except pixel packing.
//
// Flow. Analyze (push button, main thread) reads every frame of the Source clip's range
// (temporal clip access), hashes each frame's raw pixels, packs them for the wire and hands
// them to this instance's worker thread, which talks to the engine over its own DEALER socket
// (HELLO, STATUS, SUBMIT, STATUS polls, RESULT pages) and keeps the finished frames in memory.
// The job id is derived from (clip content hash, parameter hash), so re-analysing identical
// input is recognised by the engine and never recomputed. Render (any thread, any order)
// never touches the network: it looks up the result for (parameter hash, frame), checks that
// the source frame still hashes to what was analysed, and copies the edited frame into the
// output window (box-filtered at render scale < 1); otherwise it passes the input through and
// posts a message. The status line and a secret `analysis` parameter (which persists the job
// with the project and makes the host re-render when the job is done) are written only from
// main-thread actions, as OpenFX requires.
//
// Thread safety (declared kOfxImageEffectRenderFullySafe): per-instance state sits behind one
// mutex; finished frames are immutable shared buffers; sockets belong to worker threads only.
// mainEntry catches every exception; worker threads catch everything too.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <sstream>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "engine_client.h"
#include "ofx_api.h"

namespace {

using ipfd::Buffer;
using ipfd::DType;

constexpr const char* kPluginId = "io.github.ipfacediff.IPFaceDiff";
constexpr const char* kAnalysisTag = "ipfd-ofx1";
constexpr int kMaxRecords = 4;
constexpr int kProtocolMaxFrames = 4096;

// ---- host ---------------------------------------------------------------------------------
ofx::Host* g_host = nullptr;
const ofx::PropertySuiteV1* P = nullptr;
const ofx::ImageEffectSuiteV1* E = nullptr;
const ofx::ParameterSuiteV1* Q = nullptr;
const ofx::MessageSuiteV1* M1 = nullptr;
const ofx::MessageSuiteV2* M2 = nullptr;

struct Failure : std::runtime_error {
  OfxStatus status;
  Failure(OfxStatus s, const std::string& what) : std::runtime_error(what), status(s) {}
};
// A problem the user can fix (shown on the status line, not a host error).
struct UserError : std::runtime_error { using std::runtime_error::runtime_error; };

std::string prop_str(OfxPropertySetHandle h, const char* name, int index = 0) {
  char* v = nullptr;
  if (!h || P->propGetString(h, name, index, &v) != ofx::kStatOK || !v) return {};
  return v;
}
int prop_int(OfxPropertySetHandle h, const char* name, int index, int dflt) {
  int v = dflt;
  if (!h || P->propGetInt(h, name, index, &v) != ofx::kStatOK) return dflt;
  return v;
}
double prop_double(OfxPropertySetHandle h, const char* name, int index, double dflt) {
  double v = dflt;
  if (!h || P->propGetDouble(h, name, index, &v) != ofx::kStatOK) return dflt;
  return v;
}

// ---- hashing ------------------------------------------------------------------------------
inline std::uint64_t mix64(std::uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

std::uint64_t hash_bytes(const void* data, std::size_t n, std::uint64_t seed) {
  const auto* p = static_cast<const std::uint8_t*>(data);
  std::uint64_t h = seed ^ (n * 0x9e3779b97f4a7c15ULL);
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    std::uint64_t w;
    std::memcpy(&w, p + i, 8);
    h ^= w * 0x87c37b91114253d5ULL;
    h = ((h << 31) | (h >> 33)) * 0x4cf5ad432745937fULL;
  }
  std::uint64_t tail = 0;
  std::memcpy(&tail, p + i, n - i);
  h ^= tail * 0x87c37b91114253d5ULL;
  return mix64(h);
}

std::string hex64(std::uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

// ---- images -------------------------------------------------------------------------------
DType parse_depth(const std::string& s) {
  if (s == ofx::kBitDepthByte) return DType::u8;
  if (s == ofx::kBitDepthShort) return DType::u16;
  if (s == ofx::kBitDepthFloat) return DType::f32;
  throw Failure(ofx::kStatErrImageFormat, "unsupported pixel depth " + s);
}
int parse_components(const std::string& s) {
  if (s == ofx::kImageComponentRGBA) return 4;
  if (s == ofx::kImageComponentRGB) return 3;
  throw Failure(ofx::kStatErrImageFormat, "unsupported components " + s);
}

// An image fetched from a clip, released when it goes out of scope.
class Image {
 public:
  Image(OfxImageClipHandle clip, OfxTime t, const ofx::RectD* region) {
    if (E->clipGetImage(clip, t, region, &h_) != ofx::kStatOK) h_ = nullptr;
    if (!h_) return;
    try {
      read();
    } catch (...) {
      E->clipReleaseImage(h_);
      h_ = nullptr;
      throw;
    }
  }
  ~Image() {
    if (h_) E->clipReleaseImage(h_);
  }
  Image(const Image&) = delete;
  Image& operator=(const Image&) = delete;
  explicit operator bool() const { return h_ != nullptr; }

  int width() const { return bounds.x2 - bounds.x1; }
  int height() const { return bounds.y2 - bounds.y1; }
  std::size_t pixel_bytes() const { return ipfd::dtype_size(dtype) * std::size_t(channels); }
  std::size_t row_len() const { return std::size_t(width()) * pixel_bytes(); }
  // OFX rows go upwards from bounds.y1; row_bytes may be negative.
  std::uint8_t* row(int y) const { return data + std::ptrdiff_t(y - bounds.y1) * row_bytes; }
  std::uint8_t* pixel(int x, int y) const { return row(y) + std::ptrdiff_t(x - bounds.x1) * std::ptrdiff_t(pixel_bytes()); }

  std::uint8_t* data = nullptr;
  ofx::RectI bounds{0, 0, 0, 0};
  std::ptrdiff_t row_bytes = 0;
  DType dtype = DType::u8;
  int channels = 4;
  bool premult = false;
  double sx = 1.0, sy = 1.0;

 private:
  void read() {
    void* ptr = nullptr;
    P->propGetPointer(h_, ofx::kImagePropData, 0, &ptr);
    data = static_cast<std::uint8_t*>(ptr);
    int b[4] = {0, 0, 0, 0};
    P->propGetIntN(h_, ofx::kImagePropBounds, 4, b);
    bounds = {b[0], b[1], b[2], b[3]};
    row_bytes = prop_int(h_, ofx::kImagePropRowBytes, 0, 0);
    dtype = parse_depth(prop_str(h_, ofx::kImageEffectPropPixelDepth));
    channels = parse_components(prop_str(h_, ofx::kImageEffectPropComponents));
    premult = prop_str(h_, ofx::kImageEffectPropPreMultiplication) == ofx::kImagePreMultiplied && channels == 4;
    sx = prop_double(h_, ofx::kImageEffectPropRenderScale, 0, 1.0);
    sy = prop_double(h_, ofx::kImageEffectPropRenderScale, 1, 1.0);
    if (!data || bounds.x2 < bounds.x1 || bounds.y2 < bounds.y1 ||
        std::abs(row_bytes) < std::ptrdiff_t(width()) * std::ptrdiff_t(pixel_bytes()))
      throw Failure(ofx::kStatErrImageFormat, "the host gave an image with inconsistent data, bounds or row bytes");
  }
  OfxPropertySetHandle h_ = nullptr;
};

// Everything about the analysed frames that must match at render time.
struct Format {
  DType dtype = DType::u8;
  int channels = 4, width = 0, height = 0, x1 = 0, y1 = 0;
  bool premult = false;
  bool same_pixels(const Format& o) const {
    return dtype == o.dtype && channels == o.channels && width == o.width && height == o.height && x1 == o.x1 &&
           y1 == o.y1 && premult == o.premult;
  }
  std::size_t frame_bytes() const {
    return std::size_t(width) * std::size_t(height) * std::size_t(channels) * ipfd::dtype_size(dtype);
  }
};

Format format_of(const Image& img) {
  Format f;
  f.dtype = img.dtype;
  f.channels = img.channels;
  f.width = img.width();
  f.height = img.height();
  f.x1 = img.bounds.x1;
  f.y1 = img.bounds.y1;
  f.premult = img.premult;
  return f;
}

std::uint64_t format_seed(const Format& f) {
  char buf[128];
  std::snprintf(buf, sizeof buf, "%s/%d/%d/%d/%d/%d/%d", ipfd::dtype_name(f.dtype), f.channels, f.width, f.height, f.x1,
                f.y1, int(f.premult));
  return hash_bytes(buf, std::strlen(buf), 0x1f0d);
}

// Hash of an image's raw pixels, top row first (independent of row bytes and row order).
std::uint64_t frame_hash(const Image& img) {
  std::uint64_t h = format_seed(format_of(img));
  const std::size_t len = img.row_len();
  for (int y = img.bounds.y2 - 1, r = 0; y >= img.bounds.y1; --y, ++r) h = mix64(h ^ hash_bytes(img.row(y), len, r));
  return h;
}

template <class T> constexpr double max_of() { return T(~T(0)); }

// Straight colour for the engine: premultiplied RGBA is divided by alpha (the engine edits
// RGB and passes alpha through; the result is premultiplied again at render).
template <class T>
void unpremultiply(T* px, std::size_t n_pixels) {
  for (std::size_t i = 0; i < n_pixels; ++i, px += 4) {
    if constexpr (std::is_floating_point_v<T>) {
      const T a = px[3];
      if (a > T(0)) for (int c = 0; c < 3; ++c) px[c] = px[c] / a;
    } else {
      const std::uint64_t a = px[3];
      const std::uint64_t top = std::uint64_t(max_of<T>());
      if (a > 0)
        for (int c = 0; c < 3; ++c) px[c] = T(std::min<std::uint64_t>(top, (std::uint64_t(px[c]) * top + a / 2) / a));
    }
  }
}

// The wire frame: H x W x C, top row first, packed, straight colour.
Buffer to_wire(const Image& img) {
  const std::size_t len = img.row_len();
  std::vector<std::uint8_t> out(len * std::size_t(img.height()));
  for (int y = img.bounds.y2 - 1, r = 0; y >= img.bounds.y1; --y, ++r) std::memcpy(&out[r * len], img.row(y), len);
  if (img.premult) {
    const std::size_t n = std::size_t(img.width()) * std::size_t(img.height());
    if (img.dtype == DType::u8) unpremultiply(reinterpret_cast<std::uint8_t*>(out.data()), n);
    else if (img.dtype == DType::u16) unpremultiply(reinterpret_cast<std::uint16_t*>(out.data()), n);
    else unpremultiply(reinterpret_cast<float*>(out.data()), n);
  }
  return Buffer::from_vector(std::move(out));
}

// ---- jobs ---------------------------------------------------------------------------------
enum class JobState { Connecting, Unreachable, Uploading, Queued, Running, Fetching, Done, Failed, Lost, Error, Detached };

bool terminal(JobState s) {
  return s == JobState::Done || s == JobState::Failed || s == JobState::Lost || s == JobState::Error ||
         s == JobState::Detached;
}

// ---- parameters: one table; describe, create-instance and read-settings are generated from it
enum class Kind { Text, Line, Int, Double, Choice, Button, Status, Hidden };
struct Option {
  const char* label;
  const char* engine;  // the engine setting's value
};
struct ParamSpec {
  const char* name;    // OFX identifier (kept in projects)
  Kind kind;
  const char* label;
  const char* hint;
  const char* engine;  // engine.settings.Settings field it sets (also the script name), or nullptr
  double dflt, min, max;  // Int / Double: default and range; Choice: default option index
  const char* text;       // Text / Line / Status: default
  std::vector<Option> options;
  double display_max, increment;
  int digits;
};
ParamSpec text_param(const char* name, Kind kind, const char* label, const char* hint, const char* dflt) {
  return {name, kind, label, hint, nullptr, 0, 0, 0, dflt, {}, 0, 0, 0};
}
ParamSpec int_param(const char* name, const char* label, const char* hint, const char* engine, int dflt, int min,
                    int max) {
  return {name, Kind::Int, label, hint, engine, double(dflt), double(min), double(max), "", {}, 0, 0, 0};
}
ParamSpec double_param(const char* name, const char* label, const char* hint, const char* engine, double dflt,
                       double min, double max, double display_max, double increment, int digits) {
  return {name, Kind::Double, label, hint, engine, dflt, min, max, "", {}, display_max, increment, digits};
}
ParamSpec choice_param(const char* name, const char* label, const char* hint, const char* engine,
                       std::vector<Option> options, int dflt) {
  return {name, Kind::Choice, label, hint, engine, double(dflt), 0, 0, "", std::move(options), 0, 0, 0};
}

// Engine defaults are engine/settings.py's (test_ofx_plugin.py fails when one differs).
enum Param { kPrompt, kAddress, kSeed, kGuidance, kKeyframeInterval, kMode, kSteps, kAnalyze, kStatus, kAnalysis, kParams };
const std::vector<ParamSpec>& param_table() {
  static const std::vector<ParamSpec> table = {
      text_param("prompt", Kind::Text, "Prompt", "What to change, e.g. 'add glasses' (sent to the engine as the edit prompt)",
                 ""),
      text_param("address", Kind::Line, "Engine address",
                 "ZeroMQ address of `ipfacediff serve` (a non-local engine needs CURVE: reach it through a tunnel)",
                 "tcp://127.0.0.1:5555"),
      int_param("seed", "Seed", "Seeds every random choice of the edit", "seed", 0, 0, INT_MAX),
      double_param("guidance", "Guidance", "Classifier-free guidance of the edit (1 disables it)", "guidance_scale", 7.5,
                   1.0, 50.0, 15.0, 0.5, 2),
      int_param("keyframeInterval", "Keyframe interval", "One keyframe every this many frames", "keyframe_interval", 8, 1,
                kProtocolMaxFrames),
      choice_param("mode", "Mode",
                   "crop: edit a tracked face crop and paste it back; full: edit the whole frame; auto: crop when a "
                   "face is found, else full",
                   "face_mode", {{"crop (face)", "crop"}, {"full frame", "full"}, {"auto (crop if a face is found)", "auto"}},
                   2),
      int_param("steps", "Steps", "Denoising steps for inversion and edit (fewer is faster and rougher)", "steps", 50, 1,
                1000),
      text_param("analyze", Kind::Button, "Analyze",
                 "Send the Source clip's frame range to the engine as one job (press again to refresh the status)", ""),
      text_param("status", Kind::Status, "Status", "Progress of the job and identity QC of the result",
                 "idle: write a prompt, then press Analyze"),
      text_param("analysis", Kind::Hidden, "Analysis", "The analysed job (kept with the project)", ""),
  };
  return table;
}

// The parameter values an edit depends on (read on the main thread only).
struct Settings {
  std::string prompt, address;
  std::vector<std::pair<std::string, ipfd::SettingValue>> engine;  // table order
};

std::uint64_t params_hash(const Settings& s) {
  std::string canon = std::string(kAnalysisTag) + "|" + s.prompt;
  char num[40];
  for (const auto& [key, v] : s.engine) {
    if (v.kind == ipfd::SettingValue::Int) std::snprintf(num, sizeof num, "%lld", static_cast<long long>(v.i));
    else if (v.kind == ipfd::SettingValue::Double) std::snprintf(num, sizeof num, "%.17g", v.d);
    canon += "|" + key + "=" + (v.kind == ipfd::SettingValue::Str ? v.s : std::string(num));
  }
  return hash_bytes(canon.data(), canon.size(), 0x5e7);
}

// One analysis: what was sent, and (guarded by Instance::mu) where its job stands.
struct Record {
  std::string id, address;
  std::uint64_t params_hash = 0;
  int first = 0, count = 0;
  Format fmt;
  std::vector<std::uint64_t> frame_hashes;
  // guarded by Instance::mu:
  JobState state = JobState::Connecting;
  std::string status;
  std::vector<Buffer> results;  // `count` frames once Done
  bool mismatch = false;        // a render at analysis scale saw different input pixels
};

std::string serialize(const Record& r) {
  std::ostringstream o;
  o << kAnalysisTag << ";job=" << r.id << ";address=" << r.address << ";params=" << hex64(r.params_hash)
    << ";first=" << r.first << ";count=" << r.count << ";dtype=" << ipfd::dtype_name(r.fmt.dtype)
    << ";channels=" << r.fmt.channels << ";width=" << r.fmt.width << ";height=" << r.fmt.height
    << ";x1=" << r.fmt.x1 << ";y1=" << r.fmt.y1 << ";premult=" << int(r.fmt.premult) << ";state=" << (r.state == JobState::Done ? "done" : "pending") << ";hashes=";
  for (std::size_t i = 0; i < r.frame_hashes.size(); ++i) o << (i ? "," : "") << hex64(r.frame_hashes[i]);
  return o.str();
}

std::shared_ptr<Record> deserialize(const std::string& text) {
  if (text.rfind(kAnalysisTag, 0) != 0) return nullptr;
  auto r = std::make_shared<Record>();
  std::istringstream in(text);
  std::string item;
  bool ok_dtype = false;
  try {
    while (std::getline(in, item, ';')) {
      auto eq = item.find('=');
      if (eq == std::string::npos) continue;
      std::string k = item.substr(0, eq), v = item.substr(eq + 1);
      if (k == "job") r->id = v;
      else if (k == "address") r->address = v;
      else if (k == "params") r->params_hash = std::stoull(v, nullptr, 16);
      else if (k == "first") r->first = std::stoi(v);
      else if (k == "count") r->count = std::stoi(v);
      else if (k == "dtype") {
        for (DType d : {DType::u8, DType::u16, DType::f32})
          if (v == ipfd::dtype_name(d)) r->fmt.dtype = d, ok_dtype = true;
      } else if (k == "channels") r->fmt.channels = std::stoi(v);
      else if (k == "width") r->fmt.width = std::stoi(v);
      else if (k == "height") r->fmt.height = std::stoi(v);
      else if (k == "x1") r->fmt.x1 = std::stoi(v);
      else if (k == "y1") r->fmt.y1 = std::stoi(v);
      else if (k == "premult") r->fmt.premult = v == "1";
      else if (k == "hashes") {
        std::istringstream hs(v);
        std::string h;
        while (std::getline(hs, h, ',')) r->frame_hashes.push_back(std::stoull(h, nullptr, 16));
      }
    }
  } catch (const std::exception&) {
    return nullptr;
  }
  if (r->id.empty() || r->address.empty() || !ok_dtype || r->count < 1 || int(r->frame_hashes.size()) != r->count ||
      (r->fmt.channels != 3 && r->fmt.channels != 4) || r->fmt.width < 1 || r->fmt.height < 1)
    return nullptr;
  return r;
}

// ---- instances ----------------------------------------------------------------------------
struct Instance {
  OfxImageEffectHandle effect = nullptr;
  OfxImageClipHandle source = nullptr, output = nullptr;
  std::vector<OfxParamHandle> params;  // param_table() order

  std::mutex mu;                                // guards settings, records, current, record fields, message
  Settings settings;                             // copied from the parameters in main-thread actions
  std::uint64_t settings_hash = 0;               // params_hash(settings)
  std::vector<std::shared_ptr<Record>> records;  // newest last
  std::shared_ptr<Record> current;               // the one the status line reports
  std::string idle_status = param_table()[kStatus].text;
  std::string posted_message;                    // last persistent message (to post changes only)
  bool recovery_tried = false;

  std::mutex worker_mu;  // serialises starting and stopping the worker
  std::thread worker;
  std::shared_ptr<Record> worker_record;
  std::shared_ptr<std::atomic<bool>> worker_stop;

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

void set_state(Instance* I, const std::shared_ptr<Record>& r, JobState s, const std::string& status) {
  std::lock_guard<std::mutex> lock(I->mu);
  r->state = s;
  r->status = status;
}

std::string trimmed(const char* text) {
  std::string v = text ? text : "";
  const char* ws = " \t\r\n";
  v.erase(0, v.find_first_not_of(ws));
  auto end = v.find_last_not_of(ws);
  v.erase(end == std::string::npos ? 0 : end + 1);
  return v;
}

// Main-thread actions only: string values returned by hosts built on the stock HostSupport
// library live in one per-parameter buffer, so reads from several render threads race. Render
// uses the copy kept here under the instance's lock.
Settings refresh_settings(Instance* I) {
  const auto& table = param_table();
  Settings s;
  char* text = nullptr;
  Q->paramGetValue(I->params[kPrompt], &text);
  s.prompt = trimmed(text);  // the engine strips it too
  text = nullptr;
  Q->paramGetValue(I->params[kAddress], &text);
  s.address = trimmed(text);
  for (std::size_t k = 0; k < table.size(); ++k) {
    const ParamSpec& spec = table[k];
    if (!spec.engine) continue;
    ipfd::SettingValue v;
    if (spec.kind == Kind::Double) {
      v.kind = ipfd::SettingValue::Double;
      v.d = spec.dflt;
      Q->paramGetValue(I->params[k], &v.d);
    } else {
      int n = int(spec.dflt);
      Q->paramGetValue(I->params[k], &n);
      if (spec.kind == Kind::Choice) {
        v.kind = ipfd::SettingValue::Str;
        v.s = spec.options[std::size_t(std::clamp(n, 0, int(spec.options.size()) - 1))].engine;
      } else {
        v.i = n;
      }
    }
    s.engine.emplace_back(spec.engine, v);
  }
  const std::uint64_t h = params_hash(s);
  std::lock_guard<std::mutex> lock(I->mu);
  I->settings = s;
  I->settings_hash = h;
  return s;
}

std::string describe_format(const Format& f) {
  char buf[96];
  std::snprintf(buf, sizeof buf, "%dx%d %s %s%s", f.width, f.height, f.channels == 4 ? "RGBA" : "RGB",
                ipfd::dtype_name(f.dtype), f.premult ? " premultiplied" : "");
  return buf;
}

std::string short_id(const std::string& id) { return id.size() > 16 ? id.substr(0, 16) + "…" : id; }

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

// ---- the worker thread: one per instance, talks to the engine -----------------------------
bool nap(const std::atomic<bool>& stop, double seconds) {
  auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(int(seconds * 1000));
  while (std::chrono::steady_clock::now() < end) {
    if (stop) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return !stop;
}

std::string done_status(const Record& r, const ipfd::ResultPage& head, bool random_weights) {
  std::ostringstream o;
  o.setf(std::ios::fixed);
  o.precision(3);
  o << "done: " << r.count << " frame(s) edited";
  if (head.qc.present && head.qc.identity_mean >= 0) {
    o << "; identity QC mean " << head.qc.identity_mean << ", max " << head.qc.identity_max;
    if (head.qc.threshold >= 0) o << " (threshold " << head.qc.threshold << ")";
    o << ", " << head.qc.drifted << " drifted frame(s)";
  } else if (head.qc.present) {
    o << "; identity QC: no face measured";
  } else {
    o << "; identity QC: not reported by this engine";
  }
  if (!head.inversion_cache.empty()) o << "; inversion cache " << head.inversion_cache;
  if (random_weights || head.random_weights) o << "; RANDOM WEIGHTS (noise, not an edit)";
  o << " [job " << short_id(r.id) << "]";
  return o.str();
}

std::string progress_status(const ipfd::JobInfo& info) {
  std::ostringstream o;
  if (info.state == "queued") {
    o << "queued";
    if (info.position > 0) o << " (position " << info.position << ")";
  } else {
    o << "running";
    if (info.has_progress) {
      o << ": " << (info.stage.empty() ? "edit" : info.stage) << " " << int(std::floor(info.fraction * 100 + 1e-9))
        << "%";
      if (info.eta_s >= 0) o << ", about " << int(std::lround(info.eta_s)) << " s left";
    }
  }
  o << " [job " << short_id(info.id) << "]";
  return o.str();
}

void worker_main(Instance* I, std::shared_ptr<Record> rec, std::vector<Buffer> upload, Settings settings,
                 std::shared_ptr<std::atomic<bool>> stop) {
  const std::atomic<bool>& stopped = *stop;
  const std::string addr = rec->address;
  try {
    ipfd::Connection conn(ipfd::shared_context(), addr, [&stopped] { return stopped.load(); });
    double backoff = 1.0;
    ipfd::Hello hello;
    set_state(I, rec, JobState::Connecting, "connecting to the engine at " + addr + "…");
    while (true) {
      try {
        // HELLO on each (re)connection: it checks the version and learns the limits.
        hello = conn.hello(3.0);
        if (std::find(hello.capabilities.begin(), hello.capabilities.end(), "inline_frames") ==
            hello.capabilities.end())
          throw ipfd::EngineRefused("unsupported", "the engine does not accept inline frames");
        backoff = 1.0;

        ipfd::JobInfo info = conn.status(rec->id, 5.0);
        bool failed = info.state == "failed" || info.state == "cancelled" || info.state == "interrupted";
        if (info.state == "unknown" || (failed && !upload.empty())) {
          if (upload.empty()) {
            set_state(I, rec, JobState::Lost,
                      "the engine at " + addr + " does not know job " + short_id(rec->id) +
                          " (released, or another engine): press Analyze");
            break;
          }
          const auto& L = hello.limits;
          const std::size_t fb = rec->fmt.frame_bytes();
          if (rec->count > L.max_frames || std::max(rec->fmt.width, rec->fmt.height) > L.max_side ||
              std::int64_t(fb) > L.max_part_bytes || rec->count + 2 > L.max_parts ||
              std::int64_t(fb) * rec->count + 65536 > L.max_message_bytes)
            throw ipfd::EngineRefused(
                "too_large", std::to_string(rec->count) + " frame(s) of " + describe_format(rec->fmt) +
                                 " exceed the engine's limits (max_frames " + std::to_string(L.max_frames) +
                                 ", max_side " + std::to_string(L.max_side) + ", max_message_bytes " +
                                 std::to_string(L.max_message_bytes) + "): analyse a shorter or smaller clip");
          set_state(I, rec, JobState::Uploading,
                    "uploading " + std::to_string(rec->count) + " frame(s) of " + describe_format(rec->fmt) + "…");
          ipfd::SubmitRequest req;
          req.job = rec->id;
          req.prompt = settings.prompt;
          req.retry = failed;
          req.settings = settings.engine;
          req.desc = {rec->fmt.dtype, rec->fmt.height, rec->fmt.width, rec->fmt.channels, rec->count};
          req.frames = upload;
          ipfd::Accepted acc = conn.submit(req, 10.0 + double(fb) * rec->count / 50e6);
          upload.clear();  // the engine has them now (or will say so on the next STATUS)
          upload.shrink_to_fit();
          info.state = acc.state;
          info.position = acc.position;
        } else if (failed) {
          set_state(I, rec, JobState::Failed,
                    "failed: " + (info.error.empty() ? info.state : info.error) + " [" + info.code +
                        "] — press Analyze to resubmit");
          break;
        }

        // Poll until the job ends.
        while (info.state == "queued" || info.state == "running") {
          set_state(I, rec, info.state == "queued" ? JobState::Queued : JobState::Running, progress_status(info));
          if (!nap(stopped, 0.5)) throw ipfd::Stopped();
          info = conn.status(rec->id, 5.0);
        }
        if (info.state == "unknown") {
          set_state(I, rec, JobState::Lost, "the engine lost job " + short_id(rec->id) + ": press Analyze");
          break;
        }
        if (info.state != "done") {
          set_state(I, rec, JobState::Failed,
                    "failed: " + (info.error.empty() ? info.state : info.error) +
                        (info.code.empty() ? "" : " [" + info.code + "]") + " — press Analyze to resubmit");
          break;
        }

        // Fetch the result once, page by page, and keep it.
        set_state(I, rec, JobState::Fetching, "fetching the result [job " + short_id(rec->id) + "]…");
        ipfd::ResultPage head = conn.result(rec->id, 0, 0, false, 10.0);
        if (head.status != "DONE") throw ipfd::ProtocolViolation("RESULT says " + head.status + " for a done job");
        if (head.output_mode != "inline") throw ipfd::ProtocolViolation("RESULT output is not inline");
        const std::size_t fb = rec->fmt.frame_bytes();
        auto matches = [&](const ipfd::FrameDesc& d) {
          return d.dtype == rec->fmt.dtype && d.height == rec->fmt.height && d.width == rec->fmt.width &&
                 d.channels == rec->fmt.channels;
        };
        if (head.total != rec->count || !matches(head.frames))
          throw ipfd::ProtocolViolation("RESULT describes " + std::to_string(head.total) +
                                        " frame(s) that do not match the " + std::to_string(rec->count) +
                                        " frame(s) of " + describe_format(rec->fmt) + " submitted");
        std::int64_t budget = std::min<std::int64_t>(hello.limits.max_message_bytes - 65536, std::int64_t(256) << 20);
        int page = int(std::max<std::int64_t>(1, budget / std::int64_t(fb)));
        std::vector<Buffer> frames;
        while (int(frames.size()) < rec->count) {
          const int offset = int(frames.size());
          const int want = std::min(page, rec->count - offset);
          ipfd::ResultPage p;
          try {
            p = conn.result(rec->id, offset, want, true, 10.0 + double(fb) * want / 50e6);
          } catch (const ipfd::EngineRefused& e) {
            if (e.code == "too_large" && want > 1) {
              page = std::max(1, want / 2);
              continue;
            }
            throw;
          }
          if (p.status != "DONE" || p.offset != offset || p.frames.count < 1 || p.frames.count > want ||
              !matches(p.frames))
            throw ipfd::ProtocolViolation("a RESULT page does not match the request (offset " +
                                          std::to_string(offset) + ")");
          for (auto& b : p.pixels) frames.push_back(std::move(b));
          set_state(I, rec, JobState::Fetching,
                    "fetching the result (" + std::to_string(frames.size()) + "/" + std::to_string(rec->count) +
                        " frames) [job " + short_id(rec->id) + "]…");
        }
        {
          std::lock_guard<std::mutex> lock(I->mu);
          rec->results = std::move(frames);
          rec->state = JobState::Done;
          rec->status = done_status(*rec, head, hello.random_weights);
          evict_locked(I, rec);
        }
        break;
      } catch (const ipfd::EngineUnreachable& e) {
        set_state(I, rec, JobState::Unreachable,
                  "engine unreachable at " + addr + " (" + e.what() + "); retrying — start it with `ipfacediff serve`");
        if (!nap(stopped, backoff)) throw ipfd::Stopped();
        backoff = std::min(backoff * 2, 5.0);
        conn.reconnect();  // a fresh socket drops whatever the dead one still queued
      }
    }
  } catch (const ipfd::Stopped&) {
  } catch (const ipfd::EngineRefused& e) {
    if (e.code == "bad_address")
      set_state(I, rec, JobState::Error, std::string("error: ") + e.what());
    else
      set_state(I, rec, JobState::Failed,
                std::string("failed: the engine refused the job: ") + e.what() + " [" + e.code + "]");
  } catch (const ipfd::ProtocolViolation& e) {
    set_state(I, rec, JobState::Error, std::string("error: malformed reply from the engine: ") + e.what());
  } catch (const std::bad_alloc&) {
    set_state(I, rec, JobState::Error, "error: out of memory while talking to the engine");
  } catch (const std::exception& e) {
    set_state(I, rec, JobState::Error, std::string("error: ") + e.what());
  } catch (...) {
    set_state(I, rec, JobState::Error, "error: unexpected failure in the engine connection");
  }
}

// Stops and joins the running worker (if any); its unfinished record becomes Detached.
void stop_worker_locked(Instance* I) {
  if (!I->worker.joinable()) return;
  *I->worker_stop = true;
  I->worker.join();
  std::lock_guard<std::mutex> lock(I->mu);
  if (I->worker_record && !terminal(I->worker_record->state)) {
    I->worker_record->state = JobState::Detached;
    I->worker_record->status = "stopped following job " + short_id(I->worker_record->id) + ": press Analyze to resume";
  }
  I->worker_record.reset();
}

void start_worker(Instance* I, std::shared_ptr<Record> rec, std::vector<Buffer> upload, const Settings& s) {
  std::lock_guard<std::mutex> lock(I->worker_mu);
  stop_worker_locked(I);
  I->worker_stop = std::make_shared<std::atomic<bool>>(false);
  {
    std::lock_guard<std::mutex> state_lock(I->mu);
    I->worker_record = rec;
  }
  I->worker = std::thread(worker_main, I, rec, std::move(upload), s, I->worker_stop);
}

// After a project is reopened (or an effect copied), the secret `analysis` parameter names the
// job: follow it again without re-reading the clip. Tried once per instance.
void recover(Instance* I, OfxTime t) {
  {
    std::lock_guard<std::mutex> lock(I->mu);
    if (I->recovery_tried || !I->records.empty()) return;
    I->recovery_tried = true;
  }
  char* text = nullptr;
  Q->paramGetValueAtTime(I->params[kAnalysis], t, &text);
  auto rec = text ? deserialize(text) : nullptr;
  if (!rec) return;
  rec->state = JobState::Connecting;
  rec->status = "reconnecting to job " + short_id(rec->id) + "…";
  {
    std::lock_guard<std::mutex> lock(I->mu);
    if (!I->records.empty()) return;  // an Analyze got there first
    I->records.push_back(rec);
    I->current = rec;
  }
  start_worker(I, rec, {}, Settings{});
}

// Main thread only: mirror the current status (and the persisted analysis) into the params.
void sync_params(Instance* I) {
  std::string status, analysis;
  {
    std::lock_guard<std::mutex> lock(I->mu);
    status = I->current ? I->current->status : I->idle_status;
    if (I->current) analysis = serialize(*I->current);
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
  const std::int64_t max_prompt = ipfd::Limits().max_prompt_chars;
  if (s.prompt.empty()) throw UserError("the prompt is empty: describe the edit, e.g. 'add glasses'");
  if (std::int64_t(ipfd::utf8_length(s.prompt)) > max_prompt)
    throw UserError("the prompt is longer than " + std::to_string(max_prompt) + " characters");
  if (s.address.empty()) throw UserError("the engine address is empty (e.g. tcp://127.0.0.1:5555)");

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
  start_worker(I, rec, std::move(frames), s);
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

// Copies src into dst on row Y for x in [xa, xb) (zero where src has no pixels).
void copy_source_span(const Image& dst, const Image* src, int Y, int xa, int xb) {
  if (xa >= xb) return;
  const std::size_t pb = dst.pixel_bytes();
  std::uint8_t* out = dst.pixel(xa, Y);
  if (!src || Y < src->bounds.y1 || Y >= src->bounds.y2) {
    std::memset(out, 0, std::size_t(xb - xa) * pb);
    return;
  }
  const int sa = std::max(xa, src->bounds.x1), sb = std::min(xb, src->bounds.x2);
  if (sa >= sb) {
    std::memset(out, 0, std::size_t(xb - xa) * pb);
    return;
  }
  if (sa > xa) std::memset(out, 0, std::size_t(sa - xa) * pb);
  std::memcpy(dst.pixel(sa, Y), src->pixel(sa, Y), std::size_t(sb - sa) * pb);
  if (xb > sb) std::memset(dst.pixel(sb, Y), 0, std::size_t(xb - sb) * pb);
}

bool passthrough(const Image& dst, const Image* src, const ofx::RectI& win, OfxImageEffectHandle effect) {
  for (int Y = win.y1; Y < win.y2; ++Y) {
    if (((Y - win.y1) & 63) == 0 && E->abort(effect)) return false;
    copy_source_span(dst, src, Y, win.x1, win.x2);
  }
  return true;
}

template <class T>
double sample(const T* p, int c, bool premult) {
  if (!premult || c == 3) return double(p[c]);
  if constexpr (std::is_floating_point_v<T>) {
    return double(T(p[c] * p[3]));
  } else {
    const std::uint64_t top = std::uint64_t(max_of<T>());
    return double((std::uint64_t(p[c]) * p[3] + top / 2) / top);
  }
}

template <class T>
T store(double v) {
  if constexpr (std::is_floating_point_v<T>) {
    return T(v);
  } else {
    return T(std::clamp(std::floor(v + 0.5), 0.0, max_of<T>()));
  }
}

// Writes the edited frame (top-first, packed) into dst over `win`. kx, ky: result pixels per
// output pixel (1 at the analysed render scale, 2 at half proxy); a footprint is box-averaged.
template <class T>
bool write_result(const Record& r, const Buffer& frame, const Image& dst, const Image* src, const ofx::RectI& win,
                  double kx, double ky, OfxImageEffectHandle effect) {
  const int C = r.fmt.channels, W = r.fmt.width, H = r.fmt.height, fx = r.fmt.x1, fy = r.fmt.y1;
  const bool pm = r.fmt.premult && C == 4;
  const std::size_t row_len = std::size_t(W) * C * sizeof(T);
  const bool exact = std::abs(kx - 1.0) < 1e-9 && std::abs(ky - 1.0) < 1e-9;
  auto result_row = [&](int j) { return reinterpret_cast<const T*>(frame.data + std::size_t(H - 1 - (j - fy)) * row_len); };
  for (int Y = win.y1; Y < win.y2; ++Y) {
    if (((Y - win.y1) & 63) == 0 && E->abort(effect)) return false;
    if (exact) {
      if (Y < fy || Y >= fy + H) {
        copy_source_span(dst, src, Y, win.x1, win.x2);
        continue;
      }
      const int a = std::clamp(fx, win.x1, win.x2), b = std::clamp(fx + W, win.x1, win.x2);
      copy_source_span(dst, src, Y, win.x1, a);
      copy_source_span(dst, src, Y, b, win.x2);
      if (a >= b) continue;
      const T* in = result_row(Y) + std::size_t(a - fx) * C;
      T* out = reinterpret_cast<T*>(dst.pixel(a, Y));
      if (!pm) {
        std::memcpy(out, in, std::size_t(b - a) * C * sizeof(T));
      } else {
        for (int x = a; x < b; ++x, in += C, out += C)
          for (int c = 0; c < C; ++c) out[c] = store<T>(sample(in, c, true));
      }
      continue;
    }
    const int j0 = int(std::floor(Y * ky + 1e-9));
    const int j1 = std::max(j0 + 1, int(std::ceil((Y + 1) * ky - 1e-9)));
    const int b0 = std::max(j0, fy), b1 = std::min(j1, fy + H);
    for (int X = win.x1; X < win.x2; ++X) {
      const int i0 = int(std::floor(X * kx + 1e-9));
      const int i1 = std::max(i0 + 1, int(std::ceil((X + 1) * kx - 1e-9)));
      const int a0 = std::max(i0, fx), a1 = std::min(i1, fx + W);
      if (a0 >= a1 || b0 >= b1) {
        copy_source_span(dst, src, Y, X, X + 1);
        continue;
      }
      double acc[4] = {0, 0, 0, 0};
      for (int j = b0; j < b1; ++j) {
        const T* row = result_row(j);
        for (int i = a0; i < a1; ++i)
          for (int c = 0; c < C; ++c) acc[c] += sample(row + std::size_t(i - fx) * C, c, pm);
      }
      const double n = double(b1 - b0) * double(a1 - a0);
      T* out = reinterpret_cast<T*>(dst.pixel(X, Y));
      for (int c = 0; c < C; ++c) out[c] = store<T>(acc[c] / n);
    }
  }
  return true;
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
    recover(I, t);
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
  const double kx = 1.0 / sx, ky = 1.0 / sy;
  bool finished;
  if (dst.dtype == DType::u8) finished = write_result<std::uint8_t>(*rec, frame, dst, src.get(), wnd, kx, ky, I->effect);
  else if (dst.dtype == DType::u16) finished = write_result<std::uint16_t>(*rec, frame, dst, src.get(), wnd, kx, ky, I->effect);
  else finished = write_result<float>(*rec, frame, dst, src.get(), wnd, kx, ky, I->effect);
  if (!finished) return ofx::kStatFailed;
  post_message(I, "", false);
  return ofx::kStatOK;
}

// ---- describe -----------------------------------------------------------------------------
const char* ofx_type(Kind k) {
  switch (k) {
    case Kind::Int: return ofx::kParamTypeInteger;
    case Kind::Double: return ofx::kParamTypeDouble;
    case Kind::Choice: return ofx::kParamTypeChoice;
    case Kind::Button: return ofx::kParamTypePushButton;
    default: return ofx::kParamTypeString;
  }
}

void define_param(OfxParamSetHandle set, const ParamSpec& spec) {
  OfxPropertySetHandle p = nullptr;
  if (Q->paramDefine(set, ofx_type(spec.kind), spec.name, &p) != ofx::kStatOK || !p)
    throw Failure(ofx::kStatErrMissingHostFeature, std::string("cannot define parameter ") + spec.name);
  P->propSetString(p, ofx::kPropLabel, 0, spec.label);
  P->propSetString(p, ofx::kParamPropHint, 0, spec.hint);
  P->propSetString(p, ofx::kParamPropScriptName, 0, spec.engine ? spec.engine : spec.name);
  if (spec.kind != Kind::Button) P->propSetInt(p, ofx::kParamPropAnimates, 0, 0);
  switch (spec.kind) {
    case Kind::Int:
      P->propSetInt(p, ofx::kParamPropDefault, 0, int(spec.dflt));
      P->propSetInt(p, ofx::kParamPropMin, 0, int(spec.min));
      P->propSetInt(p, ofx::kParamPropMax, 0, int(spec.max));
      break;
    case Kind::Double:
      P->propSetDouble(p, ofx::kParamPropDefault, 0, spec.dflt);
      P->propSetDouble(p, ofx::kParamPropMin, 0, spec.min);
      P->propSetDouble(p, ofx::kParamPropMax, 0, spec.max);
      P->propSetDouble(p, ofx::kParamPropDisplayMin, 0, spec.min);
      P->propSetDouble(p, ofx::kParamPropDisplayMax, 0, spec.display_max);
      P->propSetDouble(p, ofx::kParamPropIncrement, 0, spec.increment);
      P->propSetInt(p, ofx::kParamPropDigits, 0, spec.digits);
      break;
    case Kind::Choice:
      for (std::size_t i = 0; i < spec.options.size(); ++i)
        P->propSetString(p, ofx::kParamPropChoiceOption, int(i), spec.options[i].label);
      P->propSetInt(p, ofx::kParamPropDefault, 0, int(spec.dflt));
      break;
    case Kind::Button: break;
    case Kind::Text:
      P->propSetString(p, ofx::kParamPropStringMode, 0, ofx::kParamStringIsMultiLine);
      P->propSetString(p, ofx::kParamPropDefault, 0, spec.text);
      break;
    case Kind::Line: P->propSetString(p, ofx::kParamPropDefault, 0, spec.text); break;
    case Kind::Status:
      P->propSetString(p, ofx::kParamPropStringMode, 0, ofx::kParamStringIsLabel);
      P->propSetString(p, ofx::kParamPropDefault, 0, spec.text);
      P->propSetInt(p, ofx::kParamPropPersistant, 0, 0);
      P->propSetInt(p, ofx::kParamPropEvaluateOnChange, 0, 0);
      P->propSetInt(p, ofx::kParamPropCanUndo, 0, 0);
      break;
    case Kind::Hidden:
      P->propSetInt(p, ofx::kParamPropSecret, 0, 1);
      P->propSetInt(p, ofx::kParamPropCanUndo, 0, 0);
      P->propSetString(p, ofx::kParamPropDefault, 0, spec.text);
      break;
  }
}

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
  for (const ParamSpec& spec : param_table()) define_param(set, spec);
  return ofx::kStatOK;
}

// ---- instance lifetime --------------------------------------------------------------------
OfxParamHandle param(OfxParamSetHandle set, const char* name) {
  OfxParamHandle h = nullptr;
  if (Q->paramGetHandle(set, name, &h, nullptr) != ofx::kStatOK || !h)
    throw Failure(ofx::kStatErrBadHandle, std::string("no parameter ") + name);
  return h;
}

OfxStatus create_instance(OfxImageEffectHandle effect) {
  auto I = std::make_unique<Instance>();
  I->effect = effect;
  if (E->clipGetHandle(effect, ofx::kImageEffectSimpleSourceClipName, &I->source, nullptr) != ofx::kStatOK ||
      E->clipGetHandle(effect, ofx::kImageEffectOutputClipName, &I->output, nullptr) != ofx::kStatOK)
    throw Failure(ofx::kStatErrBadHandle, "missing clips");
  OfxParamSetHandle set = nullptr;
  E->getParamSet(effect, &set);
  for (const ParamSpec& spec : param_table()) I->params.push_back(param(set, spec.name));
  char* text = nullptr;
  Q->paramGetValue(I->params[kStatus], &text);
  I->shown_status = text ? text : "";
  text = nullptr;
  Q->paramGetValue(I->params[kAnalysis], &text);
  I->shown_analysis = text ? text : "";
  refresh_settings(I.get());
  OfxPropertySetHandle props = nullptr;
  E->getPropertySet(effect, &props);
  P->propSetPointer(props, ofx::kPropInstanceData, 0, I.get());
  I.release();
  return ofx::kStatOK;
}

OfxStatus destroy_instance(OfxImageEffectHandle effect) {
  Instance* I = instance_of(effect);
  {
    std::lock_guard<std::mutex> lock(I->worker_mu);
    stop_worker_locked(I);
  }
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
    recover(I, prop_double(in_args, ofx::kPropTime, 0, 0.0));
  }
  sync_params(I);
  return ofx::kStatOK;
}

OfxStatus purge_caches(Instance* I) {
  std::lock_guard<std::mutex> lock(I->mu);
  I->records.erase(std::remove_if(I->records.begin(), I->records.end(),
                                  [&](const std::shared_ptr<Record>& r) { return r != I->current && r != I->worker_record; }),
                   I->records.end());
  return ofx::kStatOK;
}

// ---- entry points -------------------------------------------------------------------------
OfxStatus load() {
  if (!g_host) return ofx::kStatErrMissingHostFeature;
  P = static_cast<const ofx::PropertySuiteV1*>(g_host->fetchSuite(g_host->host, ofx::kPropertySuite, 1));
  E = static_cast<const ofx::ImageEffectSuiteV1*>(g_host->fetchSuite(g_host->host, ofx::kImageEffectSuite, 1));
  Q = static_cast<const ofx::ParameterSuiteV1*>(g_host->fetchSuite(g_host->host, ofx::kParameterSuite, 1));
  M2 = static_cast<const ofx::MessageSuiteV2*>(g_host->fetchSuite(g_host->host, ofx::kMessageSuite, 2));
  M1 = static_cast<const ofx::MessageSuiteV1*>(g_host->fetchSuite(g_host->host, ofx::kMessageSuite, 1));
  return P && E && Q ? ofx::kStatOK : ofx::kStatErrMissingHostFeature;
}

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
    recover(I, 0.0);
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

IPFD_OFX_EXPORT int OfxGetNumberOfPlugins(void) { return 1; }
IPFD_OFX_EXPORT ofx::Plugin* OfxGetPlugin(int nth) { return nth == 0 ? &g_plugin : nullptr; }
