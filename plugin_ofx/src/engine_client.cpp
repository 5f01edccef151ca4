// Implementation of engine_client.h: ZeroMQ DEALER transport, msgpack headers, reply checks.
//
// In: requests from the plugin's worker threads. Out: parsed replies or the exceptions
// declared in engine_client.h. Replies are validated field by field against docs/protocol.md;
// anything unexpected becomes ProtocolViolation (never a crash, never a silent default).
#include "engine_client.h"

#include <zmq.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <mutex>
#include <string_view>

#include "msgpack_fields.h"

namespace ipfd {

namespace {

constexpr const char* kVersionFrame = "IPFD1";
constexpr std::size_t kMaxHeaderBytes = 64 * 1024;
constexpr int kSliceMs = 100;

using Clock = std::chrono::steady_clock;

using namespace mp;

void pack_frames(Packer& pk, const FrameDesc& d) {
  pk.pack_map(3);
  pack_str(pk, "dtype");
  pack_str(pk, dtype_name(d.dtype));
  pack_str(pk, "shape");
  pk.pack_array(3);
  pk.pack_int64(d.height);
  pk.pack_int64(d.width);
  pk.pack_int64(d.channels);
  pack_str(pk, "count");
  pk.pack_int64(d.count);
}

JobInfo parse_job_info(const msgpack::object& o) {
  const char* where = "JobInfo";
  if (o.type != msgpack::type::MAP) violation("STATE field 'job' is not a map");
  JobInfo info;
  info.id = str_field(o, "id", where);
  info.state = str_field(o, "state", where);
  info.kind = opt_str(o, "kind", where);
  info.code = opt_str(o, "code", where);
  info.error = opt_str(o, "error", where);
  info.position = opt_int(o, "position", where, -1);
  const msgpack::object* p = find(o, "progress");
  if (!is_nil(p)) {
    if (p->type != msgpack::type::MAP) violation("JobInfo field 'progress' is not a map");
    info.has_progress = true;
    info.stage = opt_str(*p, "stage", "progress");
    info.fraction = opt_num(*p, "fraction", "progress", 0.0);
    info.eta_s = opt_num(*p, "eta_s", "progress", -1.0);
  }
  static const char* kStates[] = {"unknown", "queued", "running", "done", "failed", "cancelled", "interrupted"};
  bool known = false;
  for (const char* s : kStates) known = known || info.state == s;
  if (!known) violation("JobInfo state '" + info.state + "' is not a protocol state");
  return info;
}

DType parse_dtype(const std::string& s) {
  if (s == "uint8") return DType::u8;
  if (s == "uint16") return DType::u16;
  if (s == "float32") return DType::f32;
  violation("frames dtype '" + s + "' is not one the plugin sent (uint8, uint16, float32)");
}

FrameDesc parse_frames(const msgpack::object& o) {
  const char* where = "frames";
  if (o.type != msgpack::type::MAP) violation("'frames' is not a map");
  FrameDesc d;
  d.dtype = parse_dtype(str_field(o, "dtype", where));
  const msgpack::object& shape = need(o, "shape", where);
  if (shape.type != msgpack::type::ARRAY || shape.via.array.size != 3) violation("frames 'shape' is not [H, W, C]");
  std::int64_t dims[3];
  for (int i = 0; i < 3; ++i) {
    dims[i] = as_int(shape.via.array.ptr[i], "shape", where);
    if (dims[i] < 1 || dims[i] > 1 << 20) violation("frames 'shape' has an impossible size");
  }
  d.height = int(dims[0]);
  d.width = int(dims[1]);
  d.channels = int(dims[2]);
  std::int64_t count = as_int(need(o, "count", where), "count", where);
  if (count < 0 || count > 1 << 20) violation("frames 'count' is out of range");
  d.count = int(count);
  return d;
}

Qc parse_qc(const msgpack::object* stats) {
  Qc qc;
  if (is_nil(stats) || stats->type != msgpack::type::MAP) return qc;
  const msgpack::object* q = find(*stats, "qc");
  if (is_nil(q) || q->type != msgpack::type::MAP) return qc;
  qc.present = true;
  qc.identity_mean = opt_num(*q, "identity_mean", "qc", -1);
  qc.identity_max = opt_num(*q, "identity_max", "qc", -1);
  qc.threshold = opt_num(*q, "threshold", "qc", -1);
  qc.embedder = opt_str(*q, "embedder", "qc");
  const msgpack::object* drifted = find(*q, "drifted_frames");
  if (!is_nil(drifted)) {
    if (drifted->type != msgpack::type::ARRAY) violation("qc 'drifted_frames' is not a list");
    qc.drifted = int(drifted->via.array.size);
  }
  return qc;
}

// RESULT `warnings`: absent or nil is none; anything but a list of strings is a violation.
std::vector<std::string> parse_warnings(const msgpack::object& h) {
  std::vector<std::string> out;
  const msgpack::object* w = find(h, "warnings");
  if (is_nil(w)) return out;
  if (w->type != msgpack::type::ARRAY) violation("RESULT 'warnings' is not a list");
  for (std::uint32_t i = 0; i < w->via.array.size; ++i)
    out.push_back(as_str(w->via.array.ptr[i], "warnings", "RESULT"));
  return out;
}

void free_shared(void* /*data*/, void* hint) { delete static_cast<std::shared_ptr<const void>*>(hint); }

}  // namespace

std::size_t dtype_size(DType d) { return d == DType::u8 ? 1 : d == DType::u16 ? 2 : 4; }
const char* dtype_name(DType d) { return d == DType::u8 ? "uint8" : d == DType::u16 ? "uint16" : "float32"; }

Buffer Buffer::from_vector(std::vector<std::uint8_t>&& bytes) {
  auto owned = std::make_shared<const std::vector<std::uint8_t>>(std::move(bytes));
  Buffer b;
  b.data = owned->data();
  b.size = owned->size();
  b.owner = owned;
  return b;
}

namespace {
std::mutex g_context_mutex;
void* g_context = nullptr;
std::atomic<int> g_open_sockets{0};
}  // namespace

void* shared_context() {
  std::lock_guard<std::mutex> lock(g_context_mutex);
  if (!g_context) {
    g_context = zmq_ctx_new();
    if (!g_context) throw EngineUnreachable(std::string("cannot create a ZeroMQ context: ") + zmq_strerror(zmq_errno()));
    zmq_ctx_set(g_context, ZMQ_IO_THREADS, 1);
  }
  return g_context;
}

void shutdown_context() {
  std::lock_guard<std::mutex> lock(g_context_mutex);
  if (!g_context) return;
  if (g_open_sockets > 0) {
    // A socket is still open (a host unloading before destroying instances): terminating would
    // block until it closes, so only stop the context and leave it, rather than hang the host.
    zmq_ctx_shutdown(g_context);
  } else {
    zmq_ctx_term(g_context);
  }
  g_context = nullptr;
}

// One received message: the parsed header plus the raw pixel parts (owned zmq messages).
struct Connection::Reply {
  msgpack::object_handle handle;  // owns the zone; the root object lives inside it (moves with it)
  const msgpack::object& header() const { return handle.get(); }
  std::string type;
  std::vector<Buffer> parts;
};

Connection::Connection(void* zmq_context, std::string address, std::function<bool()> stop)
    : ctx_(zmq_context), address_(std::move(address)), stop_(std::move(stop)) {
  open();
}

Connection::~Connection() { close(); }

void Connection::open() {
  close();
  void* s = zmq_socket(ctx_, ZMQ_DEALER);
  if (!s) throw EngineUnreachable(std::string("cannot create a ZeroMQ socket: ") + zmq_strerror(zmq_errno()));
  int zero = 0, hb_ivl = 2000, hb_timeout = 10000;
  std::int64_t max_msg = std::int64_t(1) << 31;  // one pixel part: 8192^2 RGBA float32 is 1 GiB
  zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
  zmq_setsockopt(s, ZMQ_HEARTBEAT_IVL, &hb_ivl, sizeof hb_ivl);
  zmq_setsockopt(s, ZMQ_HEARTBEAT_TIMEOUT, &hb_timeout, sizeof hb_timeout);
  zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &max_msg, sizeof max_msg);
  if (zmq_connect(s, address_.c_str()) != 0) {
    std::string why = zmq_strerror(zmq_errno());
    zmq_close(s);
    throw EngineRefused("bad_address", "'" + address_ + "' is not a ZeroMQ address like tcp://127.0.0.1:5555 (" +
                                           why + ")");
  }
  sock_ = s;
  ++g_open_sockets;
}

