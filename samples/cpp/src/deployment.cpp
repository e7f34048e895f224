#include "deployment.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace sample
{
namespace
{
using nlohmann::json;

Deployment fromJson(json const& info)
{
    Deployment deployment;
    auto const size = info.at("image_size").get<std::vector<int>>();
    if (size.size() != 2 || size[0] <= 0 || size[1] <= 0)
    {
        throw std::runtime_error("image_size: expected [H, W] of positive numbers");
    }
    deployment.height = size[0];
    deployment.width = size[1];
    json const& normalization = info.at("normalization");
    deployment.mean = normalization.at("mean").get<std::array<float, 3>>();
    deployment.std = normalization.at("std").get<std::array<float, 3>>();
    for (float deviation : deployment.std)
    {
        if (!(deviation > 0))
        {
            throw std::runtime_error("normalization.std: expected positive numbers");
        }
    }
    deployment.classNames = info.at("class_names").get<std::vector<std::string>>();
    auto const windows = info.find("windows");
    if (windows != info.end() && !windows->is_null())
    {
        deployment.imSize = windows->at("im_size").get<int>();
        deployment.windowStride = windows->at("window_stride").get<int>();
        int const windowSize = windows->at("window_size").get<int>();
        if (deployment.imSize <= 0 || deployment.windowStride <= 0 || windowSize != deployment.height
            || deployment.height != deployment.width)
        {
            throw std::runtime_error("windows: expected positive im_size and window_stride, and window_size equal "
                                     "to the (square) input size");
        }
    }
    if (deployment.classNames.empty() || deployment.classNames.size() > 65536)
    {
        throw std::runtime_error("class_names: expected 1 to 65536 classes (the label PNG has 16-bit indices at most)");
    }
    return deployment;
}

template <typename Read>
Deployment parsing(std::string const& source, Read read)
{
    try
    {
        return read();
    }
    catch (json::exception const& error)
    {
        throw std::runtime_error(source + ": " + error.what());
    }
    catch (std::runtime_error const& error)
    {
        throw std::runtime_error(source + ": " + error.what());
    }
}
} // namespace

Deployment parseDeployment(std::string const& text, std::string const& source)
{
    return parsing(source, [&] { return fromJson(json::parse(text)); });
}

std::string resolvePluginLibrary(std::string const& enginePath, std::string const& library)
{
    std::filesystem::path const written(library);
    if (library.empty() || written.is_absolute())
    {
        return library;
    }
    std::filesystem::path const folder = std::filesystem::absolute(std::filesystem::path(enginePath)).parent_path();
    return (folder / written).lexically_normal().string();
}

Deployment readEngineSidecar(std::string const& enginePath)
{
    std::string const path = enginePath + ".json";
    std::ifstream file(path, std::ios::binary);
    if (!file)
    {
        throw std::runtime_error(path + ": cannot open the engine's sidecar file");
    }
    std::ostringstream text;
    text << file.rdbuf();
    return parsing(path, [&] {
        json const sidecar = json::parse(text.str());
        Deployment deployment = fromJson(sidecar.at("deployment"));
        auto const library = sidecar.find("plugin_library");
        if (library != sidecar.end() && !library->is_null())
        {
            deployment.pluginLibrary = resolvePluginLibrary(enginePath, library->get<std::string>());
        }
        return deployment;
    });
}

} // namespace sample
