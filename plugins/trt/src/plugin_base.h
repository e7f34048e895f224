// What the three algm plugins share: the IPluginV3 plumbing, version, namespace and error reporting.
#pragma once

#include "algm/contract.h"
#include "algm/kernels.h"

#include <NvInferRuntime.h>

namespace algm::trt
{

// Registry keys: the ONNX nodes carry plugin_version and plugin_namespace (docs/plugin-ops.md).
using contract::kPluginNamespace;
using contract::kPluginVersion;

// One object implements all three capability interfaces, as TensorRT expects of a plugin used for
// building (core + build + runtime) and for running a deserialized engine (core + runtime).
class PluginBase : public nvinfer1::IPluginV3,
                   public nvinfer1::IPluginV3OneCore,
                   public nvinfer1::IPluginV3OneBuild,
                   public nvinfer1::IPluginV3OneRuntime
{
public:
    nvinfer1::IPluginCapability* getCapabilityInterface(nvinfer1::PluginCapabilityType type) noexcept override;

    char const* getPluginVersion() const noexcept override;
    char const* getPluginNamespace() const noexcept override;

    // The plugins hold no per-context resources: a context gets a plain clone.
    nvinfer1::IPluginV3* attachToContext(nvinfer1::IPluginResourceContext* context) noexcept override;

protected:
    // Logs "algm::<plugin name>: <message>", printf-style.
    void reportError(char const* format, ...) const noexcept __attribute__((format(printf, 2, 3)));

    // 0 for a successful kernel launch; otherwise reports the status and returns -1 (TensorRT then fails
    // the inference and reports it through its error recorder).
    int32_t launchResult(algm::Status status) const noexcept;
};

} // namespace algm::trt
