#include "png_io.h"

#include <png.h>

#include <cmath>
#include <csetjmp>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <utility>

namespace sample
{
namespace
{

// IHDR's bit depth and colour type: bytes 24 and 25 of a PNG file (8-byte signature, chunk length and type,
// width, height). 0, 0 when the file is too short (libpng then reports what is wrong).
std::pair<int, int> headerDepthAndColour(std::string const& path)
{
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"), &std::fclose);
    unsigned char header[26]{};
    if (!file || std::fread(header, 1, sizeof(header), file.get()) != sizeof(header))
    {
        return {0, 0};
    }
    return {header[24], header[25]};
}

void onError(png_structp png, png_const_charp message)
{
    std::strncpy(static_cast<char*>(png_get_error_ptr(png)), message, 255);
    png_longjmp(png, 1);
}

void onWarning(png_structp /*png*/, png_const_charp /*message*/)
{
}

// The big-endian 16-bit samples of a 16-bit PNG, unconverted (libpng's simplified API would treat them as
// linear light and gamma-encode them). Every object the error path's longjmp passes over is the caller's.
bool readSamples16(std::FILE* file, char* error, std::vector<uint8_t>& samples, std::vector<png_bytep>& rows,
    png_uint_32& width, png_uint_32& height, int& channels)
{
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, error, onError, onWarning);
    png_infop info = png != nullptr ? png_create_info_struct(png) : nullptr;
    if (info == nullptr)
    {
        png_destroy_read_struct(&png, nullptr, nullptr);
        std::strncpy(error, "out of memory", 255);
        return false;
    }
    if (setjmp(png_jmpbuf(png)))
    {
        png_destroy_read_struct(&png, &info, nullptr);
        return false;
    }
    png_init_io(png, file);
    png_read_info(png, info);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    width = png_get_image_width(png, info);
    height = png_get_image_height(png, info);
    channels = png_get_channels(png, info);
    size_t const rowBytes = png_get_rowbytes(png, info);
    samples.resize(rowBytes * height);
    rows.resize(height);
    for (png_uint_32 row = 0; row < height; ++row)
    {
        rows[row] = samples.data() + row * rowBytes;
    }
    png_read_image(png, rows.data());
    png_read_end(png, nullptr);
    png_destroy_read_struct(&png, &info, nullptr);
    return true;
}

// A 16-bit PNG as the Python side reads it (algm_export/photos.py): PIL keeps 16-bit grey as mode I;16, which
// as_rgb8 scales by 255/65535 in float32 and rounds; 16-bit RGB, RGBA and grey+alpha are reduced by PIL's
// decoder to their high byte. Alpha is dropped.
RgbImage readPng16(std::string const& path, int colourType)
{
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"), &std::fclose);
    if (!file)
    {
        throw std::runtime_error(path + ": cannot open the file");
    }
    char error[256]{};
    std::vector<uint8_t> samples;
    std::vector<png_bytep> rows;
    png_uint_32 width = 0;
    png_uint_32 height = 0;
    int channels = 0;
    if (!readSamples16(file.get(), error, samples, rows, width, height, channels))
    {
        throw std::runtime_error(path + ": " + error);
    }
    bool const grey = colourType == PNG_COLOR_TYPE_GRAY;
    RgbImage image;
    image.width = static_cast<int>(width);
    image.height = static_cast<int>(height);
    size_t const pixels = static_cast<size_t>(width) * height;
    image.pixels.resize(pixels * 3);
    for (size_t pixel = 0; pixel < pixels; ++pixel)
    {
        uint8_t const* sample = &samples[pixel * channels * 2];
        for (int c = 0; c < 3; ++c)
        {
            // Grey (+alpha): one colour sample; RGB(A): three.
            uint8_t const* value = colourType == PNG_COLOR_TYPE_GRAY || colourType == PNG_COLOR_TYPE_GRAY_ALPHA
                ? sample
                : sample + 2 * c;
            uint16_t const wide = static_cast<uint16_t>((value[0] << 8) | value[1]);
            image.pixels[pixel * 3 + c] = grey
                ? static_cast<uint8_t>(std::nearbyint(static_cast<float>(wide) * static_cast<float>(255.0 / 65535.0)))
                : value[0];
        }
    }
    return image;
}

} // namespace

RgbImage readPng(std::string const& path)
{
    auto const [depth, colourType] = headerDepthAndColour(path);
    if (depth == 16)
    {
        return readPng16(path, colourType);
    }
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
    size_t const classes = colours.size() / 3;
    bool const wide = classes > kPaletteClasses;
    std::vector<uint8_t> narrow(wide ? 0 : labels.size());
    std::vector<png_uint_16> indices(wide ? labels.size() : 0);
    for (size_t pixel = 0; pixel < labels.size(); ++pixel)
    {
        if (labels[pixel] < 0 || static_cast<size_t>(labels[pixel]) >= classes || labels[pixel] > 65535)
        {
            throw std::runtime_error(path + ": class index " + std::to_string(labels[pixel]) + " has no colour");
        }
        if (wide)
        {
            indices[pixel] = static_cast<png_uint_16>(labels[pixel]);
        }
        else
        {
            narrow[pixel] = static_cast<uint8_t>(labels[pixel]);
        }
    }
    png_image png;
    std::memset(&png, 0, sizeof(png));
    png.version = PNG_IMAGE_VERSION;
    png.width = static_cast<png_uint_32>(width);
    png.height = static_cast<png_uint_32>(height);
    // Up to 256 classes: 8-bit indices with the palette; more: 16-bit grey indices, as Python writes them
    // (algm_export/predict.py write_label_png). The linear 16-bit format is written unchanged.
    png.format = wide ? PNG_FORMAT_LINEAR_Y : PNG_FORMAT_RGB_COLORMAP;
    png.colormap_entries = wide ? 0 : static_cast<png_uint_32>(classes);
    void const* buffer = wide ? static_cast<void const*>(indices.data()) : static_cast<void const*>(narrow.data());
    std::string const partial = path + ".partial";
    if (png_image_write_to_file(&png, partial.c_str(), 0, buffer, 0, wide ? nullptr : colours.data()) == 0)
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
