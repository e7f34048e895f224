// The TensorRT backend of algm_segment: loads the plugin library, deserializes the engine, runs batch 1.
#include "backend.h"
#include "trt_session.h"

#include <cstring>
#include <stdexcept>

namespace sample
{
namespace
{

template <typename T>
std::vector<T> elements(HostTensor const& tensor)
{
    std::vector<T> values(tensor.bytes.size() / sizeof(T));
    std::memcpy(values.data(), tensor.bytes.data(), values.size() * sizeof(T));
    return values;
}

class TensorRTBackend final : public Backend
{
public:
    TensorRTBackend(std::string const& path, std::string const& plugins)
        : mDeployment(readEngineSidecar(path))
    {
        // The sidecar's plugin_library comes resolved against the engine's folder (readEngineSidecar).
        std::string const library = plugins.empty() ? mDeployment.pluginLibrary : plugins;
        if (!library.empty())
        {
            loadPluginLibrary(library);
        }
        mSession = std::make_unique<Session>(path, mLogger);
    }

    Deployment const& deployment() const override
    {
        return mDeployment;
    }

    bool hasClassScores() const override
    {
        return mSession->hasTensor(kScores) || mSession->hasTensor(kLogits);
    }

    Inference run(std::vector<float> const& image, int warmup, int runs, bool classScores) override
    {
        mSession->setInput("images", nvinfer1::Dims4{1, 3, mDeployment.height, mDeployment.width}, image);
        Inference inference;
        inference.latenciesMs = mSession->run(warmup, runs);
        if (classScores && mSession->hasTensor(kScores))
        {
            HostTensor const scores = mSession->output(kScores);
            inference.scores = elements<float>(scores);
            inference.scoresHeight = static_cast<int>(scores.shape.d[2]);
            inference.scoresWidth = static_cast<int>(scores.shape.d[3]);
        }
        else if (!classScores && mSession->hasTensor(kLabels))
        {
            HostTensor const labels = mSession->output(kLabels);
            if (labels.type == nvinfer1::DataType::kINT64)
            {
                std::vector<int64_t> const wide = elements<int64_t>(labels);
                inference.labels.assign(wide.begin(), wide.end());
            }
            else
            {
                inference.labels = elements<int32_t>(labels);
            }
        }
        else
        {
            HostTensor const logits = mSession->output(kLogits);
            if (logits.type != nvinfer1::DataType::kFLOAT)
            {
                throw std::runtime_error("logits: expected float32");
            }
            inference.logits = elements<float>(logits);
        }
        if (mSession->hasTensor(kTokenCounts))
        {
            inference.tokenCounts = elements<int64_t>(mSession->output(kTokenCounts));
        }
        return inference;
    }

private:
    Deployment mDeployment;
    Logger mLogger;
    std::unique_ptr<Session> mSession;
};

} // namespace

std::unique_ptr<Backend> openTensorRT(std::string const& path, std::string const& plugins)
{
    return std::make_unique<TensorRTBackend>(path, plugins);
}

} // namespace sample
