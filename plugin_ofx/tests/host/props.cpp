// Implementation of props.h: the property suite over PropSet.
#include "props.h"

namespace testhost {

namespace {

template <class T> std::vector<T>& vec(Prop& p);
template <> std::vector<int>& vec<int>(Prop& p) { return p.i; }
template <> std::vector<double>& vec<double>(Prop& p) { return p.d; }
template <> std::vector<void*>& vec<void*>(Prop& p) { return p.p; }

template <class T> OfxStatus set1(OfxPropertySetHandle h, const char* n, int idx, T v, char type) {
  if (!h) return ofx::kStatErrBadHandle;
  return PS(h)->with(n, type, [&](Prop& p) {
    auto& a = vec<T>(p);
    if (idx < 0) return ofx::kStatErrBadIndex;
    if (int(a.size()) <= idx) a.resize(idx + 1);
    a[idx] = v;
    return ofx::kStatOK;
  }, true);
}
template <class T> OfxStatus setN(OfxPropertySetHandle h, const char* n, int count, const T* v, char type) {
  if (!h) return ofx::kStatErrBadHandle;
  return PS(h)->with(n, type, [&](Prop& p) { vec<T>(p).assign(v, v + count); return ofx::kStatOK; }, true);
}
template <class T> OfxStatus get1(OfxPropertySetHandle h, const char* n, int idx, T* v, char type) {
  if (!h) return ofx::kStatErrBadHandle;
  return PS(h)->with(n, type, [&](Prop& p) {
    auto& a = vec<T>(p);
    if (idx < 0 || idx >= int(a.size())) return ofx::kStatErrBadIndex;
    *v = a[idx];
    return ofx::kStatOK;
  }, false);
}
template <class T> OfxStatus getN(OfxPropertySetHandle h, const char* n, int count, T* v, char type) {
  if (!h) return ofx::kStatErrBadHandle;
  return PS(h)->with(n, type, [&](Prop& p) {
    auto& a = vec<T>(p);
    if (count > int(a.size())) return ofx::kStatErrBadIndex;
    for (int i = 0; i < count; ++i) v[i] = a[i];
    return ofx::kStatOK;
  }, false);
}

OfxStatus propSetString(OfxPropertySetHandle h, const char* n, int idx, const char* v) {
  if (!h || !v) return ofx::kStatErrBadHandle;
  return PS(h)->with(n, 's', [&](Prop& p) {
    if (idx < 0) return ofx::kStatErrBadIndex;
    if (int(p.s.size()) <= idx) p.s.resize(idx + 1);
    p.s[idx] = v;
    return ofx::kStatOK;
  }, true);
}
OfxStatus propSetStringN(OfxPropertySetHandle h, const char* n, int count, const char* const* v) {
  if (!h) return ofx::kStatErrBadHandle;
  return PS(h)->with(n, 's', [&](Prop& p) { p.s.assign(v, v + count); return ofx::kStatOK; }, true);
}
OfxStatus propGetString(OfxPropertySetHandle h, const char* n, int idx, char** v) {
  if (!h) return ofx::kStatErrBadHandle;
  return PS(h)->with(n, 's', [&](Prop& p) {
    if (idx < 0 || idx >= int(p.s.size())) return ofx::kStatErrBadIndex;
    *v = const_cast<char*>(p.s[idx].c_str());
    return ofx::kStatOK;
  }, false);
}
OfxStatus propGetStringN(OfxPropertySetHandle h, const char* n, int count, char** v) {
  for (int i = 0; i < count; ++i) {
    OfxStatus st = propGetString(h, n, i, &v[i]);
    if (st != ofx::kStatOK) return st;
  }
  return ofx::kStatOK;
}
OfxStatus propReset(OfxPropertySetHandle, const char*) { return ofx::kStatOK; }
OfxStatus propGetDimension(OfxPropertySetHandle h, const char* n, int* count) {
  if (!h) return ofx::kStatErrBadHandle;
  std::lock_guard<std::mutex> lock(PS(h)->mu);
  auto it = PS(h)->props.find(n);
  if (it == PS(h)->props.end()) return ofx::kStatErrUnknown;
  const Prop& p = it->second;
  *count = int(p.type == 'i' ? p.i.size() : p.type == 'd' ? p.d.size() : p.type == 's' ? p.s.size() : p.p.size());
  return ofx::kStatOK;
}

}  // namespace

ofx::PropertySuiteV1 g_prop_suite = {
    [](OfxPropertySetHandle h, const char* n, int i, void* v) { return set1<void*>(h, n, i, v, 'p'); },
    propSetString,
    [](OfxPropertySetHandle h, const char* n, int i, double v) { return set1<double>(h, n, i, v, 'd'); },
    [](OfxPropertySetHandle h, const char* n, int i, int v) { return set1<int>(h, n, i, v, 'i'); },
    [](OfxPropertySetHandle h, const char* n, int c, void* const* v) { return setN<void*>(h, n, c, v, 'p'); },
    propSetStringN,
    [](OfxPropertySetHandle h, const char* n, int c, const double* v) { return setN<double>(h, n, c, v, 'd'); },
    [](OfxPropertySetHandle h, const char* n, int c, const int* v) { return setN<int>(h, n, c, v, 'i'); },
    [](OfxPropertySetHandle h, const char* n, int i, void** v) { return get1<void*>(h, n, i, v, 'p'); },
    propGetString,
    [](OfxPropertySetHandle h, const char* n, int i, double* v) { return get1<double>(h, n, i, v, 'd'); },
    [](OfxPropertySetHandle h, const char* n, int i, int* v) { return get1<int>(h, n, i, v, 'i'); },
    [](OfxPropertySetHandle h, const char* n, int c, void** v) { return getN<void*>(h, n, c, v, 'p'); },
    propGetStringN,
    [](OfxPropertySetHandle h, const char* n, int c, double* v) { return getN<double>(h, n, c, v, 'd'); },
    [](OfxPropertySetHandle h, const char* n, int c, int* v) { return getN<int>(h, n, c, v, 'i'); },
    propReset,
    propGetDimension,
};

}  // namespace testhost
