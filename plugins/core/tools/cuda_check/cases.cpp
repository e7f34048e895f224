#include "check.h"

#include "algm/math.h"

#include <cmath>
#include <random>

namespace algm::check
{
namespace
{

constexpr DataType kDtypes[] = {DataType::kFloat32, DataType::kFloat16};

char const* dtypeName(DataType dtype)
{
    return dtype == DataType::kFloat16 ? "fp16" : "fp32";
}

char const* ruleName(int32_t perImage)
{
    return perImage ? " per-image" : " min";
}

size_t tokenCount(LocalMergeParams const& p)
{
    return 1 + static_cast<size_t>(p.gridH) * p.gridW;
}

// Photo-like tokens: each patch is one of a few region vectors (regions are blobs of the grid) plus
// noise of a per-patch strength, so window similarities spread over [0, 1] and thresholds bite.
std::vector<float> photoLikeTokens(LocalMergeParams const& p, uint32_t seed)
{
    std::mt19937 random(seed);
    std::normal_distribution<float> normal;
    std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
    size_t const tokens = tokenCount(p);
    std::vector<float> values(p.batch * tokens * p.channels);
    for (int32_t b = 0; b < p.batch; ++b)
    {
        std::vector<float> regions(4 * p.channels);
        for (float& v : regions)
        {
            v = normal(random);
        }
        for (size_t t = 0; t < tokens; ++t)
        {
            int32_t const patch = static_cast<int32_t>(t) - 1;
            int32_t const row = t == 0 ? 0 : patch / p.gridW;
            int32_t const col = t == 0 ? 0 : patch % p.gridW;
            int32_t const region = ((row * 3 / p.gridH) + (col * 2 / p.gridW) + b) % 4;
            float const noise = 0.6f * uniform(random) * uniform(random);
            for (int32_t c = 0; c < p.channels; ++c)
            {
                values[(b * tokens + t) * p.channels + c] = regions[region * p.channels + c] + noise * normal(random);
            }
        }
    }
    return values;
}

// Structured tokens with exact ties and zero-norm tokens: every window identical, or zeros and ones.
std::vector<float> structuredTokens(LocalMergeParams const& p, bool withZeros)
{
    size_t const tokens = tokenCount(p);
    std::vector<float> values(p.batch * tokens * p.channels, 1.0f);
    if (withZeros)
    {
        for (size_t i = 0; i < values.size(); ++i)
        {
            values[i] = (i / p.channels) % 3 == 1 ? 1.0f : 0.0f;
        }
    }
    return values;
}

} // namespace

void checkCuda(cudaError_t error, char const* what)
{
    if (error != cudaSuccess)
    {
        throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(error));
    }
}

Activations::Activations(DataType type, std::vector<float> const& values)
    : dtype(type)
    , bytes(values.size() * (type == DataType::kFloat16 ? 2 : 4))
{
    for (size_t i = 0; i < values.size(); ++i)
    {
        if (dtype == DataType::kFloat16)
        {
            reinterpret_cast<uint16_t*>(bytes.data())[i] = floatToHalfBits(values[i]);
        }
        else
        {
            reinterpret_cast<float*>(bytes.data())[i] = values[i];
        }
    }
}

size_t Activations::elementSize() const
{
    return dtype == DataType::kFloat16 ? 2 : 4;
}

size_t Activations::elements() const
{
    return bytes.size() / elementSize();
}

float Activations::at(size_t index) const
{
    return dtype == DataType::kFloat16 ? halfBitsToFloat(reinterpret_cast<uint16_t const*>(bytes.data())[index])
                                       : reinterpret_cast<float const*>(bytes.data())[index];
}

std::vector<LocalMergeInput> localMergeCases()
{
    struct Shape
    {
        LocalMergeParams params;
        char const* kind; // photo-like, ties, zeros
    };
    // The last parameter: perImage (1: per-image r_b and padded outputs, 0: the published batch minimum).
    Shape const shapes[] = {
        {{1, 192, 32, 32, 2, 2, 0.88f, 0}, "photo-like"},
        {{2, 192, 32, 32, 2, 2, 0.88f, 0}, "photo-like"},
        {{2, 192, 32, 32, 2, 2, 0.88f, 1}, "photo-like"},
        {{4, 384, 32, 32, 2, 2, 0.80f, 0}, "photo-like"},
        {{4, 384, 32, 32, 2, 2, 0.80f, 1}, "photo-like"},
        {{3, 67, 16, 24, 2, 3, 0.70f, 0}, "photo-like"},
        {{3, 67, 16, 24, 2, 3, 0.70f, 1}, "photo-like"},
        {{5, 40, 64, 64, 2, 2, 0.90f, 1}, "photo-like"},
        {{2, 8, 4, 6, 2, 3, -1.0f + 1e-6f, 0}, "photo-like"},
        {{2, 16, 8, 8, 2, 2, 0.90f, 0}, "ties"},
        {{2, 16, 8, 8, 2, 2, 0.90f, 1}, "ties"},
        {{2, 8, 8, 8, 4, 4, 0.10f, 1}, "zeros"},
    };
    std::vector<LocalMergeInput> cases;
    uint32_t seed = 1;
    for (Shape const& shape : shapes)
    {
        std::string const kind = shape.kind;
        std::vector<float> const values = kind == "photo-like" ? photoLikeTokens(shape.params, seed++)
                                                               : structuredTokens(shape.params, kind == "zeros");
        for (DataType dtype : kDtypes)
        {
            LocalMergeParams const& p = shape.params;
            std::string const name = kind + " B" + std::to_string(p.batch) + " " + std::to_string(p.gridH) + "x"
                + std::to_string(p.gridW) + " C" + std::to_string(p.channels) + " " + dtypeName(dtype)
                + ruleName(p.perImage);
            cases.push_back({name, p, Activations(dtype, values)});
        }
    }
    return cases;
}

