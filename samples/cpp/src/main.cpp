// algm_segment: semantic segmentation of one PNG with a model exported by algm-export.
//
//   algm_segment MODEL IMAGE -o OUT.png [--ort-ops libalgm_ort_ops.so] [--plugins libalgm_plugins.so]
//                [--runs 1] [--warmup 0]
//
// MODEL: an ONNX graph (.onnx, run by ONNX Runtime on the CPU; its deployment info comes from the graph's
// metadata) or a TensorRT engine (.plan/.engine, with its sidecar <engine>.json and the algm plugins).
// Resizes and normalizes the image like the Python pipeline (algm_export.runtime.segment), runs batch 1,
// takes the argmax (or the graph's `labels` output), resizes the label map to the image's own size and
// writes it as a class-index PNG with the palette shared with Python. Prints the median latency and the
// token counts after each ALGM merge. Exit 2 for bad arguments or input files, 1 for a runtime failure.
#include "backend.h"
#include "labels.h"
#include "png_io.h"
#include "preprocess.h"
#include "resize.h"
#include "sliding.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

namespace
{
using namespace sample;

struct Options
{
    std::string model;
    std::string image;
    std::string output;
    std::string ortOps;  // ONNX Runtime: custom-op library for the algm nodes of model.trt.onnx
    std::string plugins; // TensorRT: default the sidecar's plugin_library
    int runs = 1;
    int warmup = 0;
};

// Bad input: reported in one line, exit 2.
struct BadInput : std::runtime_error
{
    using std::runtime_error::runtime_error;
};

constexpr char kUsage[]
    = "usage: algm_segment MODEL IMAGE -o OUT.png [--ort-ops LIB] [--plugins LIB] [--runs N] [--warmup N]\n";

[[noreturn]] void usage(std::string const& problem)
{
    std::fprintf(stderr, "algm_segment: %s\n%s", problem.c_str(), kUsage);
    std::exit(2);
}

// --help / -h: what the program does and its options, on stdout, exit 0.
[[noreturn]] void help()
{
    std::printf("%s\n"
                "Segments one PNG with a model exported by algm-export and writes its class-index PNG.\n\n"
                "  MODEL            an ONNX graph (.onnx, ONNX Runtime on the CPU) or a TensorRT engine\n"
                "                   (.plan/.engine, with its sidecar <engine>.json)\n"
                "  IMAGE            a PNG (grey, palette, RGB, with or without alpha, 8 or 16 bit)\n"
                "  -o, --output     the class-index PNG to write (8-bit palette, 16-bit above 256 classes)\n"
                "  --ort-ops LIB    libalgm_ort_ops.so, for the algm nodes of model.trt.onnx\n"
                "  --plugins LIB    TensorRT plugin library (default: the sidecar's plugin_library, relative\n"
                "                   to the engine's folder)\n"
                "  --runs N         timed runs (default 1)\n"
                "  --warmup N       untimed runs first (default 0)\n"
                "  -h, --help       this help\n\n"
                "Exit status: 0 done, 2 bad arguments or input files, 1 runtime failure.\n",
        kUsage);
    std::exit(0);
}

int count(char const* value, std::string const& option, int minimum)
{
    char* end = nullptr;
    long const parsed = std::strtol(value, &end, 10);
    if (end == value || *end != '\0' || parsed < minimum || parsed > 100000)
    {
        usage(option + " needs a whole number >= " + std::to_string(minimum));
    }
    return static_cast<int>(parsed);
}

Options parseOptions(int argc, char** argv)
{
    Options options;
    std::vector<std::string> positional;
    for (int i = 1; i < argc; ++i)
    {
        std::string const option = argv[i];
        if (option.empty() || option[0] != '-')
        {
            positional.push_back(option);
            continue;
        }
        if (option == "-h" || option == "--help")
        {
            help();
        }
        if (i + 1 >= argc)
        {
            usage(option + " needs a value");
        }
        char const* value = argv[++i];
        if (option == "-o" || option == "--output")
            options.output = value;
        else if (option == "--ort-ops")
            options.ortOps = value;
        else if (option == "--plugins")
            options.plugins = value;
        else if (option == "--runs")
            options.runs = count(value, option, 1);
        else if (option == "--warmup")
            options.warmup = count(value, option, 0);
        else
            usage("unknown option " + option);
    }
    if (positional.size() != 2 || options.output.empty())
    {
        usage("expected MODEL IMAGE -o OUT.png");
    }
    options.model = positional[0];
    options.image = positional[1];
    return options;
}

float median(std::vector<float> values)
{
    std::sort(values.begin(), values.end());
    size_t const middle = values.size() / 2;
    return values.size() % 2 == 1 ? values[middle] : (values[middle - 1] + values[middle]) / 2.F;
}

std::unique_ptr<Backend> openBackend(Options const& options)
{
    if (!std::filesystem::is_regular_file(options.model))
    {
        throw BadInput(options.model + ": no such file");
    }
    std::string const suffix = std::filesystem::path(options.model).extension().string();
    if (suffix != ".onnx" && suffix != ".plan" && suffix != ".engine")
    {
        throw BadInput(options.model + ": expected an .onnx graph or a .plan/.engine TensorRT engine");
    }
    try // a model that cannot be opened is bad input
    {
        return suffix == ".onnx" ? openOnnxRuntime(options.model, options.ortOps)
                                 : openTensorRT(options.model, options.plugins);
    }
    catch (std::runtime_error const& error)
    {
        throw BadInput(error.what());
    }
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

// The label map of one run at the model's input size: the model's labels, or the argmax of its logits.
LabelMap singleWindowLabels(Inference const& inference, Deployment const& model, int classes)
{
    size_t const plane = static_cast<size_t>(model.width) * model.height;
    if (!inference.labels.empty())
    {
        if (inference.labels.size() != plane)
        {
            throw std::runtime_error("labels: expected [1, H, W] at the model's input size");
        }
        return LabelMap{model.width, model.height, inference.labels};
    }
    if (inference.logits.size() != plane * static_cast<size_t>(classes))
    {
        throw std::runtime_error("logits: expected [1, " + std::to_string(classes) + ", " + std::to_string(model.height)
            + ", " + std::to_string(model.width) + "] (one per class name)");
    }
    return argmaxClasses(inference.logits, classes, model.height, model.width);
}

int run(Options const& options)
{
    RgbImage image;
    try
    {
        image = readPng(options.image);
    }
    catch (std::runtime_error const& error)
    {
        throw BadInput(error.what());
    }
    std::unique_ptr<Backend> backend = openBackend(options);
    Deployment const& model = backend->deployment();
    int const classes = static_cast<int>(model.classNames.size());
    Inference inference;
    LabelMap labels;
    bool const oneWindow = image.width == model.width && image.height == model.height;
    if (model.imSize > 0 && !backend->hasClassScores() && !oneWindow)
    {
        // As algm_export.runtime.sliding says it: labels are taken as they are only for an image of one window.
        throw BadInput(options.model
            + ": this model outputs only labels, which cannot be averaged over windows or "
              "resized; images must be "
            + std::to_string(model.width) + "x" + std::to_string(model.height)
            + " or the model re-exported with --outputs labels,scores");
    }
    if (model.imSize > 0 && !(oneWindow && !backend->hasClassScores())) // Segmenter's sliding-window settings
    {
        try
        {
            labels = slidingLabels(*backend, image, inference.latenciesMs, inference.tokenCounts);
        }
        catch (std::invalid_argument const& error) // an image shape the sliding window refuses
        {
            throw BadInput(options.image + ": " + error.what());
        }
    }
    else
    {
        std::vector<float> const input
            = normalize(resizeBilinear(image, model.width, model.height), model.mean, model.std);
        inference = backend->run(input, options.warmup, options.runs, false);
        labels = singleWindowLabels(inference, model, classes);
        labels = resizeNearest(labels, image.width, image.height);
    }
    writeLabelPng(options.output, labels.width, labels.height, labels.labels, palette(classes));

    std::printf("wrote %s (%dx%d class indices)\n", options.output.c_str(), image.width, image.height);
    std::printf("latency: median %.3f ms over %zu runs (batch 1, 3x%dx%d)\n", median(inference.latenciesMs),
        inference.latenciesMs.size(), model.height, model.width);
    if (!inference.tokenCounts.empty())
    {
        std::printf("tokens after each merge (class token included):");
        for (int64_t tokens : inference.tokenCounts)
        {
            std::printf(" %lld", static_cast<long long>(tokens));
        }
        std::printf("\n");
    }
    printClasses(labels, model.classNames);
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
    catch (BadInput const& error)
    {
        std::fprintf(stderr, "algm_segment: %s\n", error.what());
        return 2;
    }
    catch (std::exception const& error)
    {
        std::fprintf(stderr, "algm_segment: %s\n", error.what());
        return 1;
    }
}
