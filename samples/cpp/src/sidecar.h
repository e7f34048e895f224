// The JSON sidecar written next to an engine (model.fp16.plan.json): what running the engine needs to know.
#pragma once

#include <array>
#include <string>
#include <vector>

namespace sample
{

struct Sidecar
{
    std::string inputName;                 // "input": {"name"}
    int height = 0;                        // "image_size": [H, W], the engine's input size
    int width = 0;
    std::vector<std::string> outputNames;  // "outputs": [{"name"}, ...]
    std::array<float, 3> mean{};           // "normalization": {"mean", "std"}, for RGB scaled to [0, 1]
    std::array<float, 3> std{};
    std::vector<std::string> classNames;   // "class_names"
    std::string pluginLibrary;             // "plugin_library" (empty when absent or null)
};

// Reads and checks the sidecar at `path`; throws std::runtime_error naming the file and the problem.
Sidecar readSidecar(std::string const& path);

} // namespace sample
