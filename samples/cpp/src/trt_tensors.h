// Sizes of TensorRT tensors on the host (no TensorRT or CUDA library needed: unit-tested without a GPU).
#pragma once

#include <NvInferRuntime.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace sample
{

// Bytes of one element of `type`; throws std::runtime_error for types this sample does not handle.
size_t elementSize(nvinfer1::DataType type);

// Elements of a shape; -1 when an extent is still unknown (data-dependent).
int64_t volume(nvinfer1::Dims const& dims);

// Bytes to download output `name` of `shape` and `type`. Throws std::runtime_error, naming the output, when it
// has no data yet (`hasData` false) or an extent is unknown: read outputs after a run.
size_t hostBytes(nvinfer1::Dims const& shape, nvinfer1::DataType type, bool hasData, std::string const& name);

} // namespace sample