std::vector<LocalMergeInput> localMergeTimingCases()
{
    std::vector<LocalMergeInput> cases;
    for (int32_t channels : {384, 768})
    {
        for (int32_t batch : {1, 8, 32})
        {
            LocalMergeParams const p{batch, channels, 32, 32, 2, 2, 0.88f, 1};
            std::vector<float> const values = photoLikeTokens(p, 100 + batch);
            for (DataType dtype : kDtypes)
            {
                cases.push_back({dtypeName(dtype), p, Activations(dtype, values)});
            }
        }
    }
    return cases;
}

GlobalMergeInput chainedGlobalMerge(LocalMergeInput const& local, MergeOutput const& merged, int32_t layerNumber)
{
    LocalMergeParams const& p = local.params;
    GlobalMergeParams const params{
        p.batch, static_cast<int32_t>(merged.numTokens), p.channels, p.gridH * p.gridW, layerNumber, p.perImage};
    Activations tokens(local.tokens.dtype, {});
    tokens.bytes = merged.merged;
    return {local.name, params, tokens, merged.sizes, merged.map};
}

std::vector<GlobalMergeInput> globalMergeCases()
{
    // Odd and even token counts, random sizes and maps, tokens 2 and 3 (too few to merge); per image, the
    // last 5b tokens of image b are padding (size 0) as a per-image merge leaves them.
    std::vector<GlobalMergeInput> cases;
    std::mt19937 random(7);
    std::normal_distribution<float> normal;
    for (int32_t perImage : {0, 1})
    {
        for (int32_t tokens : {2, 3, 64, 257, 1000})
        {
            int32_t const batch = 3;
            int32_t const channels = 48;
            int32_t const patches = 2 * tokens;
            std::vector<float> values(batch * tokens * channels);
            for (float& v : values)
            {
                v = normal(random);
            }
            std::vector<float> sizes(batch * tokens);
            std::vector<int32_t> map(batch * patches);
            for (int32_t b = 0; b < batch; ++b)
            {
                int32_t const real = perImage && tokens > 2 + 5 * b ? tokens - 5 * b : tokens;
                for (int32_t t = 0; t < tokens; ++t)
                {
                    sizes[b * tokens + t] = t < real ? static_cast<float>(1 + random() % 4) : 0.0f;
                }
                for (int32_t i = 0; i < patches; ++i)
                {
                    map[b * patches + i] = static_cast<int32_t>(random() % (real - 1));
                }
            }
            for (DataType dtype : kDtypes)
            {
                std::string const name
                    = "random T" + std::to_string(tokens) + " " + dtypeName(dtype) + ruleName(perImage);
                cases.push_back(
                    {name, {batch, tokens, channels, patches, 3, perImage}, Activations(dtype, values), sizes, map});
            }
        }
    }
    // A batch above CUDA's gridDim.y limit (65535): every image must be matched, the last ones included.
    int32_t const batch = 65537;
    int32_t const tokens = 5;
    int32_t const channels = 4;
    int32_t const patches = 8;
    std::vector<float> values(static_cast<size_t>(batch) * tokens * channels);
    for (float& v : values)
    {
        v = normal(random);
    }
    std::vector<float> const sizes(static_cast<size_t>(batch) * tokens, 1.0f);
    std::vector<int32_t> map(static_cast<size_t>(batch) * patches);
    for (int32_t& entry : map)
    {
        entry = static_cast<int32_t>(random() % (tokens - 1));
    }
    cases.push_back({"large batch B65537 T5 fp32 per-image", {batch, tokens, channels, patches, 3, 1},
        Activations(DataType::kFloat32, values), sizes, map});

    // Out-of-range token-map entries (-1, T - 1, a large one): the same outputs on both backends (-1 in the
    // merged map, then zero rows in the Unmerge that follows), and the CPU's kInvalidArgument.
    std::vector<float> const few(values.begin(), values.begin() + 2 * tokens * channels);
    std::vector<int32_t> bad(map.begin(), map.begin() + 2 * patches);
    bad[1] = -1;
    bad[patches + 2] = tokens - 1;
    bad[patches + 5] = 1000;
    for (int32_t perImage : {0, 1})
    {
        GlobalMergeInput input{std::string("out-of-range map T5 fp32") + ruleName(perImage),
            {2, tokens, channels, patches, 3, perImage}, Activations(DataType::kFloat32, few),
            std::vector<float>(2 * tokens, 1.0f), bad};
        input.mapOutOfRange = true;
        cases.push_back(input);
    }
    return cases;
}

UnmergeInput unmergeCase(GlobalMergeInput const& input, MergeOutput const& merged)
{
    // The patch tokens of the merged output (class token dropped), gathered through the new map.
    GlobalMergeParams const& p = input.params;
    int32_t const rows = static_cast<int32_t>(merged.numTokens) - 1;
    Activations values(input.tokens.dtype, {});
    size_t const rowBytes = p.channels * input.tokens.elementSize();
    for (int32_t b = 0; b < p.batch; ++b)
    {
        auto const first = merged.merged.begin() + (b * merged.numTokens + 1) * rowBytes;
        values.bytes.insert(values.bytes.end(), first, first + rows * rowBytes);
    }
    UnmergeInput spread{input.name, {p.batch, rows, p.channels, p.patches}, values, merged.map};
    spread.mapOutOfRange = input.mapOutOfRange; // -1 entries in the merged map
    return spread;
}

} // namespace algm::check
