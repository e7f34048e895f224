// Checks and conversions of plugin tensor descriptions shared by the algm plugins.
#pragma once

#include "algm/kernels.h"

#include <NvInferRuntime.h>

#include <array>
#include <cstddef>
#include <cstdint>

namespace algm::trt
{

// The activation types the kernels take: FP32 and FP16 (whatever precision the strongly typed graph carries).
bool isActivationType(nvinfer1::DataType type) noexcept;

// The kernels' name of an activation type. Precondition: isActivationType(type).
algm::DataType toKernelType(nvinfer1::DataType type) noexcept;

// True when `desc` is row-major (kLINEAR) and of `type`.
bool isLinearOf(nvinfer1::PluginTensorDesc const& desc, nvinfer1::DataType type) noexcept;

// Narrows a concrete extent to the kernels' int32; false when negative (unknown) or too large.
bool toExtent(int64_t value, int32_t& extent) noexcept;

// For messages: "FP32", "FP16", "INT32", ...
char const* typeName(nvinfer1::DataType type) noexcept;

// For messages: "[2, 1025, 384]" (truncated past the buffer).
struct DimsText
{
    char text[128];
};
DimsText describe(nvinfer1::Dims const& dims) noexcept;

inline nvinfer1::Dims const& dimsOf(nvinfer1::PluginTensorDesc const& desc) noexcept
{
    return desc.dims;
}

inline nvinfer1::Dims const& dimsOf(nvinfer1::DynamicPluginTensorDesc const& desc) noexcept
{
    return desc.desc.dims;
}

inline nvinfer1::DimsExprs const& dimsOf(nvinfer1::DimsExprs const& exprs) noexcept
{
    return exprs;
}

// True when there are exactly N tensors (descriptions or shape expressions) and tensor i has rank ranks[i].
template <typename Desc, std::size_t N>
bool ranksAre(Desc const* descs, int32_t count, std::array<int32_t, N> const& ranks) noexcept
{
    if (count != static_cast<int32_t>(N) || (N > 0 && descs == nullptr))
    {
        return false;
    }
    for (std::size_t i = 0; i < N; ++i)
    {
        if (dimsOf(descs[i]).nbDims != ranks[i])
        {
            return false;
        }
    }
    return true;
}

} // namespace algm::trt
