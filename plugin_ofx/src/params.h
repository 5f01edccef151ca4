// The effect's parameters: one table (name, kind, label, hint, engine setting, default,
// range) from which describe, create-instance and the settings sent to the engine are made.
//
// In: the host's parameter suite (define, fetch handles, read values in main-thread actions).
// Out: `param_table()`, the OFX parameter definitions, and `Settings` (prompt, address and the
// engine settings by their engine/settings.py names, in table order) with its hash.
// Adding an engine setting to the effect is one row in param_table() (params.cpp).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "engine_client.h"
#include "ofx_api.h"

namespace ipfd::plugin {

// The most frames one job may carry: the protocol's default limit (engine_client.h, compared with
// server/protocol.py by tests/server/test_constants.py), not a copy of it.
constexpr int kProtocolMaxFrames = int(ipfd::Limits{}.max_frames);

enum class Kind { Text, Line, Int, Double, Choice, Button, Status, Hidden };

struct Option {
  const char* label;
  const char* engine;  // the engine setting's value
};

struct ParamSpec {
  const char* name;  // OFX identifier (kept in projects)
  Kind kind;
  const char* label;
  const char* hint;
  const char* engine;      // engine.settings.Settings field it sets (also its script name), or nullptr
  double dflt, min, max;   // Int / Double: default and range; Choice: default option index
  const char* text;        // Text / Line / Status / Hidden: default
  std::vector<Option> options;
  double display_max, increment;
  int digits;
};

// Rows of param_table(), in order.
enum ParamId { kPrompt, kAddress, kSeed, kGuidance, kKeyframeInterval, kMode, kSteps, kAnalyze, kStatus, kAnalysis };
const std::vector<ParamSpec>& param_table();

// The parameter values an edit depends on.
struct Settings {
  std::string prompt, address;  // trimmed
  std::vector<std::pair<std::string, ipfd::SettingValue>> engine;  // table order
};
// Identifies (prompt, engine settings); the address is not part of it.
std::uint64_t params_hash(const Settings& s);

// Describe-in-context: defines every parameter of the table.
void define_params(OfxParamSetHandle set);
// Create-instance: the handles of every parameter, in table order.
std::vector<OfxParamHandle> fetch_params(OfxParamSetHandle set);
// Main-thread actions only: hosts built on the stock HostSupport library return a string
// parameter from one buffer per parameter, so reads from several render threads race.
Settings read_settings(const std::vector<OfxParamHandle>& params);

}  // namespace ipfd::plugin
