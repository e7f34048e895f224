// Entry points of libalgm_plugins.so, the flavour for IPluginRegistry::loadLibrary (C++),
// trt.get_plugin_registry().load_library (Python), trtexec --dynamicPlugins and --setPluginsToSerialize.
// TensorRT dlopens the library, hands it a logger finder and registers the creators getCreators returns.
// Nothing here calls into libnvinfer, so the library links without it. It must not also register itself
// at load time: loadLibrary fails when a creator it gets is already registered.
#include "creators.h"
#include "logging.h"

#define ALGM_PLUGIN_EXPORT __attribute__((visibility("default")))

extern "C" ALGM_PLUGIN_EXPORT void setLoggerFinder(nvinfer1::ILoggerFinder* finder) noexcept
{
    algm::trt::setLoggerFinder(finder);
}

extern "C" ALGM_PLUGIN_EXPORT nvinfer1::IPluginCreatorInterface* const* getCreators(int32_t& nbCreators) noexcept
{
    try
    {
        auto const& creators = algm::trt::allCreators();
        nbCreators = static_cast<int32_t>(creators.size());
        return creators.data();
    }
    catch (...)
    {
        algm::trt::logError("algm: cannot create the plugin creators");
        nbCreators = 0;
        return nullptr;
    }
}
