#include "logging.h"

#include <atomic>
#include <cstdarg>
#include <cstdio>

namespace algm::trt
{
namespace
{
std::atomic<nvinfer1::ILoggerFinder*> gLoggerFinder{nullptr};

// The logger of the TensorRT object calling us, or nullptr. findLogger() must run on the calling thread,
// which is why it is asked for every message instead of once.
nvinfer1::ILogger* currentLogger() noexcept
{
    nvinfer1::ILoggerFinder* finder = gLoggerFinder.load();
    if (finder == nullptr)
    {
        return nullptr;
    }
    try
    {
        return finder->findLogger(); // not declared noexcept
    }
    catch (...)
    {
        return nullptr;
    }
}
} // namespace

void setLoggerFinder(nvinfer1::ILoggerFinder* finder) noexcept
{
    gLoggerFinder.store(finder);
}

void logError(char const* format, ...) noexcept
{
    char message[1024];
    va_list arguments;
    va_start(arguments, format);
    std::vsnprintf(message, sizeof(message), format, arguments);
    va_end(arguments);

    if (nvinfer1::ILogger* logger = currentLogger())
    {
        logger->log(nvinfer1::ILogger::Severity::kERROR, message);
    }
    else
    {
        std::fprintf(stderr, "%s\n", message);
    }
}

} // namespace algm::trt
