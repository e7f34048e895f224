// The creator of one algm plugin, as TensorRT's registry and ONNX parser use it.
#pragma once

#include "fields.h"
#include "logging.h"
#include "plugin_base.h"

#include <NvInferRuntime.h>

#include <exception>
#include <string>

namespace algm::trt
{

// `Plugin` provides kName, Attributes, fieldNames(), parse() and a constructor from Attributes.
template <typename Plugin>
class PluginCreator final : public nvinfer1::IPluginCreatorV3One
{
public:
    PluginCreator()
    {
        mFieldNames.set(Plugin::fieldNames());
    }

    // Build phase: `fields` holds the node attributes listed by getFieldNames(). Runtime phase (engine
    // deserialization): it holds what the plugin returned from getFieldsToSerialize(). Both go through the
    // same validation; an unusable collection gives nullptr and an error message.
    nvinfer1::IPluginV3* createPlugin(char const* name, nvinfer1::PluginFieldCollection const* fields,
        nvinfer1::TensorRTPhase /*phase*/) noexcept override
    {
        char const* layer = name != nullptr ? name : "";
        try
        {
            nvinfer1::PluginFieldCollection const none{};
            std::string error;
            auto const attributes = Plugin::parse(fields != nullptr ? *fields : none, error);
            if (!attributes)
            {
                logError("%s::%s '%s': %s", kPluginNamespace, Plugin::kName, layer, error.c_str());
                return nullptr;
            }
            return new Plugin(*attributes);
        }
        catch (std::exception const& exception)
        {
            logError("%s::%s '%s': %s", kPluginNamespace, Plugin::kName, layer, exception.what());
        }
        catch (...)
        {
            logError("%s::%s '%s': unknown exception", kPluginNamespace, Plugin::kName, layer);
        }
        return nullptr;
    }

    nvinfer1::PluginFieldCollection const* getFieldNames() noexcept override
    {
        return mFieldNames.get();
    }

    char const* getPluginName() const noexcept override
    {
        return Plugin::kName;
    }

    char const* getPluginVersion() const noexcept override
    {
        return kPluginVersion;
    }

    char const* getPluginNamespace() const noexcept override
    {
        return kPluginNamespace;
    }

private:
    FieldCollection mFieldNames;
};

// The process's one creator of `Plugin`: constructed on the first call (thread-safe; may throw std::bad_alloc
// then) and alive until the library is unloaded.
template <typename Plugin>
nvinfer1::IPluginCreatorV3One& creatorOf()
{
    static PluginCreator<Plugin> creator;
    return creator;
}

} // namespace algm::trt
