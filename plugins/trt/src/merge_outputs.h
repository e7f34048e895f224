// The four outputs LocalMerge and GlobalMerge share (docs/plugin-ops.md):
//   0 merged [B, T', C] (token type), 1 merged_sizes [B, T'] FP32, 2 merged_token_map [B, N] INT32,
//   3 num_tokens: the 0-D size tensor holding T'.
#pragma once

#include "algm/contract.h"
#include "algm/kernels.h"
#include "fields.h"

#include <NvInferRuntime.h>

#include <cstddef>
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

// The size tensor's type: the optional field `size_dtype` (ONNX TensorProto code), INT32 (6) by default as
// NvInferRuntime.h requires of size tensors, or INT64 (7) as NVIDIA's NonZero sample declares it (its
// README: "kINT32 or kINT64"). The exported graphs use the default (docs/plugin-ops.md).
nvinfer1::DataType sizeTensorType(int32_t onnxDtype) noexcept;

// Workspace the plugin keeps in front of the kernels' workspace: the int64 T' the launchers write, narrowed
// into an INT32 size tensor afterwards.
inline constexpr size_t kCountScratchBytes = 256;

// Launches a merge whose kernels write T' as an int64 to `count`, then stores it in the size tensor
// `sizeOutput` of `sizeType`: directly for INT64, through the workspace's scratch and narrowCount for INT32.
// `launch(int64_t* count, void* kernelWorkspace)` runs the kernels. A null workspace (getWorkspaceSize returned 0
// on an error path) is refused with kInvalidArgument before any pointer arithmetic on it.
template <typename Launch>
algm::Status launchMerge(
    nvinfer1::DataType sizeType, void* sizeOutput, void* workspace, cudaStream_t stream, Launch const& launch)
{
    if (workspace == nullptr)
    {
        return algm::kInvalidArgument;
    }
    void* const kernelWorkspace = static_cast<char*>(workspace) + kCountScratchBytes;
    if (sizeType == nvinfer1::DataType::kINT64)
    {
        return launch(static_cast<int64_t*>(sizeOutput), kernelWorkspace);
    }
    auto* const count = static_cast<int64_t*>(workspace);
    algm::Status const status = launch(count, kernelWorkspace);
    return status != algm::kSuccess ? status
                                    : algm::cuda::narrowCount(count, static_cast<int32_t*>(sizeOutput), stream);
}

// Writes the output types for tokens of `tokenType` into types[0..3].
void setMergeOutputTypes(nvinfer1::DataType tokenType, nvinfer1::DataType sizeType, nvinfer1::DataType* types) noexcept;

// Whether merge output `output` (0..3) may have `desc`'s type and format, given the tokens' and size tensor's types.
bool supportsMergeOutput(int32_t output, nvinfer1::PluginTensorDesc const& desc, nvinfer1::DataType tokenType,
    nvinfer1::DataType sizeType) noexcept;

// Writes the output shapes; `newTokens` is the expression returned by declareSizeTensor(kNumTokens, ...).
void setMergeOutputShapes(nvinfer1::DimsExprs* outputs, nvinfer1::IDimensionExpr const* batch,
    nvinfer1::IDimensionExpr const* newTokens, nvinfer1::IDimensionExpr const* channels,
    nvinfer1::IDimensionExpr const* patches) noexcept;

} // namespace algm::trt
