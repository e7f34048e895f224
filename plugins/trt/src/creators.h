// The creators of all algm plugins, shared by both library flavours.
#pragma once

#include <NvInferRuntime.h>

#include <array>

namespace algm::trt
{

inline constexpr int kCreatorCount = 3;

// LocalMerge, GlobalMerge, Unmerge. Created on first use (may throw std::bad_alloc then) and alive until
// the library is unloaded.
std::array<nvinfer1::IPluginCreatorInterface*, kCreatorCount> const& allCreators();

} // namespace algm::trt
