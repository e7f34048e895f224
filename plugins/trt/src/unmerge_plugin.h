// algm::Unmerge: spreads per-token values back onto the patch grid. docs/plugin-ops.md.
#pragma once

#include <NvInferRuntime.h>

namespace algm::trt
{

// The creator of Unmerge plugins (the plugin class is private to unmerge_plugin.cpp). Constructed on the first
// call (may throw std::bad_alloc then) and alive until the library is unloaded.
nvinfer1::IPluginCreatorV3One& unmergeCreator();

} // namespace algm::trt