void Connection::close() {
  if (sock_) {
    zmq_close(sock_);
    sock_ = nullptr;
    --g_open_sockets;
  }
}

void Connection::reconnect() { open(); }

Connection::Reply Connection::request(const std::vector<std::uint8_t>& header, const std::vector<Buffer>& parts,
                                      std::int64_t id, double timeout_s) {
  if (!sock_) open();
  // Send: version frame, header, pixel parts (zero-copy: libzmq holds a reference until sent).
  auto send_part = [&](const void* data, std::size_t size, bool more, const std::shared_ptr<const void>* owner) {
    zmq_msg_t msg;
    if (owner) {
      auto* hint = new std::shared_ptr<const void>(*owner);
      if (zmq_msg_init_data(&msg, const_cast<void*>(data), size, free_shared, hint) != 0) {
        delete hint;
        throw EngineUnreachable("cannot queue a message part");
      }
    } else {
      zmq_msg_init_size(&msg, size);
      if (size) std::memcpy(zmq_msg_data(&msg), data, size);
    }
    if (zmq_msg_send(&msg, sock_, (more ? ZMQ_SNDMORE : 0) | ZMQ_DONTWAIT) < 0) {
      zmq_msg_close(&msg);
      throw EngineUnreachable(std::string("cannot send to the engine at ") + address_ + ": " + zmq_strerror(zmq_errno()));
    }
  };
  send_part(kVersionFrame, std::strlen(kVersionFrame), true, nullptr);
  send_part(header.data(), header.size(), !parts.empty(), nullptr);
  for (std::size_t i = 0; i < parts.size(); ++i)
    send_part(parts[i].data, parts[i].size, i + 1 < parts.size(), &parts[i].owner);

  auto deadline = Clock::now() + std::chrono::milliseconds(std::int64_t(timeout_s * 1000));
  while (true) {
    if (stop_ && stop_()) throw Stopped();
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0)
      throw EngineUnreachable("no answer from the engine at " + address_ + " within " +
                              std::to_string(int(std::lround(timeout_s))) + " s");
    zmq_pollitem_t item{sock_, 0, ZMQ_POLLIN, 0};
    int rc = zmq_poll(&item, 1, long(std::min<std::int64_t>(left, kSliceMs)));
    if (rc < 0) {
      if (zmq_errno() == EINTR) continue;
      throw EngineUnreachable(std::string("poll failed: ") + zmq_strerror(zmq_errno()));
    }
    if (rc == 0) continue;

    // Receive one whole multipart message.
    std::vector<Buffer> received;
    bool more = true;
    while (more) {
      auto* msg = new zmq_msg_t;
      zmq_msg_init(msg);
      if (zmq_msg_recv(msg, sock_, 0) < 0) {
        zmq_msg_close(msg);
        delete msg;
        throw EngineUnreachable(std::string("receive failed: ") + zmq_strerror(zmq_errno()));
      }
      more = zmq_msg_more(msg) != 0;
      Buffer b;
      b.data = static_cast<const std::uint8_t*>(zmq_msg_data(msg));
      b.size = zmq_msg_size(msg);
      b.owner = std::shared_ptr<const void>(msg, [](const void* p) {
        auto* m = const_cast<zmq_msg_t*>(static_cast<const zmq_msg_t*>(p));
        zmq_msg_close(m);
        delete m;
      });
      received.push_back(std::move(b));
    }

    if (received.size() < 2) violation("a reply has fewer than 2 parts (version frame and header)");
    std::string_view version(reinterpret_cast<const char*>(received[0].data), received[0].size);
    if (version.size() < 5 || version.size() > 8 || version.substr(0, 4) != "IPFD")
      violation("a reply does not start with the version frame IPFD<n>");
    if (version != kVersionFrame)
      violation("the engine answered in protocol version '" + std::string(version.substr(4)) +
                "'; this plugin speaks 1");
    if (received[1].size > kMaxHeaderBytes) violation("a reply header is larger than 64 KiB");

    Reply reply;
    try {
      std::size_t off = 0;
      msgpack::unpack_limit limit(4096, 4096, kMaxHeaderBytes, 0, 0, 32);
      reply.handle = msgpack::unpack(reinterpret_cast<const char*>(received[1].data), received[1].size, off, nullptr,
                                     nullptr, limit);
      if (off != received[1].size) violation("a reply header has bytes after its msgpack map");
    } catch (const ProtocolViolation&) {
      throw;
    } catch (const std::exception& e) {
      violation(std::string("a reply header is not valid msgpack (") + e.what() + ")");
    }
    if (reply.header().type != msgpack::type::MAP) violation("a reply header is not a msgpack map");
    reply.type = str_field(reply.header(), "type", "reply");

    const msgpack::object* re = find(reply.header(), "re");
    bool ours = false;
    if (!is_nil(re)) {
      ours = re->type == msgpack::type::POSITIVE_INTEGER && re->via.u64 == std::uint64_t(id);
    } else if (reply.type == "ERROR") {
      ours = true;  // an ERROR whose request id the engine could not read: ours is the only one pending
    }
    if (!ours) continue;  // an event, a heartbeat or a late reply to an earlier request
    if (reply.type == "ERROR") {
      std::string code = opt_str(reply.header(), "code", "ERROR");
      std::string message = opt_str(reply.header(), "message", "ERROR");
      throw EngineRefused(code.empty() ? "internal" : code, message.empty() ? "the engine reported an error" : message);
    }
    reply.parts.assign(received.begin() + 2, received.end());
    return reply;
  }
}

