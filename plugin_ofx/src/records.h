// Job records: one per analysis (what was sent to the engine, where its job stands, its
// frames once done), and their persistent text form kept in the secret `analysis` parameter.
//
// In: the analysed clip's format, range and frame hashes; the worker's progress.
// Out: `Record`, and encode_record / decode_record: "ipfd-ofx2:" + hex of a msgpack map
// {job, address, params, first, count, format{dtype, channels, width, height, x1, y1,
// premult}, hashes (bin, 8 bytes per frame, little-endian), done}. decode_record returns null
// for anything else (another tag, bad hex or msgpack, a missing or mistyped field,
// inconsistent counts): a project then simply shows "press Analyze".
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine_client.h"
#include "pixels.h"

namespace ipfd::plugin {

enum class JobState { Connecting, Unreachable, Uploading, Queued, Running, Fetching, Done, Failed, Lost, Error, Detached };

inline bool terminal(JobState s) {
  return s == JobState::Done || s == JobState::Failed || s == JobState::Lost || s == JobState::Error ||
         s == JobState::Detached;
}

// One analysis: what was sent, and (guarded by the owning instance's mutex) where its job stands.
struct Record {
  std::string id, address;
  std::uint64_t params_hash = 0;
  int first = 0, count = 0;
  Format fmt;
  std::vector<std::uint64_t> frame_hashes;
  // guarded by the instance's mutex:
  JobState state = JobState::Connecting;
  std::string status;
  std::vector<Buffer> results;  // `count` frames once Done
  bool mismatch = false;        // a full-scale render saw different input pixels
};

std::string encode_record(const Record& r);
std::shared_ptr<Record> decode_record(const std::string& text);

}  // namespace ipfd::plugin
