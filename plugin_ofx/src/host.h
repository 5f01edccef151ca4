// The host as the plugin's files see it: the suites fetched at Load, property reads with
// defaults, and the two exceptions mainEntry turns into statuses.
//
// In: the ofx::Host given to setHost. Out: the suite pointers (process-wide, as OpenFX hands
// them out: set once at Load, read-only afterwards), prop_* helpers, Failure and UserError.
#pragma once

#include <stdexcept>
#include <string>

#include "ofx_api.h"

namespace ipfd::plugin {

extern ofx::Host* g_host;
extern const ofx::PropertySuiteV1* P;
extern const ofx::ImageEffectSuiteV1* E;
extern const ofx::ParameterSuiteV1* Q;
extern const ofx::MessageSuiteV1* M1;
extern const ofx::MessageSuiteV2* M2;  // null on hosts without persistent messages

// Fetches the suites from g_host; false when a required one is missing.
bool fetch_suites();

// A host-level failure, returned to the host as `status` (with an error message).
struct Failure : std::runtime_error {
  OfxStatus status;
  Failure(OfxStatus s, const std::string& what) : std::runtime_error(what), status(s) {}
};
// A problem the user can fix (shown on the status line, not a host error).
struct UserError : std::runtime_error { using std::runtime_error::runtime_error; };

std::string prop_str(OfxPropertySetHandle h, const char* name, int index = 0);
int prop_int(OfxPropertySetHandle h, const char* name, int index, int dflt);
double prop_double(OfxPropertySetHandle h, const char* name, int index, double dflt);

}  // namespace ipfd::plugin
