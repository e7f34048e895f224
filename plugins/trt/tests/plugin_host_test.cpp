// Host test of libalgm_plugins.so: what TensorRT does with the library before any kernel runs.
// Loads the library as IPluginRegistry::loadLibrary does (dlopen, setLoggerFinder, getCreators), then checks
// the creators, createPlugin's validation, the build-time methods (types, formats, shapes through a toy
// IExprBuilder, workspace) and the serialization round trip. Makes no CUDA call.
// The parts live one file each (suites.h); their scaffolding in host_support.{h,cpp}.
//
// Usage: algm_plugin_host_test path/to/libalgm_plugins.so [--print-fields]
#include "check.h"
#include "suites.h"

#include <NvInferRuntime.h>

#include <dlfcn.h>

#include <cstdio>
#include <cstring>

namespace
{
using SetLoggerFinder = void (*)(nvinfer1::ILoggerFinder*);
} // namespace

int main(int argc, char** argv)
{
    using namespace algm::test;
    bool const printOnly = argc == 3 && std::strcmp(argv[2], "--print-fields") == 0;
    if (argc != 2 && !printOnly)
    {
        std::fprintf(stderr, "usage: %s path/to/libalgm_plugins.so [--print-fields]\n", argv[0]);
        return 2;
    }
    void* library = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (library == nullptr)
    {
        std::fprintf(stderr, "cannot load %s: %s\n", argv[1], dlerror());
        return 1;
    }
    // The two entry points loadLibrary looks up.
    auto const getCreators = reinterpret_cast<GetCreators>(dlsym(library, "getCreators"));
    auto const setLoggerFinder = reinterpret_cast<SetLoggerFinder>(dlsym(library, "setLoggerFinder"));
    if (!CHECK(getCreators != nullptr) || !CHECK(setLoggerFinder != nullptr))
    {
        return 1;
    }
    setLoggerFinder(&loggerFinder());

    Creators const creators = checkCreators(getCreators);
    bool const complete
        = creators.localMerge != nullptr && creators.globalMerge != nullptr && creators.unmerge != nullptr;
    if (printOnly && complete)
    {
        printFields(creators);
        return gFailures == 0 ? 0 : 1;
    }
    if (complete)
    {
        checkFieldNames(creators);
        checkSizeTensorTypes(creators);
        checkBatchRule(creators);
        checkFieldValidation(creators);
        checkLocalMerge(*creators.localMerge);
        checkGlobalMerge(*creators.globalMerge);
        checkUnmerge(*creators.unmerge);
    }
    CHECK(loggerFinder().takeErrors().empty()); // every error was expected by some check
    setLoggerFinder(nullptr);

    if (gFailures > 0)
    {
        std::fprintf(stderr, "%d of %d check(s) failed\n", gFailures, gChecks);
        return 1;
    }
    std::printf("algm plugin host test: all %d checks passed\n", gChecks);
    return 0;
}
