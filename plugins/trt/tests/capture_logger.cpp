#include "capture_logger.h"

#include <utility>

namespace algm::test
{

void CaptureLogger::log(Severity severity, char const* message) noexcept
{
    if (severity > Severity::kERROR)
    {
        return;
    }
    try
    {
        errors.emplace_back(message);
    }
    catch (...)
    {
    }
}

nvinfer1::ILogger* CaptureLoggerFinder::findLogger()
{
    return &mLogger;
}

std::vector<std::string> CaptureLoggerFinder::takeErrors()
{
    return std::exchange(mLogger.errors, {});
}

} // namespace algm::test
