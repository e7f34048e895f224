// What running a model needs to know about it: input size, normalization, classes. algm-export stores it
// as JSON (DeploymentInfo.to_dict()) in the ONNX metadata (key "algm_export") and in the engine sidecar
// (<engine>.json, key "deployment").
#pragma once

#include <array>
#include <string>
#include <vector>

namespace sample
{

struct Deployment
{
    int height = 0; // "image_size": [H, W], the model's input size
    int width = 0;
    std::array<float, 3> mean{}; // "normalization": {"mean", "std"}, for RGB scaled to [0, 1]
    std::array<float, 3> std{};
    std::vector<std::string> classNames; // "class_names"
    // "windows": {"im_size", "window_size", "window_stride"}: Segmenter's sliding-window inference
    // (docs/outputs.md). 0 when the model has no such entry: then the image is resized to the input size.
    int imSize = 0;
    int windowStride = 0;
    std::string pluginLibrary; // engines only: the sidecar's "plugin_library" (may be empty), resolved
};

// Parses DeploymentInfo JSON text; throws std::runtime_error naming `source` and the problem.
Deployment parseDeployment(std::string const& json, std::string const& source);

// Reads <enginePath>.json: its "deployment" and "plugin_library" (resolved by resolvePluginLibrary).
Deployment readEngineSidecar(std::string const& enginePath);

// A sidecar's plugin_library: an absolute path as written; a relative one against the engine's folder (never the
// working directory, the rule algm_export/runtime/tensorrt_backend.py follows too), made absolute so that dlopen
// does not search the library path for it. Empty stays empty.
std::string resolvePluginLibrary(std::string const& enginePath, std::string const& library);

} // namespace sample
