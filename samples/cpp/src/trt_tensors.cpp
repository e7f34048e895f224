#include "trt_tensors.h"

#include <stdexcept>

namespace sample
{

size_t elementSize(nvinfer1::DataType type)
{
    switch (type)
    {
    case nvinfer1::DataType::kINT64: return 8;
    case nvinfer1::DataType::kFLOAT:
    case nvinfer1::DataType::kINT32: return 4;
    case nvinfer1::DataType::kHALF:
    case nvinfer1::DataType::kBF16: return 2;
    case nvinfer1::DataType::kINT8:
    case nvinfer1::DataType::kUINT8:
    case nvinfer1::DataType::kBOOL:
    case nvinfer1::DataType::kFP8: return 1;
    default: throw std::runtime_error("a tensor has a data type this sample does not handle");
    }
}

int64_t volume(nvinfer1::Dims const& dims)
{
    int64_t count = 1;
    for (int32_t i = 0; i < dims.nbDims; ++i)
    {
        if (dims.d[i] < 0)
        {
            return -1;
        }
        count *= dims.d[i];
    }
    return count;
}

size_t hostBytes(nvinfer1::Dims const& shape, nvinfer1::DataType type, bool hasData, std::string const& name)
{
    int64_t const count = volume(shape);
    if (!hasData || count < 0)
    {
        throw std::runtime_error("output '" + name + "' has no data yet: read outputs after a run");
    }
    return static_cast<size_t>(count) * elementSize(type);
}

} // namespace sample
