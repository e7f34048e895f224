// The ONNX Runtime backend of algm_segment (CPU execution provider).
#include "backend.h"

#include <onnxruntime_cxx_api.h>

#include <algorithm>
#include <chrono>
#include <stdexcept>

namespace sample
{
namespace
{

class OnnxRuntimeBackend final : public Backend
{
public:
    OnnxRuntimeBackend(std::string const& path, std::string const& opsLibrary)
        : mEnv(ORT_LOGGING_LEVEL_ERROR, "algm_segment")
    {
        Ort::SessionOptions options;
        options.SetGraphOptimizationLevel(GraphOptimizationLevel::ORT_ENABLE_ALL);
        if (!opsLibrary.empty())
        {
            options.RegisterCustomOpsLibrary(opsLibrary.c_str());
        }
        mSession = std::make_unique<Ort::Session>(mEnv, path.c_str(), options);
        Ort::AllocatorWithDefaultOptions allocator;
        Ort::ModelMetadata metadata = mSession->GetModelMetadata();
        Ort::AllocatedStringPtr info = metadata.LookupCustomMetadataMapAllocated("algm_export", allocator);
        if (!info)
        {
            throw std::runtime_error(path + ": no 'algm_export' metadata; was it written by algm-export?");
        }
        mDeployment = parseDeployment(info.get(), path + " metadata");
        mInputName = mSession->GetInputNameAllocated(0, allocator).get();
        for (size_t i = 0; i < mSession->GetOutputCount(); ++i)
        {
            mOutputNames.push_back(mSession->GetOutputNameAllocated(i, allocator).get());
        }
    }

    Deployment const& deployment() const override
    {
        return mDeployment;
    }

    bool hasClassScores() const override
    {
        return has(kScores) || has(kLogits);
    }

    Inference run(std::vector<float> const& image, int warmup, int runs, bool classScores) override
    {
        // The one class output wanted: labels for a single window, scores (else logits) for a sliding window.
        std::string const first = classScores ? (has(kScores) ? kScores : kLogits) : (has(kLabels) ? kLabels : kLogits);
        std::vector<std::string> wanted{first};
        if (has(kTokenCounts))
        {
            wanted.push_back(kTokenCounts);
        }
        Ort::MemoryInfo const memory = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
        std::vector<int64_t> const shape{1, 3, mDeployment.height, mDeployment.width};
        Ort::Value input = Ort::Value::CreateTensor<float>(
            memory, const_cast<float*>(image.data()), image.size(), shape.data(), shape.size());
        char const* inputName = mInputName.c_str();
        std::vector<char const*> outputNames;
        for (std::string const& name : wanted)
        {
            outputNames.push_back(name.c_str());
        }
        Inference inference;
        std::vector<Ort::Value> outputs;
        for (int i = 0; i < warmup + runs; ++i)
        {
            auto const start = std::chrono::steady_clock::now();
            outputs = mSession->Run(
                Ort::RunOptions{nullptr}, &inputName, &input, 1, outputNames.data(), outputNames.size());
            std::chrono::duration<float, std::milli> const elapsed = std::chrono::steady_clock::now() - start;
            if (i >= warmup)
            {
                inference.latenciesMs.push_back(elapsed.count());
            }
        }
        Ort::Value const& result = outputs[0];
        size_t const count = result.GetTensorTypeAndShapeInfo().GetElementCount();
        if (first == kLabels)
        {
            auto const type = result.GetTensorTypeAndShapeInfo().GetElementType();
            if (type == ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64)
            {
                int64_t const* labels = result.GetTensorData<int64_t>();
                inference.labels.assign(labels, labels + count);
            }
            else if (type == ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32)
            {
                int32_t const* labels = result.GetTensorData<int32_t>();
                inference.labels.assign(labels, labels + count);
            }
            else
            {
                throw std::runtime_error("labels: expected int32 or int64");
            }
        }
        else
        {
            float const* values = result.GetTensorData<float>();
            std::vector<float>& target = first == kScores ? inference.scores : inference.logits;
            target.assign(values, values + count);
            if (first == kScores)
            {
                std::vector<int64_t> const shape = result.GetTensorTypeAndShapeInfo().GetShape();
                inference.scoresHeight = static_cast<int>(shape.at(2));
                inference.scoresWidth = static_cast<int>(shape.at(3));
            }
        }
        if (outputs.size() > 1)
        {
            int64_t const* counts = outputs[1].GetTensorData<int64_t>();
            inference.tokenCounts.assign(counts, counts + outputs[1].GetTensorTypeAndShapeInfo().GetElementCount());
        }
        return inference;
    }

private:
    bool has(char const* name) const
    {
        return std::count(mOutputNames.begin(), mOutputNames.end(), name) > 0;
    }

    Ort::Env mEnv;
    std::unique_ptr<Ort::Session> mSession;
    Deployment mDeployment;
    std::string mInputName;
    std::vector<std::string> mOutputNames;
};

} // namespace

std::unique_ptr<Backend> openOnnxRuntime(std::string const& path, std::string const& opsLibrary)
{
    try
    {
        return std::make_unique<OnnxRuntimeBackend>(path, opsLibrary);
    }
    catch (Ort::Exception const& error)
    {
        throw std::runtime_error(path + ": ONNX Runtime: " + error.what());
    }
}

} // namespace sample
