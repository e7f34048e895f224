// The parts of the host test, one file each; plugin_host_test.cpp runs them in this order.
#pragma once

#include "host_support.h"

namespace algm::test
{

using GetCreators = nvinfer1::IPluginCreatorInterface* const* (*)(int32_t&);

// creators_test.cpp: what getCreators() lists (names, version, namespace) and each creator's field names.
Creators checkCreators(GetCreators getCreators);
void checkFieldNames(Creators const& creators);
// --print-fields: each creator's field names and types, one "Op field TYPE" line each (for the Python test that
// compares them with the ONNX node contract).
void printFields(Creators const& creators);

// attributes_test.cpp: createPlugin's validation of the fields (one table of refused fields), the size tensor
// type and the batch rule of both merges.
void checkSizeTensorTypes(Creators const& creators);
void checkBatchRule(Creators const& creators);
void checkFieldValidation(Creators const& creators);

// local_merge_test.cpp, global_merge_test.cpp, unmerge_test.cpp: each plugin's build-time methods (types,
// formats, shapes, workspace), runtime shape checks and the serialization round trip.
void checkLocalMerge(nvinfer1::IPluginCreatorV3One& creator);
void checkGlobalMerge(nvinfer1::IPluginCreatorV3One& creator);
void checkUnmerge(nvinfer1::IPluginCreatorV3One& creator);

} // namespace algm::test