Hello Connection::hello(double timeout_s) {
  std::int64_t id = next_id_++;
  msgpack::sbuffer buf;
  Packer pk(&buf);
  pk.pack_map(4);
  pack_str(pk, "type");
  pack_str(pk, "HELLO");
  pack_str(pk, "id");
  pk.pack_int64(id);
  pack_str(pk, "versions");
  pk.pack_array(1);
  pk.pack_int64(1);
  pack_str(pk, "client");
  pack_str(pk, "ipfacediff-ofx");
  Reply r = request(finish(buf), {}, id, timeout_s);
  if (r.type != "HELLO") violation("HELLO was answered with " + r.type);
  const msgpack::object& h = r.header();
  Hello out;
  std::int64_t v = as_int(need(h, "version", "HELLO"), "version", "HELLO");
  if (v != 1) violation("the engine chose protocol version " + std::to_string(v) + "; this plugin speaks 1");
  out.version = 1;
  out.engine_version = opt_str(h, "engine_version", "HELLO");
  out.model = opt_str(h, "model", "HELLO");
  out.device = opt_str(h, "device", "HELLO");
  const msgpack::object* rw = find(h, "random_weights");
  out.random_weights = !is_nil(rw) && as_bool(*rw, "random_weights", "HELLO");
  const msgpack::object* caps = find(h, "capabilities");
  if (!is_nil(caps)) {
    if (caps->type != msgpack::type::ARRAY) violation("HELLO 'capabilities' is not a list");
    for (std::uint32_t i = 0; i < caps->via.array.size; ++i)
      out.capabilities.push_back(as_str(caps->via.array.ptr[i], "capabilities", "HELLO"));
  }
  const msgpack::object* lim = find(h, "limits");
  if (!is_nil(lim)) {
    if (lim->type != msgpack::type::MAP) violation("HELLO 'limits' is not a map");
    auto get = [&](const char* key, std::int64_t dflt) {
      const msgpack::object* o = find(*lim, key);
      if (is_nil(o)) return dflt;
      std::int64_t x = as_int(*o, key, "limits");
      if (x < 1) violation(std::string("HELLO limit '") + key + "' is not positive");
      return x;
    };
    out.limits.max_parts = get("max_parts", out.limits.max_parts);
    out.limits.max_part_bytes = get("max_part_bytes", out.limits.max_part_bytes);
    out.limits.max_message_bytes = get("max_message_bytes", out.limits.max_message_bytes);
    out.limits.max_frames = get("max_frames", out.limits.max_frames);
    out.limits.max_side = get("max_side", out.limits.max_side);
  }
  return out;
}

