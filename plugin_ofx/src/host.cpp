// Implementation of host.h.
#include "host.h"

namespace ipfd::plugin {

ofx::Host* g_host = nullptr;
const ofx::PropertySuiteV1* P = nullptr;
const ofx::ImageEffectSuiteV1* E = nullptr;
const ofx::ParameterSuiteV1* Q = nullptr;
const ofx::MessageSuiteV1* M1 = nullptr;
const ofx::MessageSuiteV2* M2 = nullptr;

bool fetch_suites() {
  if (!g_host) return false;
  auto fetch = [](const char* name, int version) { return g_host->fetchSuite(g_host->host, name, version); };
  P = static_cast<const ofx::PropertySuiteV1*>(fetch(ofx::kPropertySuite, 1));
  E = static_cast<const ofx::ImageEffectSuiteV1*>(fetch(ofx::kImageEffectSuite, 1));
  Q = static_cast<const ofx::ParameterSuiteV1*>(fetch(ofx::kParameterSuite, 1));
  M2 = static_cast<const ofx::MessageSuiteV2*>(fetch(ofx::kMessageSuite, 2));
  M1 = static_cast<const ofx::MessageSuiteV1*>(fetch(ofx::kMessageSuite, 1));
  return P && E && Q;
}

std::string prop_str(OfxPropertySetHandle h, const char* name, int index) {
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

}  // namespace ipfd::plugin
