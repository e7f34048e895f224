#include "sidecar.h"

#include "json.h"

#include <cmath>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace sample
{
namespace
{
int positiveInt(JsonValue const& value, char const* what)
{
    double const number = value.number(what);
    if (number < 1 || number > 1 << 20 || std::floor(number) != number)
    {
        throw std::runtime_error(std::string(what) + ": expected a positive integer");
    }
    return static_cast<int>(number);
}

std::array<float, 3> rgbTriple(JsonValue const& value, char const* what)
{
    std::vector<JsonValue> const& items = value.array(what);
    if (items.size() != 3)
    {
        throw std::runtime_error(std::string(what) + ": expected 3 numbers (R, G, B)");
    }
    return {static_cast<float>(items[0].number(what)), static_cast<float>(items[1].number(what)),
        static_cast<float>(items[2].number(what))};
}

Sidecar parseSidecar(JsonValue const& root)
{
    Sidecar sidecar;
    JsonValue const& input = root.at("input");
    sidecar.inputName = input.at("name").string("input.name");

    std::vector<JsonValue> const& size = root.at("image_size").array("image_size");
    if (size.size() != 2)
    {
        throw std::runtime_error("image_size: expected [H, W]");
    }
    sidecar.height = positiveInt(size[0], "image_size[0]");
    sidecar.width = positiveInt(size[1], "image_size[1]");
    std::vector<JsonValue> const& shape = input.at("shape").array("input.shape");
    if (shape.size() != 4 || shape[1].number("input.shape[1]") != 3
        || shape[2].number("input.shape[2]") != sidecar.height || shape[3].number("input.shape[3]") != sidecar.width)
    {
        throw std::runtime_error("input.shape: expected [B, 3, H, W] with [H, W] = image_size");
    }

    for (JsonValue const& output : root.at("outputs").array("outputs"))
    {
        sidecar.outputNames.push_back(output.at("name").string("outputs[].name"));
    }
    JsonValue const& normalization = root.at("normalization");
    sidecar.mean = rgbTriple(normalization.at("mean"), "normalization.mean");
    sidecar.std = rgbTriple(normalization.at("std"), "normalization.std");
    for (float deviation : sidecar.std)
    {
        if (!(deviation > 0))
        {
            throw std::runtime_error("normalization.std: expected positive numbers");
        }
    }
    for (JsonValue const& name : root.at("class_names").array("class_names"))
    {
        sidecar.classNames.push_back(name.string("class_names[]"));
    }
    JsonValue const* library = root.find("plugin_library");
    if (library != nullptr && !library->isNull())
    {
        sidecar.pluginLibrary = library->string("plugin_library");
    }
    return sidecar;
}
} // namespace

Sidecar readSidecar(std::string const& path)
{
    std::ifstream file(path, std::ios::binary);
    if (!file)
    {
        throw std::runtime_error(path + ": cannot open the engine's sidecar file");
    }
    std::ostringstream text;
    text << file.rdbuf();
    try
    {
        return parseSidecar(parseJson(text.str()));
    }
    catch (std::runtime_error const& error)
    {
        throw std::runtime_error(path + ": " + error.what());
    }
}

} // namespace sample