JobInfo Connection::status(const std::string& job, double timeout_s) {
  std::int64_t id = next_id_++;
  msgpack::sbuffer buf;
  Packer pk(&buf);
  pk.pack_map(3);
  pack_str(pk, "type");
  pack_str(pk, "STATUS");
  pack_str(pk, "id");
  pk.pack_int64(id);
  pack_str(pk, "job");
  pack_str(pk, job);
  Reply r = request(finish(buf), {}, id, timeout_s);
  if (r.type != "STATE") violation("STATUS was answered with " + r.type);
  JobInfo info = parse_job_info(need(r.header(), "job", "STATE"));
  if (info.id != job) violation("STATE names job '" + info.id + "', not the one asked about");
  return info;
}

Accepted Connection::submit(const SubmitRequest& req, double timeout_s) {
  std::int64_t id = next_id_++;
  msgpack::sbuffer buf;
  Packer pk(&buf);
  pk.pack_map(req.retry ? 8 : 7);
  pack_str(pk, "type");
  pack_str(pk, "SUBMIT");
  pack_str(pk, "id");
  pk.pack_int64(id);
  pack_str(pk, "job");
  pack_str(pk, req.job);
  pack_str(pk, "prompt");
  pack_str(pk, req.prompt);
  pack_str(pk, "settings");
  pk.pack_map(std::uint32_t(req.settings.size()));
  for (const auto& [name, value] : req.settings) {
    pack_str(pk, name);
    if (value.kind == SettingValue::Int) pk.pack_int64(value.i);
    else if (value.kind == SettingValue::Double) pk.pack_double(value.d);
    else pack_str(pk, value.s);
  }
  pack_str(pk, "frames");
  pack_frames(pk, req.desc);
  pack_str(pk, "events");
  pk.pack_false();  // the plugin polls STATUS; events would only fill the queue
  if (req.retry) {
    pack_str(pk, "retry");
    pk.pack_true();
  }
  Reply r = request(finish(buf), req.frames, id, timeout_s);
  if (r.type != "ACCEPTED") violation("SUBMIT was answered with " + r.type);
  const msgpack::object& h = r.header();
  Accepted a;
  a.job = str_field(h, "job", "ACCEPTED");
  if (a.job != req.job) violation("ACCEPTED names job '" + a.job + "', not the one submitted");
  a.state = str_field(h, "state", "ACCEPTED");
  const msgpack::object* dup = find(h, "duplicate");
  a.duplicate = !is_nil(dup) && as_bool(*dup, "duplicate", "ACCEPTED");
  a.position = opt_int(h, "position", "ACCEPTED", -1);
  return a;
}

