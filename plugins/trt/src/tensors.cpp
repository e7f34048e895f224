#include "tensors.h"

#include <algorithm>
#include <cstdio>
#include <limits>

namespace algm::trt
{

bool isActivationType(nvinfer1::DataType type) noexcept
{
    return type == nvinfer1::DataType::kFLOAT || type == nvinfer1::DataType::kHALF;
}

algm::DataType toKernelType(nvinfer1::DataType type) noexcept
{
    return type == nvinfer1::DataType::kHALF ? algm::DataType::kFloat16 : algm::DataType::kFloat32;
}

bool isLinearOf(nvinfer1::PluginTensorDesc const& desc, nvinfer1::DataType type) noexcept
{
    return desc.format == nvinfer1::TensorFormat::kLINEAR && desc.type == type;
}

bool toExtent(int64_t value, int32_t& extent) noexcept
{
    if (value < 0 || value > std::numeric_limits<int32_t>::max())
    {
        return false;
    }
    extent = static_cast<int32_t>(value);
    return true;
}

char const* typeName(nvinfer1::DataType type) noexcept
{
    switch (type)
    {
    case nvinfer1::DataType::kFLOAT: return "FP32";
    case nvinfer1::DataType::kHALF: return "FP16";
    case nvinfer1::DataType::kINT32: return "INT32";
    case nvinfer1::DataType::kINT64: return "INT64";
    case nvinfer1::DataType::kINT8: return "INT8";
    case nvinfer1::DataType::kBOOL: return "BOOL";
    case nvinfer1::DataType::kUINT8: return "UINT8";
    case nvinfer1::DataType::kBF16: return "BF16";
    default: return "another type";
    }
}

DimsText describe(nvinfer1::Dims const& dims) noexcept
{
    DimsText result{};
    std::size_t const size = sizeof(result.text);
    std::size_t used = 0;
    // snprintf returns the length it wanted to write: stop appending once the buffer is full.
    auto advance
        = [&](int written) { used = written < 0 ? size : std::min(size, used + static_cast<std::size_t>(written)); };
    advance(std::snprintf(result.text, size, "["));
    for (int32_t i = 0; i < dims.nbDims && i < nvinfer1::Dims::MAX_DIMS && used < size; ++i)
    {
        advance(std::snprintf(
            result.text + used, size - used, "%s%lld", i == 0 ? "" : ", ", static_cast<long long>(dims.d[i])));
    }
    if (used < size)
    {
        std::snprintf(result.text + used, size - used, "]");
    }
    return result;
}

} // namespace algm::trt
