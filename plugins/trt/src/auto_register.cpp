// Load-time registration of libalgm_plugins_autoreg.so, the flavour for loaders that only dlopen a library
// and expect it to register itself: polygraphy --plugins, trtexec --staticPlugins, ctypes.CDLL in Python.
// It calls getPluginRegistry() and so links libnvinfer. It deliberately exports no getCreators: loading it
// with loadLibrary as well would register every creator twice, which loadLibrary rejects.
#include "creators.h"
#include "logging.h"
#include "plugin_base.h"

namespace
{

// Registers the creators with TensorRT's global registry while the library is being loaded. They are never
// deregistered; the library is linked with -z nodelete, so dlclose cannot leave the registry dangling.
struct AutoRegistration
{
    AutoRegistration() noexcept
    {
        try
        {
            for (nvinfer1::IPluginCreatorInterface* creator : algm::trt::allCreators())
            {
                // A V3 creator carries its namespace; pass the same one (REGISTER_TENSORRT_PLUGIN passes "").
                if (!getPluginRegistry()->registerCreator(*creator, algm::trt::kPluginNamespace))
                {
                    algm::trt::logError("algm: a plugin creator is already registered (library loaded twice?)");
                }
            }
        }
        catch (...)
        {
            algm::trt::logError("algm: cannot create the plugin creators");
        }
    }
};

AutoRegistration const gAutoRegistration;

} // namespace
