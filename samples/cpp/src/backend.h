// One interface for the two runtimes of algm_segment: ONNX Runtime (.onnx) and TensorRT (.plan).
#pragma once

#include "deployment.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace sample
{

// Graph output names (algm_export/artifacts.py).
inline constexpr char kLogits[] = "logits";            // [B, classes, H, W] float32
inline constexpr char kLabels[] = "labels";            // [B, H, W] integer class indices (when the graph has it)
inline constexpr char kScores[] = "scores";            // [B, classes, h, w] float32 on the patch grid (when present)
inline constexpr char kTokenCounts[] = "token_counts"; // [merges] int64, with ALGM

// One image's result: `labels` ([H, W] class indices), or `logits` ([classes, H, W]), or `scores`
// ([classes, scoresHeight, scoresWidth], the patch grid), depending on the outputs asked for and present.
struct Inference
{
    std::vector<int32_t> labels;
    std::vector<float> logits;
    std::vector<float> scores;
    int scoresHeight = 0;
    int scoresWidth = 0;
    std::vector<int64_t> tokenCounts;
    std::vector<float> latenciesMs; // one per timed run
};

class Backend
{
public:
    virtual ~Backend() = default;
    virtual Deployment const& deployment() const = 0;
    // Whether the model outputs per-class values (scores or logits), which sliding windows need; a graph
    // exported with --outputs labels has only labels.
    virtual bool hasClassScores() const = 0;
    // Runs one normalized image [3, H, W] (`warmup` untimed then `runs` timed inferences). `classScores`:
    // return per-class values (`scores` when the model has them, else `logits`) rather than `labels`.
    virtual Inference run(std::vector<float> const& image, int warmup, int runs, bool classScores) = 0;
};

// ONNX Runtime (CPU) on an exported graph. `opsLibrary` (libalgm_ort_ops.so) may be empty.
std::unique_ptr<Backend> openOnnxRuntime(std::string const& path, std::string const& opsLibrary);

// TensorRT on an engine built by algm-export; `plugins` overrides the sidecar's plugin library.
std::unique_ptr<Backend> openTensorRT(std::string const& path, std::string const& plugins);

} // namespace sample
