// algm::LocalMerge (CLAP): merges the most similar windows of the patch grid. docs/plugin-ops.md.
#pragma once

#include <NvInferRuntime.h>

namespace algm::trt
{

// The creator of LocalMerge plugins (the plugin class is private to local_merge_plugin.cpp). Constructed on the
// first call (may throw std::bad_alloc then) and alive until the library is unloaded.
nvinfer1::IPluginCreatorV3One& localMergeCreator();

} // namespace algm::trt
