#include "png_io.h"

#include <png.h>

#include <cstddef>
#include <cstdio>
#include <cstring>
#include <stdexcept>

namespace sample
{

RgbImage readPng(std::string const& path)
{
    png_image png;
    std::memset(&png, 0, sizeof(png));
    png.version = PNG_IMAGE_VERSION;
    if (png_image_begin_read_from_file(&png, path.c_str()) == 0)
    {
        throw std::runtime_error(path + ": " + png.message);
    }
    // Read RGBA and drop alpha ourselves: libpng would composite onto a background instead.
    png.format = PNG_FORMAT_RGBA;
    std::vector<uint8_t> rgba(PNG_IMAGE_SIZE(png));
    if (png_image_finish_read(&png, nullptr, rgba.data(), 0, nullptr) == 0)
    {
        std::string const message = png.message;
        png_image_free(&png);
        throw std::runtime_error(path + ": " + message);
    }
    RgbImage image;
    image.width = static_cast<int>(png.width);
    image.height = static_cast<int>(png.height);
    image.pixels.resize(static_cast<size_t>(image.width) * image.height * 3);
    for (size_t pixel = 0, count = static_cast<size_t>(image.width) * image.height; pixel < count; ++pixel)
    {
        std::memcpy(&image.pixels[pixel * 3], &rgba[pixel * 4], 3);
    }
    return image;
}

void writeLabelPng(std::string const& path, int width, int height, std::vector<int32_t> const& labels,
    std::vector<uint8_t> const& colours)
{
    std::vector<uint8_t> indices(labels.size());
    for (size_t pixel = 0; pixel < labels.size(); ++pixel)
    {
        if (labels[pixel] < 0 || labels[pixel] * 3 >= static_cast<int64_t>(colours.size()))
        {
            throw std::runtime_error(path + ": class index " + std::to_string(labels[pixel]) + " has no colour");
        }
        indices[pixel] = static_cast<uint8_t>(labels[pixel]);
    }
    png_image png;
    std::memset(&png, 0, sizeof(png));
    png.version = PNG_IMAGE_VERSION;
    png.width = static_cast<png_uint_32>(width);
    png.height = static_cast<png_uint_32>(height);
    png.format = PNG_FORMAT_RGB_COLORMAP;
    png.colormap_entries = static_cast<png_uint_32>(colours.size() / 3);
    std::string const partial = path + ".partial";
    if (png_image_write_to_file(&png, partial.c_str(), 0, indices.data(), 0, colours.data()) == 0)
    {
        std::remove(partial.c_str());
        throw std::runtime_error(path + ": " + png.message);
    }
    if (std::rename(partial.c_str(), path.c_str()) != 0)
    {
        std::remove(partial.c_str());
        throw std::runtime_error(path + ": cannot move the written file into place");
    }
}

} // namespace sample
