// Implementation of worker.h: submit / poll / fetch on one DEALER socket per job.
#include "worker.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <sstream>
#include <string>

namespace ipfd::plugin {

namespace {

void set_state(std::mutex& mu, Record& rec, JobState s, const std::string& status) {
  std::lock_guard<std::mutex> lock(mu);
  rec.state = s;
  rec.status = status;
}

// One job being followed: its record, the connection, the engine's limits.
struct Job {
  std::mutex& mu;
  std::shared_ptr<Record> rec;
  const std::atomic<bool>& stopped;
  ipfd::Connection& conn;
  ipfd::Hello hello;

  void report(JobState s, const std::string& status) { set_state(mu, *rec, s, status); }
  // Waits `seconds`; false (at once) when the worker is stopped.
  bool nap(double seconds) const {
    auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(int(seconds * 1000));
    while (std::chrono::steady_clock::now() < end) {
      if (stopped) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return !stopped;
  }
};

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
  for (auto w = head.warnings.begin(); w != head.warnings.end(); ++w)  // each once; a clause, so no full stop
    if (std::find(head.warnings.begin(), w, *w) == w) o << "; warning: " << w->substr(0, w->find_last_not_of('.') + 1);
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

std::string failed_status(const ipfd::JobInfo& info) {
  return "failed: " + (info.error.empty() ? info.state : info.error) + (info.code.empty() ? "" : " [" + info.code + "]") +
         " — press Analyze to resubmit";
}

// SUBMIT the frames (retry: the engine's copy of the job had failed); the job's state after.
ipfd::JobInfo submit(Job& job, ipfd::JobInfo info, std::vector<Buffer>& upload, const Settings& settings, bool retry) {
  const Record& r = *job.rec;
  const auto& L = job.hello.limits;
  const std::size_t fb = r.fmt.frame_bytes();
  if (r.count > L.max_frames || std::max(r.fmt.width, r.fmt.height) > L.max_side || std::int64_t(fb) > L.max_part_bytes ||
      r.count + 2 > L.max_parts || std::int64_t(fb) * r.count + 65536 > L.max_message_bytes)
    throw ipfd::EngineRefused("too_large", std::to_string(r.count) + " frame(s) of " + describe_format(r.fmt) +
                                               " exceed the engine's limits (max_frames " + std::to_string(L.max_frames) +
                                               ", max_side " + std::to_string(L.max_side) + ", max_message_bytes " +
                                               std::to_string(L.max_message_bytes) + "): analyse a shorter or smaller clip");
  job.report(JobState::Uploading, "uploading " + std::to_string(r.count) + " frame(s) of " + describe_format(r.fmt) + "…");
  ipfd::SubmitRequest req;
  req.job = r.id;
  req.prompt = settings.prompt;
  req.retry = retry;
  req.settings = settings.engine;
  req.desc = {r.fmt.dtype, r.fmt.height, r.fmt.width, r.fmt.channels, r.count};
  req.frames = upload;
  ipfd::Accepted acc = job.conn.submit(req, 10.0 + double(fb) * r.count / 50e6);
  upload.clear();  // the engine has them now (or will say so on the next STATUS)
  upload.shrink_to_fit();
  info.state = acc.state;
  info.position = acc.position;
  return info;
}

// STATUS every 0.5 s while the job is queued or running; its state after.
ipfd::JobInfo poll(Job& job, ipfd::JobInfo info) {
  while (info.state == "queued" || info.state == "running") {
    job.report(info.state == "queued" ? JobState::Queued : JobState::Running, progress_status(info));
    if (!job.nap(0.5)) throw ipfd::Stopped();
    info = job.conn.status(job.rec->id, 5.0);
  }
  return info;
}

// RESULT once, in pages that fit the engine's message limit (a too_large reply halves them).
std::vector<Buffer> fetch_pages(Job& job, const ipfd::ResultPage& head) {
  const Record& r = *job.rec;
  auto matches = [&](const ipfd::FrameDesc& d) {
    return d.dtype == r.fmt.dtype && d.height == r.fmt.height && d.width == r.fmt.width && d.channels == r.fmt.channels;
  };
  if (head.total != r.count || !matches(head.frames))
    throw ipfd::ProtocolViolation("RESULT describes " + std::to_string(head.total) + " frame(s) that do not match the " +
                                  std::to_string(r.count) + " frame(s) of " + describe_format(r.fmt) + " submitted");
  const std::size_t fb = r.fmt.frame_bytes();
  const std::int64_t budget = std::min<std::int64_t>(job.hello.limits.max_message_bytes - 65536, std::int64_t(256) << 20);
  int page = int(std::max<std::int64_t>(1, budget / std::int64_t(fb)));
  std::vector<Buffer> frames;
  while (int(frames.size()) < r.count) {
    const int offset = int(frames.size());
    const int want = std::min(page, r.count - offset);
    ipfd::ResultPage p;
    try {
      p = job.conn.result(r.id, offset, want, true, 10.0 + double(fb) * want / 50e6);
    } catch (const ipfd::EngineRefused& e) {
      if (e.code == "too_large" && want > 1) {
        page = std::max(1, want / 2);
        continue;
      }
      throw;
    }
    if (p.status != "DONE" || p.offset != offset || p.frames.count < 1 || p.frames.count > want || !matches(p.frames))
      throw ipfd::ProtocolViolation("a RESULT page does not match the request (offset " + std::to_string(offset) + ")");
    for (auto& b : p.pixels) frames.push_back(std::move(b));
    job.report(JobState::Fetching, "fetching the result (" + std::to_string(frames.size()) + "/" +
                                       std::to_string(r.count) + " frames) [job " + short_id(r.id) + "]…");
  }
  return frames;
}

void fetch(Job& job, const std::function<void(const std::shared_ptr<Record>&)>& on_done) {
  job.report(JobState::Fetching, "fetching the result [job " + short_id(job.rec->id) + "]…");
  ipfd::ResultPage head = job.conn.result(job.rec->id, 0, 0, false, 10.0);
  if (head.status != "DONE") throw ipfd::ProtocolViolation("RESULT says " + head.status + " for a done job");
  if (head.output_mode != "inline") throw ipfd::ProtocolViolation("RESULT output is not inline");
  std::vector<Buffer> frames = fetch_pages(job, head);
  std::lock_guard<std::mutex> lock(job.mu);
  job.rec->results = std::move(frames);
  job.rec->state = JobState::Done;
  job.rec->status = done_status(*job.rec, head, job.hello.random_weights);
  on_done(job.rec);
}

// One pass on a reachable engine: HELLO, STATUS, submit if it lacks the job, poll, fetch.
void follow(Job& job, std::vector<Buffer>& upload, const Settings& settings, double& backoff,
            const std::function<void(const std::shared_ptr<Record>&)>& on_done) {
  // HELLO on each (re)connection: it checks the version and learns the limits.
  job.hello = job.conn.hello(3.0);
  const auto& caps = job.hello.capabilities;
  if (std::find(caps.begin(), caps.end(), "inline_frames") == caps.end())
    throw ipfd::EngineRefused("unsupported", "the engine does not accept inline frames");
  backoff = 1.0;
  const std::string& id = job.rec->id;
  ipfd::JobInfo info = job.conn.status(id, 5.0);
  const bool failed = info.state == "failed" || info.state == "cancelled" || info.state == "interrupted";
  if (info.state == "unknown" || (failed && !upload.empty())) {
    if (upload.empty())
      return job.report(JobState::Lost, "the engine at " + job.conn.address() + " does not know job " + short_id(id) +
                                            " (released, or another engine): press Analyze");
    info = submit(job, info, upload, settings, failed);
  } else if (failed) {
    return job.report(JobState::Failed, failed_status(info));
  }
  info = poll(job, info);
  if (info.state == "unknown") return job.report(JobState::Lost, "the engine lost job " + short_id(id) + ": press Analyze");
  if (info.state != "done") return job.report(JobState::Failed, failed_status(info));
  fetch(job, on_done);
}

// The thread: follow() until it ends, reconnecting while the engine is unreachable; every
// failure ends as the record's state and status line.
void run(std::mutex& mu, std::shared_ptr<Record> rec, std::vector<Buffer> upload, Settings settings,
         std::shared_ptr<std::atomic<bool>> stop, std::function<void(const std::shared_ptr<Record>&)> on_done) {
  const std::atomic<bool>& stopped = *stop;
  const std::string addr = rec->address;
  auto report = [&](JobState s, const std::string& status) { set_state(mu, *rec, s, status); };
  try {
    ipfd::Connection conn(ipfd::shared_context(), addr, [&stopped] { return stopped.load(); });
    Job job{mu, rec, stopped, conn, {}};
    job.report(JobState::Connecting, "connecting to the engine at " + addr + "…");
    for (double backoff = 1.0;;) {
      try {
        follow(job, upload, settings, backoff, on_done);
        return;
      } catch (const ipfd::EngineUnreachable& e) {
        job.report(JobState::Unreachable,
                   "engine unreachable at " + addr + " (" + e.what() + "); retrying — start it with `ipfacediff serve`");
        if (!job.nap(backoff)) return;
        backoff = std::min(backoff * 2, 5.0);
        conn.reconnect();  // a fresh socket drops whatever the dead one still queued
      }
    }
  } catch (const ipfd::Stopped&) {
  } catch (const ipfd::EngineRefused& e) {
    if (e.code == "bad_address") report(JobState::Error, std::string("error: ") + e.what());
    else report(JobState::Failed, std::string("failed: the engine refused the job: ") + e.what() + " [" + e.code + "]");
  } catch (const ipfd::ProtocolViolation& e) {
    report(JobState::Error, std::string("error: malformed reply from the engine: ") + e.what());
  } catch (const std::bad_alloc&) {
    report(JobState::Error, "error: out of memory while talking to the engine");
  } catch (const std::exception& e) {
    report(JobState::Error, std::string("error: ") + e.what());
  } catch (...) {
    report(JobState::Error, "error: unexpected failure in the engine connection");
  }
}

}  // namespace

std::string short_id(const std::string& id) { return id.size() > 16 ? id.substr(0, 16) + "…" : id; }

void Worker::start(std::shared_ptr<Record> rec, std::vector<Buffer> upload, Settings settings) {
  std::lock_guard<std::mutex> lock(start_mu_);
  stop_locked();
  stop_ = std::make_shared<std::atomic<bool>>(false);
  {
    std::lock_guard<std::mutex> state_lock(mu_);
    record_ = rec;
  }
  thread_ = std::thread(run, std::ref(mu_), std::move(rec), std::move(upload), std::move(settings), stop_, on_done_);
}

void Worker::stop() {
  std::lock_guard<std::mutex> lock(start_mu_);
  stop_locked();
}

void Worker::stop_locked() {
  if (!thread_.joinable()) return;
  *stop_ = true;
  thread_.join();
  std::lock_guard<std::mutex> lock(mu_);
  if (record_ && !terminal(record_->state)) {
    record_->state = JobState::Detached;
    record_->status = "stopped following job " + short_id(record_->id) + ": press Analyze to resume";
  }
  record_.reset();
}

}  // namespace ipfd::plugin
