// ipfacediff's own declarations of the part of the OpenFX C API it uses.
//
// In: nothing (a header). Out: the ABI types (handles, OfxHost, OfxPlugin, rectangles),
// the host suites the plugin calls (property, image effect, parameter, message V1/V2) with
// their function pointers in ABI order, and the action, property, value and status names as
// string/int constants. Shared by the plugin (src/plugin.cpp) and the test host
// (tests/host/). Written for this project from the OpenFX specification's
// interface facts (names, values, layouts); it is not a copy of the OpenFX headers and declares
// only what ipfacediff needs. Everything is in namespace `ofx` except the two exported entry
// points, which hosts look up by their C names.
#pragma once

#include <cstddef>

extern "C" {
typedef struct OfxPropertySetStruct* OfxPropertySetHandle;
typedef struct OfxImageEffectStruct* OfxImageEffectHandle;
typedef struct OfxImageClipStruct* OfxImageClipHandle;
typedef struct OfxImageMemoryStruct* OfxImageMemoryHandle;
typedef struct OfxParamStruct* OfxParamHandle;
typedef struct OfxParamSetStruct* OfxParamSetHandle;
typedef int OfxStatus;
typedef double OfxTime;
}

namespace ofx {

struct RectI { int x1, y1, x2, y2; };
struct RectD { double x1, y1, x2, y2; };
struct RangeD { double min, max; };

// The bootstrap structure a host hands to OfxPlugin::setHost.
struct Host {
  OfxPropertySetHandle host;
  const void* (*fetchSuite)(OfxPropertySetHandle host, const char* suiteName, int suiteVersion);
};

using EntryPoint = OfxStatus(const char* action, const void* handle, OfxPropertySetHandle inArgs,
                             OfxPropertySetHandle outArgs);

// What OfxGetPlugin(n) returns.
struct Plugin {
  const char* pluginApi;
  int apiVersion;
  const char* pluginIdentifier;
  unsigned int pluginVersionMajor;
  unsigned int pluginVersionMinor;
  void (*setHost)(Host* host);
  EntryPoint* mainEntry;
};

// --- suites (function pointers in ABI order) ----------------------------------------------
struct PropertySuiteV1 {
  OfxStatus (*propSetPointer)(OfxPropertySetHandle, const char* property, int index, void* value);
  OfxStatus (*propSetString)(OfxPropertySetHandle, const char* property, int index, const char* value);
  OfxStatus (*propSetDouble)(OfxPropertySetHandle, const char* property, int index, double value);
  OfxStatus (*propSetInt)(OfxPropertySetHandle, const char* property, int index, int value);
  OfxStatus (*propSetPointerN)(OfxPropertySetHandle, const char* property, int count, void* const* value);
  OfxStatus (*propSetStringN)(OfxPropertySetHandle, const char* property, int count, const char* const* value);
  OfxStatus (*propSetDoubleN)(OfxPropertySetHandle, const char* property, int count, const double* value);
  OfxStatus (*propSetIntN)(OfxPropertySetHandle, const char* property, int count, const int* value);
  OfxStatus (*propGetPointer)(OfxPropertySetHandle, const char* property, int index, void** value);
  OfxStatus (*propGetString)(OfxPropertySetHandle, const char* property, int index, char** value);
  OfxStatus (*propGetDouble)(OfxPropertySetHandle, const char* property, int index, double* value);
  OfxStatus (*propGetInt)(OfxPropertySetHandle, const char* property, int index, int* value);
  OfxStatus (*propGetPointerN)(OfxPropertySetHandle, const char* property, int count, void** value);
  OfxStatus (*propGetStringN)(OfxPropertySetHandle, const char* property, int count, char** value);
  OfxStatus (*propGetDoubleN)(OfxPropertySetHandle, const char* property, int count, double* value);
  OfxStatus (*propGetIntN)(OfxPropertySetHandle, const char* property, int count, int* value);
  OfxStatus (*propReset)(OfxPropertySetHandle, const char* property);
  OfxStatus (*propGetDimension)(OfxPropertySetHandle, const char* property, int* count);
};

struct ImageEffectSuiteV1 {
  OfxStatus (*getPropertySet)(OfxImageEffectHandle, OfxPropertySetHandle* propHandle);
  OfxStatus (*getParamSet)(OfxImageEffectHandle, OfxParamSetHandle* paramSet);
  OfxStatus (*clipDefine)(OfxImageEffectHandle, const char* name, OfxPropertySetHandle* propertySet);
  OfxStatus (*clipGetHandle)(OfxImageEffectHandle, const char* name, OfxImageClipHandle* clip,
                             OfxPropertySetHandle* propertySet);
  OfxStatus (*clipGetPropertySet)(OfxImageClipHandle, OfxPropertySetHandle* propHandle);
  OfxStatus (*clipGetImage)(OfxImageClipHandle, OfxTime time, const RectD* region, OfxPropertySetHandle* image);
  OfxStatus (*clipReleaseImage)(OfxPropertySetHandle image);
  OfxStatus (*clipGetRegionOfDefinition)(OfxImageClipHandle, OfxTime time, RectD* bounds);
  int (*abort)(OfxImageEffectHandle);
  OfxStatus (*imageMemoryAlloc)(OfxImageEffectHandle, size_t nBytes, OfxImageMemoryHandle* memory);
  OfxStatus (*imageMemoryFree)(OfxImageMemoryHandle);
  OfxStatus (*imageMemoryLock)(OfxImageMemoryHandle, void** returnedPtr);
  OfxStatus (*imageMemoryUnlock)(OfxImageMemoryHandle);
};

// Values are passed through C varargs: int for integer/boolean/choice, double for double,
// const char* for strings (paramGetValue takes pointers to those).
struct ParameterSuiteV1 {
  OfxStatus (*paramDefine)(OfxParamSetHandle, const char* paramType, const char* name,
                           OfxPropertySetHandle* propertySet);
  OfxStatus (*paramGetHandle)(OfxParamSetHandle, const char* name, OfxParamHandle* param,
                              OfxPropertySetHandle* propertySet);
  OfxStatus (*paramSetGetPropertySet)(OfxParamSetHandle, OfxPropertySetHandle* propHandle);
  OfxStatus (*paramGetPropertySet)(OfxParamHandle, OfxPropertySetHandle* propHandle);
  OfxStatus (*paramGetValue)(OfxParamHandle, ...);
  OfxStatus (*paramGetValueAtTime)(OfxParamHandle, OfxTime time, ...);
  OfxStatus (*paramGetDerivative)(OfxParamHandle, OfxTime time, ...);
  OfxStatus (*paramGetIntegral)(OfxParamHandle, OfxTime time1, OfxTime time2, ...);
  OfxStatus (*paramSetValue)(OfxParamHandle, ...);
  OfxStatus (*paramSetValueAtTime)(OfxParamHandle, OfxTime time, ...);
  OfxStatus (*paramGetNumKeys)(OfxParamHandle, unsigned int* numberOfKeys);
  OfxStatus (*paramGetKeyTime)(OfxParamHandle, unsigned int nthKey, OfxTime* time);
  OfxStatus (*paramGetKeyIndex)(OfxParamHandle, OfxTime time, int direction, int* index);
  OfxStatus (*paramDeleteKey)(OfxParamHandle, OfxTime time);
  OfxStatus (*paramDeleteAllKeys)(OfxParamHandle);
  OfxStatus (*paramCopy)(OfxParamHandle to, OfxParamHandle from, OfxTime dstOffset, const RangeD* frameRange);
  OfxStatus (*paramEditBegin)(OfxParamSetHandle, const char* name);
  OfxStatus (*paramEditEnd)(OfxParamSetHandle);
};

struct MessageSuiteV1 {
  OfxStatus (*message)(void* handle, const char* messageType, const char* messageId, const char* format, ...);
};

// Version 2 starts with version 1's function (hosts may return one struct for both).
struct MessageSuiteV2 {
  OfxStatus (*message)(void* handle, const char* messageType, const char* messageId, const char* format, ...);
  OfxStatus (*setPersistentMessage)(void* handle, const char* messageType, const char* messageId,
                                    const char* format, ...);
  OfxStatus (*clearPersistentMessage)(void* handle);
};

// --- status codes --------------------------------------------------------------------------
constexpr OfxStatus kStatOK = 0;
constexpr OfxStatus kStatFailed = 1;
constexpr OfxStatus kStatErrFatal = 2;
constexpr OfxStatus kStatErrUnknown = 3;
constexpr OfxStatus kStatErrMissingHostFeature = 4;
constexpr OfxStatus kStatErrUnsupported = 5;
constexpr OfxStatus kStatErrExists = 6;
constexpr OfxStatus kStatErrFormat = 7;
constexpr OfxStatus kStatErrMemory = 8;
constexpr OfxStatus kStatErrBadHandle = 9;
constexpr OfxStatus kStatErrBadIndex = 10;
constexpr OfxStatus kStatErrValue = 11;
constexpr OfxStatus kStatReplyYes = 12;
constexpr OfxStatus kStatReplyNo = 13;
constexpr OfxStatus kStatReplyDefault = 14;
constexpr OfxStatus kStatErrImageFormat = 1000;

// --- suite names, API ----------------------------------------------------------------------
constexpr const char* kPropertySuite = "OfxPropertySuite";
constexpr const char* kImageEffectSuite = "OfxImageEffectSuite";
constexpr const char* kParameterSuite = "OfxParameterSuite";
constexpr const char* kMessageSuite = "OfxMessageSuite";
constexpr const char* kImageEffectPluginApi = "OfxImageEffectPluginAPI";
constexpr int kImageEffectPluginApiVersion = 1;

// --- actions -------------------------------------------------------------------------------
constexpr const char* kActionLoad = "OfxActionLoad";
constexpr const char* kActionUnload = "OfxActionUnload";
constexpr const char* kActionDescribe = "OfxActionDescribe";
constexpr const char* kActionCreateInstance = "OfxActionCreateInstance";
constexpr const char* kActionDestroyInstance = "OfxActionDestroyInstance";
constexpr const char* kActionPurgeCaches = "OfxActionPurgeCaches";
constexpr const char* kActionSyncPrivateData = "OfxActionSyncPrivateData";
constexpr const char* kActionInstanceChanged = "OfxActionInstanceChanged";
constexpr const char* kActionBeginInstanceChanged = "OfxActionBeginInstanceChanged";
constexpr const char* kActionEndInstanceChanged = "OfxActionEndInstanceChanged";
constexpr const char* kActionBeginInstanceEdit = "OfxActionBeginInstanceEdit";
constexpr const char* kActionEndInstanceEdit = "OfxActionEndInstanceEdit";
constexpr const char* kImageEffectActionDescribeInContext = "OfxImageEffectActionDescribeInContext";
constexpr const char* kImageEffectActionRender = "OfxImageEffectActionRender";
constexpr const char* kImageEffectActionBeginSequenceRender = "OfxImageEffectActionBeginSequenceRender";
constexpr const char* kImageEffectActionEndSequenceRender = "OfxImageEffectActionEndSequenceRender";
constexpr const char* kImageEffectActionGetClipPreferences = "OfxImageEffectActionGetClipPreferences";
constexpr const char* kImageEffectActionIsIdentity = "OfxImageEffectActionIsIdentity";

// --- general properties --------------------------------------------------------------------
constexpr const char* kPropType = "OfxPropType";
constexpr const char* kPropName = "OfxPropName";
constexpr const char* kPropLabel = "OfxPropLabel";
constexpr const char* kPropShortLabel = "OfxPropShortLabel";
constexpr const char* kPropLongLabel = "OfxPropLongLabel";
constexpr const char* kPropTime = "OfxPropTime";
constexpr const char* kPropVersion = "OfxPropVersion";
constexpr const char* kPropVersionLabel = "OfxPropVersionLabel";
constexpr const char* kPropPluginDescription = "OfxPropPluginDescription";
constexpr const char* kPropInstanceData = "OfxPropInstanceData";
constexpr const char* kPropChangeReason = "OfxPropChangeReason";
constexpr const char* kPropAPIVersion = "OfxPropAPIVersion";
constexpr const char* kPropParamSetNeedsSyncing = "OfxPropParamSetNeedsSyncing";
constexpr const char* kChangeUserEdited = "OfxChangeUserEdited";
constexpr const char* kChangePluginEdited = "OfxChangePluginEdited";
constexpr const char* kChangeTime = "OfxChangeTime";
constexpr const char* kTypeParameter = "OfxTypeParameter";
constexpr const char* kTypeClip = "OfxTypeClip";

// --- image effect properties and values ------------------------------------------------------
constexpr const char* kImageEffectPropSupportedContexts = "OfxImageEffectPropSupportedContexts";
constexpr const char* kImageEffectPropContext = "OfxImageEffectPropContext";
constexpr const char* kImageEffectContextFilter = "OfxImageEffectContextFilter";
constexpr const char* kImageEffectContextGeneral = "OfxImageEffectContextGeneral";
constexpr const char* kImageEffectPluginPropGrouping = "OfxImageEffectPluginPropGrouping";
constexpr const char* kImageEffectPluginPropSingleInstance = "OfxImageEffectPluginPropSingleInstance";
constexpr const char* kImageEffectPluginRenderThreadSafety = "OfxImageEffectPluginRenderThreadSafety";
constexpr const char* kImageEffectRenderUnsafe = "OfxImageEffectRenderUnsafe";
constexpr const char* kImageEffectRenderInstanceSafe = "OfxImageEffectRenderInstanceSafe";
constexpr const char* kImageEffectRenderFullySafe = "OfxImageEffectRenderFullySafe";
constexpr const char* kImageEffectPluginPropHostFrameThreading = "OfxImageEffectPluginPropHostFrameThreading";
constexpr const char* kImageEffectPropSupportsMultipleClipDepths = "OfxImageEffectPropMultipleClipDepths";
constexpr const char* kImageEffectPropSupportsMultiResolution = "OfxImageEffectPropSupportsMultiResolution";
constexpr const char* kImageEffectPropSupportsTiles = "OfxImageEffectPropSupportsTiles";
constexpr const char* kImageEffectPropTemporalClipAccess = "OfxImageEffectPropTemporalClipAccess";
constexpr const char* kImageEffectPropSupportedPixelDepths = "OfxImageEffectPropSupportedPixelDepths";
constexpr const char* kImageEffectPropSupportedComponents = "OfxImageEffectPropSupportedComponents";
constexpr const char* kImageEffectPropPixelDepth = "OfxImageEffectPropPixelDepth";
constexpr const char* kImageEffectPropComponents = "OfxImageEffectPropComponents";
constexpr const char* kImageEffectPropPreMultiplication = "OfxImageEffectPropPreMultiplication";
constexpr const char* kImageEffectPropFrameRange = "OfxImageEffectPropFrameRange";
constexpr const char* kImageEffectPropRenderScale = "OfxImageEffectPropRenderScale";
constexpr const char* kImageEffectPropRenderWindow = "OfxImageEffectPropRenderWindow";
constexpr const char* kImageEffectPropFieldToRender = "OfxImageEffectPropFieldToRender";
constexpr const char* kImageEffectPropFrameStep = "OfxImageEffectPropFrameStep";
constexpr const char* kImageEffectPropSequentialRenderStatus = "OfxImageEffectPropSequentialRenderStatus";
constexpr const char* kImageEffectPropInteractiveRenderStatus = "OfxImageEffectPropInteractiveRenderStatus";
constexpr const char* kImageEffectInstancePropSequentialRender = "OfxImageEffectInstancePropSequentialRender";
constexpr const char* kImageEffectOutputClipName = "Output";
constexpr const char* kImageEffectSimpleSourceClipName = "Source";
constexpr const char* kImageClipPropConnected = "OfxImageClipPropConnected";
constexpr const char* kImageClipPropOptional = "OfxImageClipPropOptional";
constexpr const char* kImagePropData = "OfxImagePropData";
constexpr const char* kImagePropBounds = "OfxImagePropBounds";
constexpr const char* kImagePropRegionOfDefinition = "OfxImagePropRegionOfDefinition";
constexpr const char* kImagePropRowBytes = "OfxImagePropRowBytes";
constexpr const char* kImagePropPixelAspectRatio = "OfxImagePropPixelAspectRatio";
constexpr const char* kImageComponentRGBA = "OfxImageComponentRGBA";
constexpr const char* kImageComponentRGB = "OfxImageComponentRGB";
constexpr const char* kImageComponentAlpha = "OfxImageComponentAlpha";
constexpr const char* kImageComponentNone = "OfxImageComponentNone";
constexpr const char* kBitDepthByte = "OfxBitDepthByte";
constexpr const char* kBitDepthShort = "OfxBitDepthShort";
constexpr const char* kBitDepthHalf = "OfxBitDepthHalf";
constexpr const char* kBitDepthFloat = "OfxBitDepthFloat";
constexpr const char* kBitDepthNone = "OfxBitDepthNone";
constexpr const char* kImageOpaque = "OfxImageOpaque";
constexpr const char* kImagePreMultiplied = "OfxImageAlphaPremultiplied";
constexpr const char* kImageUnPreMultiplied = "OfxImageAlphaUnPremultiplied";

// --- parameters ----------------------------------------------------------------------------
constexpr const char* kParamTypeInteger = "OfxParamTypeInteger";
constexpr const char* kParamTypeDouble = "OfxParamTypeDouble";
constexpr const char* kParamTypeBoolean = "OfxParamTypeBoolean";
constexpr const char* kParamTypeChoice = "OfxParamTypeChoice";
constexpr const char* kParamTypeString = "OfxParamTypeString";
constexpr const char* kParamTypeGroup = "OfxParamTypeGroup";
constexpr const char* kParamTypePushButton = "OfxParamTypePushButton";
constexpr const char* kParamPropType = "OfxParamPropType";
constexpr const char* kParamPropDefault = "OfxParamPropDefault";
constexpr const char* kParamPropAnimates = "OfxParamPropAnimates";
constexpr const char* kParamPropCanUndo = "OfxParamPropCanUndo";
constexpr const char* kParamPropPersistant = "OfxParamPropPersistant";
constexpr const char* kParamPropEvaluateOnChange = "OfxParamPropEvaluateOnChange";
constexpr const char* kParamPropSecret = "OfxParamPropSecret";
constexpr const char* kParamPropEnabled = "OfxParamPropEnabled";
constexpr const char* kParamPropHint = "OfxParamPropHint";
constexpr const char* kParamPropParent = "OfxParamPropParent";
constexpr const char* kParamPropScriptName = "OfxParamPropScriptName";
constexpr const char* kParamPropMin = "OfxParamPropMin";
constexpr const char* kParamPropMax = "OfxParamPropMax";
constexpr const char* kParamPropDisplayMin = "OfxParamPropDisplayMin";
constexpr const char* kParamPropDisplayMax = "OfxParamPropDisplayMax";
constexpr const char* kParamPropIncrement = "OfxParamPropIncrement";
constexpr const char* kParamPropDigits = "OfxParamPropDigits";
constexpr const char* kParamPropChoiceOption = "OfxParamPropChoiceOption";
constexpr const char* kParamPropStringMode = "OfxParamPropStringMode";
constexpr const char* kParamStringIsSingleLine = "OfxParamStringIsSingleLine";
constexpr const char* kParamStringIsMultiLine = "OfxParamStringIsMultiLine";
constexpr const char* kParamStringIsLabel = "OfxParamStringIsLabel";

// --- messages ------------------------------------------------------------------------------
constexpr const char* kMessageError = "OfxMessageError";
constexpr const char* kMessageWarning = "OfxMessageWarning";
constexpr const char* kMessageMessage = "OfxMessageMessage";
constexpr const char* kMessageLog = "OfxMessageLog";

}  // namespace ofx

// The two symbols every OFX binary exports (the host finds them with dlsym/GetProcAddress).
#if defined(_WIN32)
#define IPFD_OFX_EXPORT extern "C" __declspec(dllexport)
#else
#define IPFD_OFX_EXPORT extern "C" __attribute__((visibility("default")))
#endif
