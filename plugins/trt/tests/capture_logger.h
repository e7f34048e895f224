// A logger finder handed to the plugin library's setLoggerFinder(), as TensorRT's loadLibrary does, so that
// the test can see the errors the plugins report.
#pragma once

#include <NvInferRuntime.h>

#include <string>
#include <vector>

namespace algm::test
{

class CaptureLogger final : public nvinfer1::ILogger
{
public:
    void log(Severity severity, char const* message) noexcept override;

    std::vector<std::string> errors;
};

class CaptureLoggerFinder final : public nvinfer1::ILoggerFinder
{
public:
    nvinfer1::ILogger* findLogger() override;

    // The errors logged since the last call.
    std::vector<std::string> takeErrors();

private:
    CaptureLogger mLogger;
};

} // namespace algm::test
