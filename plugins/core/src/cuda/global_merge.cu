// CUDA GlobalMerge (GBM). Steps, all queued on the stream without host synchronisation:
// divisors -> best B match of every A token (tiled dot products) -> per-image mean/std -> thresholds
// -> per-image counts -> r_b, T'_b and T' -> A ranks -> slots (block scan per image) -> merged map -> scatter-mean.
#include "algm/kernels.h"
#include "algm/math.h"
#include "../common/dispatch.h"
#include "../common/validate.h"
#include "../common/workspace_layout.h"
#include "launch.cuh"
#include "scatter_mean.cuh"
#include "selection.cuh"
#include "unit_divisors.cuh"

#include <cub/block/block_scan.cuh>
#include <cuda_fp16.h>

#include <algorithm>
#include <climits>

namespace algm::cuda
{
namespace
{

using namespace detail;

// Best-match tiling: a block holds kMatchRows A tokens (kRowsPerWarp per warp) and walks the B tokens
// kMatchCols at a time (one per lane), staging kChannelChunk channels of unit vectors in shared memory.
constexpr int kMatchWarps = 8;
constexpr int kRowsPerWarp = 2;
constexpr int kMatchRows = kMatchWarps * kRowsPerWarp;
constexpr int kMatchCols = 32;
constexpr int kChannelChunk = 32;
// CUDA's limit on gridDim.y; larger batches are covered by the kernel's loop over images.
constexpr int32_t kMaxGridY = 65535;

struct BipartiteShape
{
    int32_t tokens; // T
    int32_t channels;
    int32_t countA; // ceil(T/2): tokens 0, 2, 4, ...
    int32_t countB; // floor(T/2): tokens 1, 3, 5, ...
};

// bestScore/bestMatch of every A token of each image among its real B tokens (the class token and
// padding A tokens: -inf, 0). Each dot product runs over the channels in order, like the CPU build, so the
// scores agree bit for bit.
template <typename Storage>
__global__ void __launch_bounds__(kMatchWarps * 32) bestMatchKernel(Storage const* tokens, float const* divisors,
    float const* sizes, BipartiteShape s, int32_t batch, float* bestScore, int32_t* bestMatch)
{
    __shared__ float aTile[kMatchRows][kChannelChunk + 1];
    __shared__ float bTile[kMatchCols][kChannelChunk + 1];
    int const lane = threadIdx.x % 32;
    int const warp = threadIdx.x / 32;
    // Images in a grid-stride loop over y: gridDim.y is capped at 65535, the batch is not.
    for (int64_t image = blockIdx.y; image < batch; image += gridDim.y)
    {
        int const firstA = blockIdx.x * kMatchRows;
        Storage const* imageTokens = tokens + image * s.tokens * s.channels;
        float const* imageDivisors = divisors + image * s.tokens;
        float const* imageSizes = sizes + image * s.tokens;

        // Unit component of token `token`, channel `channel`, or 0 outside the tensor.
        auto unit = [&](int token, bool valid, int channel) {
            return valid ? unitComponent(loadFloat(imageTokens[static_cast<int64_t>(token) * s.channels + channel]),
                               imageDivisors[token])
                         : 0.0f;
        };

        float best[kRowsPerWarp];
        int bestIndex[kRowsPerWarp];
        for (int i = 0; i < kRowsPerWarp; ++i)
        {
            best[i] = negativeInfinity();
            bestIndex[i] = 0;
        }
        for (int firstB = 0; firstB < s.countB; firstB += kMatchCols)
        {
            float dot[kRowsPerWarp] = {};
            for (int firstChannel = 0; firstChannel < s.channels; firstChannel += kChannelChunk)
            {
                int const width = min(kChannelChunk, s.channels - firstChannel);
                for (int e = threadIdx.x; e < kMatchRows * kChannelChunk; e += blockDim.x)
                {
                    int const row = e / kChannelChunk;
                    int const c = e % kChannelChunk;
                    int const a = firstA + row;
                    aTile[row][c] = unit(2 * a, a < s.countA && c < width, firstChannel + c);
                }
                for (int e = threadIdx.x; e < kMatchCols * kChannelChunk; e += blockDim.x)
                {
                    int const col = e / kChannelChunk;
                    int const c = e % kChannelChunk;
                    int const j = firstB + col;
                    bTile[col][c] = unit(2 * j + 1, j < s.countB && c < width, firstChannel + c);
                }
                __syncthreads();
                for (int c = 0; c < width; ++c)
                {
                    float const bValue = bTile[lane][c];
                    for (int i = 0; i < kRowsPerWarp; ++i)
                    {
                        dot[i] = addProduct(dot[i], aTile[warp + i * kMatchWarps][c], bValue);
                    }
                }
                __syncthreads();
            }
            // Warp argmax over this tile's B tokens (ties: lowest index); earlier tiles hold lower indices.
            int const j = firstB + lane;
            for (int i = 0; i < kRowsPerWarp; ++i)
            {
                float score = j < s.countB && isRealToken(imageSizes[2 * j + 1]) ? dot[i] : negativeInfinity();
                int index = j < s.countB ? j : INT_MAX;
                for (int offset = 16; offset > 0; offset /= 2)
                {
                    float const otherScore = __shfl_xor_sync(0xffffffffu, score, offset);
                    int const otherIndex = __shfl_xor_sync(0xffffffffu, index, offset);
                    if (betterMatch(otherScore, otherIndex, score, index))
                    {
                        score = otherScore;
                        index = otherIndex;
                    }
                }
                if (betterMatch(score, index, best[i], bestIndex[i]))
                {
                    best[i] = score;
                    bestIndex[i] = index;
                }
            }
        }
        if (lane == 0)
        {
            for (int i = 0; i < kRowsPerWarp; ++i)
            {
                int const a = firstA + warp + i * kMatchWarps;
                if (a < s.countA)
                {
                    bool const candidate = a > 0 && isRealToken(imageSizes[2 * a]);
                    bestScore[image * s.countA + a] = candidate ? best[i] : negativeInfinity();
                    bestMatch[image * s.countA + a] = candidate ? bestIndex[i] : 0;
                }
            }
        }
    }
}

// Per image (one thread each, summing in order like the CPU build): its real tokens T_b, and the mean and
// std of its real best_score[1:].
__global__ void imageStatsKernel(float const* bestScore, float const* sizes, BipartiteShape s, int32_t batch,
    int32_t* inputTokens, float* means, float* stds)
{
    for (int64_t image = threadIndex(); image < batch; image += threadCount())
    {
        float const* imageSizes = sizes + image * s.tokens;
        inputTokens[image] = realTokenCount(imageSizes, s.tokens);
        gbmScoreStats(bestScore + image * s.countA, imageSizes, s.countA, means[image], stds[image]);
    }
}

__global__ void thresholdKernel(
    float const* means, float const* stds, int32_t batch, int32_t layerNumber, bool perImage, float* thresholds)
{
    for (int64_t image = threadIndex(); image < batch; image += threadCount())
    {
        thresholds[image] = gbmImageThreshold(means, stds, batch, static_cast<int>(image), layerNumber, perImage);
    }
}

__global__ void countAtLeastKernel(
    float const* values, int32_t batch, int32_t elements, float const* thresholds, int32_t* counts)
{
    int64_t const total = static_cast<int64_t>(batch) * elements;
    for (int64_t i = threadIndex(); i < total; i += threadCount())
    {
        if (values[i] >= thresholds[i / elements])
        {
            atomicAdd(counts + i / elements, 1);
        }
    }
}

// One block per image: A slots with a block scan over the unmerged A tokens, then the B slots.
__global__ void __launch_bounds__(kThreads) tokenSlotsKernel(
    int32_t const* ranks, int32_t const* bestMatch, float const* sizes, MergeScratch scratch, BipartiteShape s)
{
    using BlockScan = cub::BlockScan<int32_t, kThreads>;
    __shared__ typename BlockScan::TempStorage scanStorage;
    int64_t const image = blockIdx.x;
    int32_t const r = scratch.imageMerges[image];
    int32_t const realA = (scratch.inputTokens[image] + 1) / 2;
    float const* imageSizes = sizes + image * s.tokens;
    int32_t* imageSlots = scratch.slots + image * s.tokens;
    int32_t carried = 0;
    for (int32_t first = 0; first < s.countA; first += kThreads)
    {
        int32_t const a = first + static_cast<int32_t>(threadIdx.x);
        bool const valid = a < s.countA;
        int32_t const rank = valid ? ranks[image * s.countA + a] : 0;
        int32_t unmergedBefore = 0;
        int32_t unmergedInChunk = 0;
        BlockScan(scanStorage).ExclusiveSum(valid && !isMerged(rank, r) ? 1 : 0, unmergedBefore, unmergedInChunk);
        if (valid)
        {
            int32_t const slot = gbmEvenSlot(rank, bestMatch[image * s.countA + a], carried + unmergedBefore, realA, r);
            imageSlots[2 * a] = gbmTokenSlot(imageSizes[2 * a], slot);
        }
        carried += unmergedInChunk;
        __syncthreads(); // scanStorage is reused by the next chunk
    }
    for (int32_t j = threadIdx.x; j < s.countB; j += kThreads)
    {
        imageSlots[2 * j + 1] = gbmTokenSlot(imageSizes[2 * j + 1], gbmOddSlot(j, realA, r));
    }
}

// mergedMap[b, p] = slot(1 + tokenMap[b, p]) - 1; an out-of-range entry gives -1 (math.h's token-map policy).
__global__ void composeMapKernel(
    int32_t const* tokenMap, int32_t const* slots, int32_t batch, int32_t patches, int32_t tokens, int32_t* mergedMap)
{
    int64_t const total = static_cast<int64_t>(batch) * patches;
    for (int64_t i = threadIndex(); i < total; i += threadCount())
    {
        int32_t const token = tokenMap[i];
        int64_t const image = i / patches;
        mergedMap[i] = composedMapEntry(token, tokens, slots + image * tokens);
    }
}

template <typename Storage>
void enqueueGlobalMerge(Storage const* tokens, float const* sizes, int32_t const* tokenMap, Storage* merged,
    float* mergedSizes, int32_t* mergedMap, int64_t* numTokens, GlobalMergeParams const& p,
    GlobalMergeWorkspace const& ws, cudaStream_t stream)
{
    BipartiteShape const s{p.tokens, p.channels, (p.tokens + 1) / 2, p.tokens / 2};
    float* means = ws.imageStats;
    float* stds = ws.imageStats + p.batch;
    launchUnitDivisors(tokens, static_cast<int64_t>(p.batch) * p.tokens, p.channels, ws.divisors, stream);
    dim3 const matchGrid((s.countA + kMatchRows - 1) / kMatchRows, std::min(p.batch, kMaxGridY));
    bestMatchKernel<<<matchGrid, kMatchWarps * 32, 0, stream>>>(
        tokens, ws.divisors, sizes, s, p.batch, ws.bestScore, ws.bestMatch);
    imageStatsKernel<<<gridFor(p.batch), kThreads, 0, stream>>>(
        ws.bestScore, sizes, s, p.batch, ws.scatter.inputTokens, means, stds);
    thresholdKernel<<<gridFor(p.batch), kThreads, 0, stream>>>(
        means, stds, p.batch, p.layerNumber, p.perImage != 0, ws.thresholds);
    countAtLeastKernel<<<gridFor(static_cast<int64_t>(p.batch) * s.countA), kThreads, 0, stream>>>(
        ws.bestScore, p.batch, s.countA, ws.thresholds, ws.scatter.counts);
    launchMergeDecision(ws.scatter, true, p.tokens, p.batch, 1, p.perImage != 0, numTokens, stream);
    launchRanks(ws.bestScore, p.batch, s.countA, ws.ranks, stream);
    tokenSlotsKernel<<<p.batch, kThreads, 0, stream>>>(ws.ranks, ws.bestMatch, sizes, ws.scatter, s);
    composeMapKernel<<<gridFor(static_cast<int64_t>(p.batch) * p.patches), kThreads, 0, stream>>>(
        tokenMap, ws.scatter.slots, p.batch, p.patches, p.tokens, mergedMap);
    ScatterShape const shape{p.batch, p.tokens, p.channels};
    launchScatterOrder(ws.scatter.slots, shape, ws.scatter.order, ws.scatter.ends, stream);
    launchScatterMean(tokens, sizes, ws.scatter.order, ws.scatter.ends, ws.scatter.imageTokens, ws.scatter.outTokens,
        shape, merged, mergedSizes, stream);
}

} // namespace

Status globalMerge(DataType dtype, void const* tokens, float const* sizes, int32_t const* tokenMap, void* merged,
    float* mergedSizes, int32_t* mergedMap, int64_t* numTokens, GlobalMergeParams const& params, void* workspace,
    cudaStream_t stream)
{
    if (!isValid(dtype) || !isValid(params) || !tokens || !sizes || !tokenMap || !merged || !mergedSizes || !mergedMap
        || !numTokens || !workspace)
    {
        return kInvalidArgument;
    }
    GlobalMergeWorkspace const ws(workspace, params);
    if (clearCountersAsync(ws.scatter, params.batch, stream) != cudaSuccess)
    {
        return kCudaError;
    }
    withStorage<__half>(dtype, [&](auto tag) {
        using Storage = typename decltype(tag)::type;
        enqueueGlobalMerge(static_cast<Storage const*>(tokens), sizes, tokenMap, static_cast<Storage*>(merged),
            mergedSizes, mergedMap, numTokens, params, ws, stream);
    });
    return launchStatus();
}

} // namespace algm::cuda
