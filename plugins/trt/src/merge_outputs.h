// The four outputs LocalMerge and GlobalMerge share (docs/plugin-ops.md):
//   0 merged [B, T', C] (token type), 1 merged_sizes [B, T'] FP32, 2 merged_token_map [B, N] INT32,
//   3 num_tokens: the 0-D size tensor holding T'.
#pragma once

#include <NvInferRuntime.h>

#include <cstdint>

namespace algm::trt
{

enum MergeOutput : int32_t
{
    kMerged = 0,
    kMergedSizes = 1,
    kMergedMap = 2,
    kNumTokens = 3,
    kMergeOutputCount = 4,
};

// The size tensor's type. NvInferRuntime.h says size tensors must be INT32, while NVIDIA's NonZero
// plugin sample (and its README: "kINT32 or kINT64") uses INT64. The ONNX contract (and the graph outputs
// built from it) use int64, so the plugins do too. Confirm on a GPU with each TensorRT version used.
inline constexpr nvinfer1::DataType kSizeTensorType = nvinfer1::DataType::kINT64;

// Writes the output types for tokens of `tokenType` into types[0..3].
void setMergeOutputTypes(nvinfer1::DataType tokenType, nvinfer1::DataType* types) noexcept;

// Whether merge output `output` (0..3) may have `desc`'s type and format, given the tokens' type.
bool supportsMergeOutput(int32_t output, nvinfer1::PluginTensorDesc const& desc, nvinfer1::DataType tokenType) noexcept;

// Writes the output shapes; `newTokens` is the expression returned by declareSizeTensor(kNumTokens, ...).
void setMergeOutputShapes(nvinfer1::DimsExprs* outputs, nvinfer1::IDimensionExpr const* batch,
    nvinfer1::IDimensionExpr const* newTokens, nvinfer1::IDimensionExpr const* channels,
    nvinfer1::IDimensionExpr const* patches) noexcept;

} // namespace algm::trt
