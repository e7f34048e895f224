// Error messages of the algm plugins.
//
// TensorRT hands a library loaded with IPluginRegistry::loadLibrary (or trtexec --dynamicPlugins) an
// ILoggerFinder through the library's exported setLoggerFinder(); messages then go to the logger of the
// builder/runtime that called the plugin. Without one (the self-registering library, or a host program
// that never calls setLoggerFinder) they go to stderr.
#pragma once

#include <NvInferRuntime.h>

namespace algm::trt
{

// Remembers `finder` for logError (nullptr: back to stderr). Called by the exported setLoggerFinder().
void setLoggerFinder(nvinfer1::ILoggerFinder* finder) noexcept;

// Logs one error, printf-style. Never throws; long messages are truncated.
void logError(char const* format, ...) noexcept __attribute__((format(printf, 1, 2)));

} // namespace algm::trt
