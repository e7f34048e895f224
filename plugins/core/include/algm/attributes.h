// The node attributes of LocalMerge and GlobalMerge and their one validation, shared by both front ends: the
// TensorRT creators (plugins/trt, fields read by FieldReader) and the ONNX Runtime custom ops (plugins/ort).
// Names and the size_dtype codes come from the op contract (algm/contract.h, algm_export/ops_contract.json).
// Values are held as int64 (an ONNX INT attribute; TensorRT passes kINT32 or kINT64) and narrowed to the
// kernels' int32 only after validate() accepted them.
#pragma once

#include "algm/contract.h"

#include <cstdint>
#include <string>

namespace algm::attributes
{

// The batch rule: 1 per-image merging, 0 the published batch minimum (also when the attribute is absent:
// graphs exported before it existed).
inline constexpr int64_t kBatchRuleDefault = 0;

struct LocalMerge
{
    int64_t gridH{};
    int64_t gridW{};
    int64_t windowH{};
    int64_t windowW{};
    float threshold{};
    int64_t perImage{kBatchRuleDefault};
    int64_t sizeDtype{contract::kSizeDtypeDefault}; // ONNX TensorProto code: INT32 (6) or INT64 (7)
};

struct GlobalMerge
{
    int64_t layerNumber{};
    int64_t perImage{kBatchRuleDefault};
    int64_t sizeDtype{contract::kSizeDtypeDefault};
};

// "" when the attributes are valid, else the first problem in one line naming the attribute, e.g.
// "'grid_h' = 0 is out of range [1, 2147483647]", "'threshold' is not a finite number",
// "windows of 3x2 patches do not tile the 32x32 grid", "a window must hold at least 2 patches".
std::string validate(LocalMerge const& attributes);
std::string validate(GlobalMerge const& attributes);

} // namespace algm::attributes
