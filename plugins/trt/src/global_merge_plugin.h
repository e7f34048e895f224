// algm::GlobalMerge (GBM): bipartite merging with the adaptive threshold. docs/plugin-ops.md.
#pragma once

#include <NvInferRuntime.h>

namespace algm::trt
{

// The creator of GlobalMerge plugins (the plugin class is private to global_merge_plugin.cpp). Constructed on
// the first call (may throw std::bad_alloc then) and alive until the library is unloaded.
nvinfer1::IPluginCreatorV3One& globalMergeCreator();

} // namespace algm::trt
