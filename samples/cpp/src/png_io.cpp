#include "png_io.h"

#include <png.h>

#include <cstddef>
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

void writePng(std::string const& path, RgbImage const& image)
{
    png_image png;
    std::memset(&png, 0, sizeof(png));
    png.version = PNG_IMAGE_VERSION;
    png.width = static_cast<png_uint_32>(image.width);
    png.height = static_cast<png_uint_32>(image.height);
    png.format = PNG_FORMAT_RGB;
    if (png_image_write_to_file(&png, path.c_str(), 0, image.pixels.data(), 0, nullptr) == 0)
    {
        throw std::runtime_error(path + ": " + png.message);
    }
}

} // namespace sample
