// algm_segment: semantic segmentation of one PNG with a TensorRT engine exported by algm-export.
//
//   algm_segment --engine model.fp16.plan --image photo.png [--output labels.png]
//                [--plugins libalgm_plugins.so] [--runs 50] [--warmup 5]
//
// Reads the engine's sidecar (<engine>.json) for the input name and size, the normalization, the class
// names and the plugin library; loads the plugins; resizes and normalizes the image like the Python
// pipeline; runs the engine at batch 1; writes the colour label map at the image's own size; prints the
// median latency and the token counts after each ALGM merge.
#include "labels.h"
#include "png_io.h"
#include "preprocess.h"
#include "resize.h"
#include "sidecar.h"
#include "trt_session.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

namespace
{
using namespace sample;

constexpr char kLogits[] = "logits";             // [B, classes, H, W] float32
constexpr char kTokenCounts[] = "token_counts"; // [merges] int64, present with ALGM

struct Options
{
    std::string engine;
    std::string image;
    std::string output = "labels.png";
    std::string plugins; // default: the sidecar's plugin_library
    int runs = 50;
    int warmup = 5;
};

[[noreturn]] void usage(char const* problem)
{
    std::fprintf(stderr,
        "algm_segment: %s\n"
        "usage: algm_segment --engine model.fp16.plan --image photo.png [--output labels.png]\n"
        "                    [--plugins libalgm_plugins.so] [--runs 50] [--warmup 5]\n",
        problem);
    std::exit(2);
}

int count(char const* value, char const* option, int minimum)
{
    char* end = nullptr;
    long const parsed = std::strtol(value, &end, 10);
    if (end == value || *end != '\0' || parsed < minimum || parsed > 100000)
    {
        usage((std::string(option) + " needs a whole number >= " + std::to_string(minimum)).c_str());
    }
    return static_cast<int>(parsed);
}

Options parseOptions(int argc, char** argv)
{
    Options options;
    for (int i = 1; i < argc; i += 2)
    {
        std::string const option = argv[i];
        if (i + 1 >= argc)
        {
            usage((option + " needs a value").c_str());
        }
        char const* value = argv[i + 1];
        if (option == "--engine")
            options.engine = value;
        else if (option == "--image")
            options.image = value;
        else if (option == "--output")
            options.output = value;
        else if (option == "--plugins")
            options.plugins = value;
        else if (option == "--runs")
            options.runs = count(value, "--runs", 1);
        else if (option == "--warmup")
            options.warmup = count(value, "--warmup", 0);
        else
            usage(("unknown option " + option).c_str());
    }
    if (options.engine.empty() || options.image.empty())
    {
        usage("--engine and --image are required");
    }
    return options;
}

// The sidecar's plugin_library: an absolute path as written; a relative one resolved against the sidecar's
// folder when the file is there (made absolute: dlopen searches the library path, not the working directory,
// for names without a slash); otherwise as written.
std::string pluginPath(std::string const& sidecarPath, std::string const& library)
{
    std::filesystem::path const written(library);
    if (library.empty() || written.is_absolute())
    {
        return library;
    }
    std::filesystem::path const nextToSidecar = std::filesystem::path(sidecarPath).parent_path() / written;
    return std::filesystem::exists(nextToSidecar) ? std::filesystem::absolute(nextToSidecar).string() : library;
}

float median(std::vector<float> values)
{
    std::sort(values.begin(), values.end());
    size_t const middle = values.size() / 2;
    return values.size() % 2 == 1 ? values[middle] : (values[middle - 1] + values[middle]) / 2.F;
}

template <typename T>
std::vector<T> elements(HostTensor const& tensor)
{
    std::vector<T> values(tensor.bytes.size() / sizeof(T));
    std::memcpy(values.data(), tensor.bytes.data(), values.size() * sizeof(T));
    return values;
}

void printClasses(LabelMap const& labels, std::vector<std::string> const& names)
{
    int const classes = static_cast<int>(names.size());
    std::vector<int64_t> const histogram = classHistogram(labels, classes);
    std::vector<int> order(static_cast<size_t>(classes));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return histogram[a] > histogram[b]; });
    double const total = static_cast<double>(labels.labels.size());
    std::printf("classes by area:");
    for (size_t i = 0; i < order.size() && i < 5 && histogram[order[i]] > 0; ++i)
    {
        std::printf(" %s %.1f%%", names[order[i]].c_str(), 100.0 * histogram[order[i]] / total);
    }
    std::printf("\n");
}

int run(Options const& options)
{
    std::string const sidecarPath = options.engine + ".json";
    Sidecar const sidecar = readSidecar(sidecarPath);

    std::string const plugins
        = options.plugins.empty() ? pluginPath(sidecarPath, sidecar.pluginLibrary) : options.plugins;
    if (!plugins.empty())
    {
        loadPluginLibrary(plugins);
    }

    RgbImage const image = readPng(options.image);
    std::vector<float> const input
        = normalize(resizeBilinear(image, sidecar.width, sidecar.height), sidecar.mean, sidecar.std);

    Logger logger;
    Session session(options.engine, logger);
    session.setInput(sidecar.inputName, nvinfer1::Dims4{1, 3, sidecar.height, sidecar.width}, input);
    std::vector<float> const latencies = session.run(options.warmup, options.runs);

    HostTensor const logits = session.output(kLogits);
    int const classes = static_cast<int>(sidecar.classNames.size());
    if (logits.type != nvinfer1::DataType::kFLOAT || logits.shape.nbDims != 4 || logits.shape.d[0] != 1
        || logits.shape.d[1] != classes || logits.shape.d[2] != sidecar.height || logits.shape.d[3] != sidecar.width)
    {
        throw std::runtime_error("logits: expected float32 [1, " + std::to_string(classes) + ", "
            + std::to_string(sidecar.height) + ", " + std::to_string(sidecar.width) + "] (one logit per class name)");
    }
    LabelMap const labels = resizeNearest(
        argmaxClasses(elements<float>(logits), classes, sidecar.height, sidecar.width), image.width, image.height);
    writePng(options.output, colorize(labels));

    std::printf("wrote %s (%dx%d)\n", options.output.c_str(), image.width, image.height);
    std::printf("latency: median %.3f ms over %d runs (batch 1, 3x%dx%d; CUDA events around enqueueV3)\n",
        median(latencies), options.runs, sidecar.height, sidecar.width);
    bool const listsTokenCounts = std::find(sidecar.outputNames.begin(), sidecar.outputNames.end(), kTokenCounts)
        != sidecar.outputNames.end();
    if (listsTokenCounts && session.hasTensor(kTokenCounts))
    {
        HostTensor const counts = session.output(kTokenCounts);
        if (counts.type != nvinfer1::DataType::kINT64)
        {
            throw std::runtime_error("token_counts: expected int64");
        }
        std::printf("tokens after each merge (class token included):");
        for (int64_t tokens : elements<int64_t>(counts))
        {
            std::printf(" %lld", static_cast<long long>(tokens));
        }
        std::printf("\n");
    }
    printClasses(labels, sidecar.classNames);
    return 0;
}
} // namespace

int main(int argc, char** argv)
{
    Options const options = parseOptions(argc, argv);
    try
    {
        return run(options);
    }
    catch (std::exception const& error)
    {
        std::fprintf(stderr, "algm_segment: %s\n", error.what());
        return 1;
    }
}
