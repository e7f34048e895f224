#include "plugin_base.h"

#include "logging.h"

#include <cstdarg>
#include <cstdio>

namespace algm::trt
{

nvinfer1::IPluginCapability* PluginBase::getCapabilityInterface(nvinfer1::PluginCapabilityType type) noexcept
{
    // The casts pick the base subobject TensorRT will call through; returning `this` unadjusted would not work.
    switch (type)
    {
    case nvinfer1::PluginCapabilityType::kCORE: return static_cast<nvinfer1::IPluginV3OneCore*>(this);
    case nvinfer1::PluginCapabilityType::kBUILD: return static_cast<nvinfer1::IPluginV3OneBuild*>(this);
    case nvinfer1::PluginCapabilityType::kRUNTIME: return static_cast<nvinfer1::IPluginV3OneRuntime*>(this);
    }
    return nullptr;
}

char const* PluginBase::getPluginVersion() const noexcept
{
    return kPluginVersion;
}

char const* PluginBase::getPluginNamespace() const noexcept
{
    return kPluginNamespace;
}

nvinfer1::IPluginV3* PluginBase::attachToContext(nvinfer1::IPluginResourceContext* /*context*/) noexcept
{
    return clone();
}

void PluginBase::reportError(char const* format, ...) const noexcept
{
    char message[768];
    va_list arguments;
    va_start(arguments, format);
    std::vsnprintf(message, sizeof(message), format, arguments);
    va_end(arguments);
    logError("%s::%s: %s", kPluginNamespace, getPluginName(), message);
}

int32_t PluginBase::launchResult(algm::Status status) const noexcept
{
    switch (status)
    {
    case algm::kSuccess: return 0;
    case algm::kInvalidArgument: reportError("the kernel rejected its arguments"); break;
    case algm::kCudaError: reportError("a CUDA call of the kernel failed"); break;
    default: reportError("the kernel returned unknown status %d", static_cast<int>(status)); break;
    }
    return -1;
}

} // namespace algm::trt