ResultPage Connection::result(const std::string& job, int offset, int count, bool pixels, double timeout_s) {
  std::int64_t id = next_id_++;
  msgpack::sbuffer buf;
  Packer pk(&buf);
  pk.pack_map(count > 0 ? 6 : 5);
  pack_str(pk, "type");
  pack_str(pk, "RESULT");
  pack_str(pk, "id");
  pk.pack_int64(id);
  pack_str(pk, "job");
  pack_str(pk, job);
  pack_str(pk, "offset");
  pk.pack_int64(offset);
  pack_str(pk, "pixels");
  if (pixels) pk.pack_true(); else pk.pack_false();
  if (count > 0) {
    pack_str(pk, "count");
    pk.pack_int64(count);
  }
  Reply r = request(finish(buf), {}, id, timeout_s);
  if (r.type != "RESULT") violation("RESULT was answered with " + r.type);
  const msgpack::object& h = r.header();
  const char* where = "RESULT";
  ResultPage page;
  page.status = str_field(h, "status", where);
  page.state = opt_str(h, "state", where);
  page.warnings = parse_warnings(h);
  if (page.status == "PENDING") {
    const msgpack::object* p = find(h, "progress");
    if (!is_nil(p) && p->type == msgpack::type::MAP) page.progress = opt_num(*p, "fraction", "progress", -1);
  } else if (page.status == "FAILED" || page.status == "UNKNOWN") {
    page.code = opt_str(h, "code", where);
    page.reason = opt_str(h, "reason", where);
  } else if (page.status == "DONE") {
    const msgpack::object* stats = find(h, "stats");
    page.qc = parse_qc(stats);
    if (!is_nil(stats) && stats->type == msgpack::type::MAP) {
      page.inversion_cache = opt_str(*stats, "inversion_cache", "stats");
      const msgpack::object* rw = find(*stats, "random_weights");
      page.random_weights = !is_nil(rw) && rw->type == msgpack::type::BOOLEAN && rw->via.boolean;
    }
    const msgpack::object& out = need(h, "output", where);
    if (out.type != msgpack::type::MAP) violation("RESULT 'output' is not a map");
    page.output_mode = str_field(out, "mode", "output");
    if (page.output_mode == "inline") {
      page.frames = parse_frames(need(out, "frames", "output"));
      page.offset = opt_int(out, "offset", "output", 0);
      page.total = opt_int(out, "total", "output", -1);
      if (page.total < 0) violation("RESULT output has no 'total'");
      std::size_t expect_parts = pixels ? std::size_t(page.frames.count) : 0;
      if (r.parts.size() != expect_parts)
        violation("RESULT announces " + std::to_string(expect_parts) + " pixel part(s) but " +
                  std::to_string(r.parts.size()) + " follow");
      for (const Buffer& b : r.parts)
        if (b.size != page.frames.frame_bytes())
          violation("a RESULT pixel part has " + std::to_string(b.size) + " bytes; its descriptor needs " +
                    std::to_string(page.frames.frame_bytes()));
      page.pixels = std::move(r.parts);
    }
  } else {
    violation("RESULT status '" + page.status + "' is not PENDING, DONE, FAILED or UNKNOWN");
  }
  return page;
}

}  // namespace ipfd
