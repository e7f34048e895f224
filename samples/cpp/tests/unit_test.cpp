// Unit test of algm_segment's pieces that need no model or GPU (ctest: algm_segment_unit_test FOLDER).
//   16-bit PNGs: read as the Python side reads them (expected values: PIL + algm_export/photos.py as_rgb8 on the
//   same samples), label PNGs above 256 classes written as 16-bit indices; the sidecar's plugin_library resolved
//   against the engine's folder; TensorRT outputs refused before a run (with the TensorRT headers).
#include "../src/deployment.h"
#include "../src/labels.h"
#include "../src/png_io.h"
#include "../src/sliding.h"
#ifdef ALGM_SEGMENT_TEST_TRT
#include "../src/trt_tensors.h"
#endif

#include <png.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace
{

int gFailures = 0;

#define EXPECT(condition)                                                                                              \
    do                                                                                                                 \
    {                                                                                                                  \
        if (!(condition))                                                                                              \
        {                                                                                                              \
            std::printf("%s:%d: expected %s\n", __FILE__, __LINE__, #condition);                                       \
            ++gFailures;                                                                                               \
        }                                                                                                              \
    } while (0)

namespace fs = std::filesystem;

// 16-bit samples and what PIL + as_rgb8 make of them (measured with Pillow on PNGs holding these samples):
// grey (mode I;16) round(v * 255 / 65535); RGB, RGBA, grey+alpha the high byte.
std::vector<png_uint_16> const kSamples{0, 128, 255, 256, 32767, 32768, 65280, 65407, 65535, 1000};
std::vector<int> const kPythonGrey{0, 0, 1, 1, 127, 128, 254, 255, 255, 4};
std::vector<int> const kPythonColour{0, 0, 0, 1, 127, 128, 255, 255, 255, 3};

// A one-row 16-bit PNG of `channels` samples per pixel (format: PNG_FORMAT_LINEAR_*: written unchanged).
void write16(fs::path const& path, png_uint_32 format, int channels)
{
    std::vector<png_uint_16> row;
    for (png_uint_16 sample : kSamples)
    {
        for (int c = 0; c < channels; ++c)
        {
            bool const alpha = (format & PNG_FORMAT_FLAG_ALPHA) != 0 && c == channels - 1;
            row.push_back(alpha ? 65535 : sample);
        }
    }
    png_image png{};
    png.version = PNG_IMAGE_VERSION;
    png.width = static_cast<png_uint_32>(kSamples.size());
    png.height = 1;
    png.format = format;
    if (png_image_write_to_file(&png, path.c_str(), 0, row.data(), 0, nullptr) == 0)
    {
        throw std::runtime_error(path.string() + ": " + png.message);
    }
}

void testRead16(fs::path const& folder)
{
    struct Case
    {
        char const* name;
        png_uint_32 format;
        int channels;
        std::vector<int> const& expected;
    };
    for (Case const& c : {Case{"grey16.png", PNG_FORMAT_LINEAR_Y, 1, kPythonGrey},
             Case{"grey_alpha16.png", PNG_FORMAT_LINEAR_Y_ALPHA, 2, kPythonColour},
             Case{"rgb16.png", PNG_FORMAT_LINEAR_RGB, 3, kPythonColour},
             Case{"rgba16.png", PNG_FORMAT_LINEAR_RGB_ALPHA, 4, kPythonColour}})
    {
        fs::path const path = folder / c.name;
        write16(path, c.format, c.channels);
        sample::RgbImage const image = sample::readPng(path.string());
        EXPECT(image.width == static_cast<int>(kSamples.size()) && image.height == 1);
        int mismatches = 0;
        for (size_t x = 0; x < kSamples.size() && image.pixels.size() == kSamples.size() * 3; ++x)
        {
            for (int channel = 0; channel < 3; ++channel)
            {
                mismatches += image.pixels[x * 3 + channel] != c.expected[x] ? 1 : 0;
            }
        }
        if (mismatches != 0)
        {
            std::printf("%s: %d samples differ from Python's\n", c.name, mismatches);
        }
        EXPECT(mismatches == 0);
    }
}

// IHDR bit depth and colour type of a PNG file.
std::pair<int, int> depthAndColour(fs::path const& path)
{
    std::ifstream file(path, std::ios::binary);
    std::vector<char> header(26);
    file.read(header.data(), static_cast<std::streamsize>(header.size()));
    return {static_cast<unsigned char>(header[24]), static_cast<unsigned char>(header[25])};
}

void testWriteLabels(fs::path const& folder)
{
    // 300 classes: 16-bit grey indices, read back unchanged (Python writes I;16 the same way).
    std::vector<int32_t> const labels{0, 255, 256, 299, 7, 260};
    fs::path const wide = folder / "labels300.png";
    sample::writeLabelPng(wide.string(), 3, 2, labels, sample::palette(300));
    EXPECT((depthAndColour(wide) == std::pair<int, int>{16, PNG_COLOR_TYPE_GRAY}));
    png_image png{};
    png.version = PNG_IMAGE_VERSION;
    std::vector<png_uint_16> read(labels.size());
    bool const ok = png_image_begin_read_from_file(&png, wide.c_str()) != 0
        && (png.format = PNG_FORMAT_LINEAR_Y, png_image_finish_read(&png, nullptr, read.data(), 0, nullptr) != 0);
    EXPECT(ok);
    EXPECT(std::vector<int32_t>(read.begin(), read.end()) == labels);

    // Up to 256 classes: an 8-bit palette PNG, as before.
    fs::path const narrow = folder / "labels150.png";
    sample::writeLabelPng(narrow.string(), 2, 1, {0, 149}, sample::palette(150));
    EXPECT((depthAndColour(narrow) == std::pair<int, int>{8, PNG_COLOR_TYPE_PALETTE}));

    // A label without a class is refused and nothing is left behind.
    fs::path const refused = folder / "refused.png";
    bool threw = false;
    try
    {
        sample::writeLabelPng(refused.string(), 1, 1, {300}, sample::palette(300));
    }
    catch (std::runtime_error const&)
    {
        threw = true;
    }
    EXPECT(threw && !fs::exists(refused) && !fs::exists(refused.string() + ".partial"));
}

void testPluginLibrary(fs::path const& folder)
{
    fs::path const engines = folder / "engines";
    fs::create_directories(engines);
    fs::path const engine = engines / "model.plan";
    {
        std::ofstream sidecar(engine.string() + ".json");
        sidecar << R"({"plugin_library": "lib/libalgm_plugins.so", "deployment": {"image_size": [32, 32],
            "normalization": {"mean": [0, 0, 0], "std": [1, 1, 1]}, "class_names": ["a", "b"]}})";
    }
    // Read from another working directory: the relative path is the engine folder's, never the working one's.
    fs::path const previous = fs::current_path();
    fs::current_path(folder);
    sample::Deployment const deployment = sample::readEngineSidecar("engines/model.plan");
    fs::current_path(previous);
    EXPECT(deployment.pluginLibrary == (fs::absolute(engines) / "lib/libalgm_plugins.so").lexically_normal().string());
    EXPECT(sample::resolvePluginLibrary("/e/model.plan", "/opt/lib.so") == "/opt/lib.so");
    EXPECT(sample::resolvePluginLibrary("/e/f/model.plan", "../lib.so") == "/e/lib.so");
    EXPECT(sample::resolvePluginLibrary("/e/model.plan", "lib.so") == "/e/lib.so");
    EXPECT(sample::resolvePluginLibrary("/e/model.plan", "").empty());
}

