// Implementation of params.h.
#include "params.h"

#include <algorithm>
#include <climits>
#include <cstdio>

#include "hash.h"
#include "host.h"

namespace ipfd::plugin {

namespace {

constexpr const char* kParamsTag = "ipfd-ofx2";

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

std::string trimmed(const char* text) {
  std::string v = text ? text : "";
  const char* ws = " \t\r\n";
  v.erase(0, v.find_first_not_of(ws));
  auto end = v.find_last_not_of(ws);
  v.erase(end == std::string::npos ? 0 : end + 1);
  return v;
}

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

}  // namespace

// Engine defaults repeat engine/settings.py's (C++ cannot read them): test_ofx_plugin.py
// fails when one differs.
const std::vector<ParamSpec>& param_table() {
  static const std::vector<ParamSpec> table = {
      text_param("prompt", Kind::Text, "Prompt",
                 "What to change, e.g. 'add glasses' (sent to the engine as the edit prompt)", ""),
      text_param("address", Kind::Line, "Engine address",
                 "ZeroMQ address of `ipfacediff serve` (a non-local engine needs CURVE: reach it through a tunnel)",
                 "tcp://127.0.0.1:5555"),
      int_param("seed", "Seed", "Seeds every random choice of the edit", "seed", 0, 0, INT_MAX),
      double_param("guidance", "Guidance", "Classifier-free guidance of the edit (1 disables it)", "guidance_scale",
                   7.5, 1.0, 50.0, 15.0, 0.5, 2),
      int_param("keyframeInterval", "Keyframe interval", "One keyframe every this many frames", "keyframe_interval",
                8, 1, kProtocolMaxFrames),
      choice_param("mode", "Mode",
                   "crop: edit a tracked face crop and paste it back; full: edit the whole frame; auto: crop when a "
                   "face is found, else full",
                   "face_mode",
                   {{"crop (face)", "crop"}, {"full frame", "full"}, {"auto (crop if a face is found)", "auto"}}, 2),
      int_param("steps", "Steps", "Denoising steps for inversion and edit (fewer is faster and rougher)", "steps",
                50, 1, 1000),
      text_param("analyze", Kind::Button, "Analyze",
                 "Send the Source clip's frame range to the engine as one job (press again to refresh the status)", ""),
      text_param("status", Kind::Status, "Status", "Progress of the job and identity QC of the result",
                 "idle: write a prompt, then press Analyze"),
      text_param("analysis", Kind::Hidden, "Analysis", "The analysed job (kept with the project)", ""),
  };
  return table;
}

std::uint64_t params_hash(const Settings& s) {
  std::string canon = std::string(kParamsTag) + "|" + s.prompt;
  char num[40];
  for (const auto& [key, v] : s.engine) {
    if (v.kind == ipfd::SettingValue::Int) std::snprintf(num, sizeof num, "%lld", static_cast<long long>(v.i));
    else if (v.kind == ipfd::SettingValue::Double) std::snprintf(num, sizeof num, "%.17g", v.d);
    canon += "|" + key + "=" + (v.kind == ipfd::SettingValue::Str ? v.s : std::string(num));
  }
  return hash_bytes(canon.data(), canon.size(), 0x5e7);
}

void define_params(OfxParamSetHandle set) {
  for (const ParamSpec& spec : param_table()) define_param(set, spec);
}

std::vector<OfxParamHandle> fetch_params(OfxParamSetHandle set) {
  std::vector<OfxParamHandle> handles;
  for (const ParamSpec& spec : param_table()) {
    OfxParamHandle h = nullptr;
    if (Q->paramGetHandle(set, spec.name, &h, nullptr) != ofx::kStatOK || !h)
      throw Failure(ofx::kStatErrBadHandle, std::string("no parameter ") + spec.name);
    handles.push_back(h);
  }
  return handles;
}

Settings read_settings(const std::vector<OfxParamHandle>& params) {
  const auto& table = param_table();
  Settings s;
  char* text = nullptr;
  Q->paramGetValue(params[kPrompt], &text);
  s.prompt = trimmed(text);  // the engine strips it too
  text = nullptr;
  Q->paramGetValue(params[kAddress], &text);
  s.address = trimmed(text);
  for (std::size_t k = 0; k < table.size(); ++k) {
    const ParamSpec& spec = table[k];
    if (!spec.engine) continue;
    ipfd::SettingValue v;
    if (spec.kind == Kind::Double) {
      v.kind = ipfd::SettingValue::Double;
      v.d = spec.dflt;
      Q->paramGetValue(params[k], &v.d);
    } else {
      int n = int(spec.dflt);
      Q->paramGetValue(params[k], &n);
      if (spec.kind == Kind::Choice) {
        v.kind = ipfd::SettingValue::Str;
        v.s = spec.options[std::size_t(std::clamp(n, 0, int(spec.options.size()) - 1))].engine;
      } else {
        v.i = n;
      }
    }
    s.engine.emplace_back(spec.engine, v);
  }
  return s;
}

}  // namespace ipfd::plugin
