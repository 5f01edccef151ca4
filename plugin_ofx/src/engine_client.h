// Protocol client of the ipfacediff engine for the OFX plugin (contract: docs/protocol.md, v1).
//
// In: a ZeroMQ context, an engine address, request fields and raw frame buffers.
// Out: parsed replies (Hello, JobInfo, Accepted, ResultPage) or one of three exceptions:
//   EngineUnreachable  no reply within the timeout (or the socket could not connect);
//   EngineRefused      the engine answered ERROR (protocol `code` + one-sentence message);
//   ProtocolViolation  a reply that breaks the protocol (bad version frame, not msgpack,
//                      wrong field types, pixel parts that do not match their descriptor).
// One Connection is one DEALER socket and belongs to one thread at a time (the plugin gives
// each instance's worker thread its own). Every wait is a poll in short slices that also
// checks a caller-supplied `stop` predicate (throws Stopped), so a destroyed instance never
// waits for a network timeout. Nothing here knows about OpenFX.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace ipfd {

enum class DType { u8, u16, f32 };
std::size_t dtype_size(DType d);
const char* dtype_name(DType d);

// `frames` descriptor: count frames of H x W x C samples, top row first, little-endian.
struct FrameDesc {
  DType dtype = DType::u8;
  int height = 0, width = 0, channels = 0, count = 0;
  std::size_t frame_bytes() const {
    return std::size_t(height) * std::size_t(width) * std::size_t(channels) * dtype_size(dtype);
  }
};

// A read-only byte buffer with shared ownership (frames to send, pixel parts received).
struct Buffer {
  std::shared_ptr<const void> owner;
  const std::uint8_t* data = nullptr;
  std::size_t size = 0;
  static Buffer from_vector(std::vector<std::uint8_t>&& bytes);
};

struct EngineUnreachable : std::runtime_error { using std::runtime_error::runtime_error; };
struct ProtocolViolation : std::runtime_error { using std::runtime_error::runtime_error; };
struct Stopped : std::runtime_error { Stopped() : std::runtime_error("stopped") {} };
struct EngineRefused : std::runtime_error {
  std::string code;
  EngineRefused(std::string c, const std::string& message) : std::runtime_error(message), code(std::move(c)) {}
};

// HELLO's limits that size the plugin's requests (defaults: server/protocol.py Limits). The prompt
// limit is not among them: the engine checks the prompt itself (plugin.cpp analyze).
struct Limits {
  std::int64_t max_parts = 4098, max_part_bytes = std::int64_t(512) << 20,
               max_message_bytes = std::int64_t(4) << 30, max_frames = 4096, max_side = 8192;
};

struct Hello {
  int version = 0;
  std::string engine_version, model, device;
  bool random_weights = false;
  std::vector<std::string> capabilities;
  Limits limits;
};

struct JobInfo {
  std::string id, state, kind, code, error;
  int position = -1;            // -1: nil
  bool has_progress = false;
  std::string stage;
  double fraction = 0.0, eta_s = -1.0;  // eta_s -1: unknown
};

struct Accepted {
  std::string job, state;
  bool duplicate = false;
  int position = -1;
};

// The identity QC of a finished edit, read from RESULT `stats.qc` (`qc` in engine/metrics/quality.py).
struct Qc {
  bool present = false;
  double identity_mean = -1, identity_max = -1, threshold = -1;  // -1: not measured
  int drifted = 0;
  std::string embedder;
};

struct ResultPage {
  std::string status, state, code, reason;  // status: PENDING | DONE | FAILED | UNKNOWN
  double progress = -1;                     // PENDING: fraction, -1 unknown
  std::string output_mode;                  // DONE: "inline" | "path"
  FrameDesc frames;                         // DONE inline: descriptor of the parts in this page
  int offset = 0, total = 0;
  std::vector<Buffer> pixels;               // DONE inline with pixels: one per frame
  Qc qc;
  std::string inversion_cache;              // "hit" | "miss" | ""
  bool random_weights = false;
  std::vector<std::string> warnings;        // sentences, in the engine's order (a cut prompt, no face found)
};

// A settings value: the plugin sends ints, doubles and strings.
struct SettingValue {
  enum Kind { Int, Double, Str } kind = Int;
  std::int64_t i = 0;
  double d = 0;
  std::string s;
};

struct SubmitRequest {
  std::string job, prompt;
  std::vector<std::pair<std::string, SettingValue>> settings;
  FrameDesc desc;
  std::vector<Buffer> frames;
  bool retry = false;
};

class Connection {
 public:
  // `stop` is polled at least every 100 ms while waiting; when it returns true, Stopped is thrown.
  Connection(void* zmq_context, std::string address, std::function<bool()> stop);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  const std::string& address() const { return address_; }
  // Drops the socket (and anything queued on it) and connects a fresh one.
  void reconnect();

  Hello hello(double timeout_s);
  JobInfo status(const std::string& job, double timeout_s);
  Accepted submit(const SubmitRequest& req, double timeout_s);
  ResultPage result(const std::string& job, int offset, int count, bool pixels, double timeout_s);

 private:
  struct Reply;
  Reply request(const std::vector<std::uint8_t>& header, const std::vector<Buffer>& parts, std::int64_t id,
                double timeout_s);
  void open();
  void close();

  void* ctx_;
  void* sock_ = nullptr;
  std::string address_;
  std::function<bool()> stop_;
  std::int64_t next_id_ = 1;
};

// The process-wide ZeroMQ context (one I/O thread), created on first use. shutdown_context()
// terminates it; every Connection must be closed first (the plugin calls it on unload, after
// all instances, and so all worker threads, are gone). Leaves no thread or socket behind.
void* shared_context();
void shutdown_context();

}  // namespace ipfd
