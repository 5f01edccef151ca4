// The instance's worker: one thread that follows one job on the engine, so that Analyze and
// render never wait for the network.
//
// In: a Record (what was analysed), the frames to upload (empty when following a job the
// engine should already have, e.g. after a project is reopened), the settings to submit.
// Out: the record's state and status line, and its result frames once the job is done, all
// written under the instance's mutex. Steps: HELLO (version, limits), then submit (when the
// engine lacks the job), poll (STATUS every 0.5 s), fetch (RESULT pages, once); an unreachable
// engine is retried with backoff on a fresh socket until it answers or the worker is stopped.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "params.h"
#include "records.h"

namespace ipfd::plugin {

class Worker {
 public:
  // `state_mu` guards the records' state; `on_done(rec)` runs under it once rec's frames are in.
  Worker(std::mutex& state_mu, std::function<void(const std::shared_ptr<Record>&)> on_done)
      : mu_(state_mu), on_done_(std::move(on_done)) {}
  ~Worker() { stop(); }
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Stops the previous job's thread, then follows `rec`.
  void start(std::shared_ptr<Record> rec, std::vector<Buffer> upload, Settings settings);
  // Stops and joins the thread (if any); an unfinished record becomes Detached.
  void stop();
  // The record being followed (caller holds state_mu).
  const std::shared_ptr<Record>& record_locked() const { return record_; }

 private:
  void stop_locked();
  std::mutex& mu_;
  std::function<void(const std::shared_ptr<Record>&)> on_done_;
  std::mutex start_mu_;  // serialises start and stop
  std::thread thread_;
  std::shared_ptr<Record> record_;  // guarded by mu_
  std::shared_ptr<std::atomic<bool>> stop_;
};

std::string short_id(const std::string& id);

}  // namespace ipfd::plugin