// The sliding window's size as Python's resized_size: a 1080p frame fits; a 1x2000 strip, which would become
// 512x1,048,576 once its short side fits the window, is refused before any allocation (it was std::bad_alloc).
void testSlidingSizeLimit()
{
    auto const [height, width] = sample::slidingSize(1080, 1920, 512, 512);
    EXPECT(height == 512 && width == 910);
    for (auto [h, w] : {std::pair{1, 2000}, {2000, 1}, {60, 8000}})
    {
        bool refused = false;
        try
        {
            sample::slidingSize(h, w, 512, 512);
        }
        catch (std::invalid_argument const& error)
        {
            refused = std::string(error.what()).find("above the 16 MP supported") != std::string::npos;
        }
        EXPECT(refused);
    }
}

#ifdef ALGM_SEGMENT_TEST_TRT
void testOutputsBeforeARun()
{
    nvinfer1::Dims dataDependent{};
    dataDependent.nbDims = 2;
    dataDependent.d[0] = 1;
    dataDependent.d[1] = -1;
    nvinfer1::Dims known{};
    known.nbDims = 2;
    known.d[0] = 2;
    known.d[1] = 3;
    for (auto [shape, hasData] : {std::pair{dataDependent, true}, {known, false}, {nvinfer1::Dims{}, false}})
    {
        bool threw = false;
        try
        {
            sample::hostBytes(shape, nvinfer1::DataType::kFLOAT, hasData, "logits");
        }
        catch (std::runtime_error const& error)
        {
            threw = std::string(error.what()).find("'logits' has no data yet") != std::string::npos;
        }
        EXPECT(threw);
    }
    EXPECT(sample::hostBytes(known, nvinfer1::DataType::kINT64, true, "labels") == 2 * 3 * 8);
}
#endif

} // namespace

int main(int argc, char** argv)
{
    if (argc != 2)
    {
        std::fprintf(stderr, "usage: %s SCRATCH_FOLDER\n", argv[0]);
        return 2;
    }
    fs::path const folder = fs::absolute(argv[1]);
    fs::remove_all(folder);
    fs::create_directories(folder);
    testRead16(folder);
    testWriteLabels(folder);
    testPluginLibrary(folder);
    testSlidingSizeLimit();
#ifdef ALGM_SEGMENT_TEST_TRT
    testOutputsBeforeARun();
#endif
    std::printf(gFailures == 0 ? "algm_segment unit test: all checks passed\n" : "%d check(s) failed\n", gFailures);
    return gFailures == 0 ? 0 : 1;
}
