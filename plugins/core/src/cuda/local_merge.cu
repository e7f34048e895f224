// CUDA LocalMerge (CLAP). Steps, all queued on the stream without host synchronisation:
// divisors -> window gram matrices -> similarities and per-image counts -> r_b, T'_b and T' -> window ranks
// -> patch slots (block scan per image) -> scatter-mean.
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

namespace algm::cuda
{
namespace
{

using namespace detail;

struct WindowGeometry
{
    int32_t batch;
    int32_t channels;
    int32_t gridW;
    int32_t windowH;
    int32_t windowW;
    int32_t patches; // N
    int32_t k;       // tokens per window
    int32_t windows; // W

    explicit WindowGeometry(LocalMergeParams const& p)
        : batch(p.batch)
        , channels(p.channels)
        , gridW(p.gridW)
        , windowH(p.windowH)
        , windowW(p.windowW)
        , patches(p.gridH * p.gridW)
        , k(p.windowH * p.windowW)
        , windows(patches / k)
    {
    }
};

// gram[b, w, i, j] = gram[b, w, j, i] = u_i . u_j for the members i < j of window w: one thread per
// entry of the gram matrix, the threads of entries j <= i idle (unitDot is symmetric bit for bit).
template <typename Storage>
__global__ void windowGramKernel(Storage const* tokens, float const* divisors, WindowGeometry g, float* gram)
{
    int64_t const tokenCount = 1 + g.patches;
    int64_t const entries = static_cast<int64_t>(g.k) * g.k;
    int64_t const total = static_cast<int64_t>(g.batch) * g.windows * entries;
    for (int64_t e = threadIndex(); e < total; e += threadCount())
    {
        int const j = static_cast<int>(e % g.k);
        int const i = static_cast<int>((e / g.k) % g.k);
        if (j <= i)
        {
            continue;
        }
        int64_t const windowRow = e / entries;
        int64_t const image = windowRow / g.windows;
        int const window = static_cast<int>(windowRow - image * g.windows);
        int64_t const ti = image * tokenCount + 1 + patchOfWindowMember(window, i, g.gridW, g.windowH, g.windowW);
        int64_t const tj = image * tokenCount + 1 + patchOfWindowMember(window, j, g.gridW, g.windowH, g.windowW);
        float const dot
            = unitDot(tokens + ti * g.channels, divisors[ti], tokens + tj * g.channels, divisors[tj], g.channels);
        gram[windowRow * entries + i * g.k + j] = dot;
        gram[windowRow * entries + j * g.k + i] = dot;
    }
}

// similarity[b, w] from its gram matrix; counts[b] += 1 when it reaches the threshold.
__global__ void windowSimilarityKernel(
    float const* gram, WindowGeometry g, float threshold, float* similarity, int32_t* counts)
{
    int64_t const total = static_cast<int64_t>(g.batch) * g.windows;
    for (int64_t w = threadIndex(); w < total; w += threadCount())
    {
        float const s = windowSimilarity(gram + w * g.k * g.k, g.k);
        similarity[w] = s;
        if (s >= threshold)
        {
            atomicAdd(counts + w / g.windows, 1);
        }
    }
}

// One block per image walks its patches in raster order, chunk by chunk; a block scan counts the
// unmerged patches before each one. Writes the slots of all tokens and the merged token map.
__global__ void __launch_bounds__(kThreads) patchSlotsKernel(
    int32_t const* windowRanks, int32_t const* imageMerges, WindowGeometry g, int32_t* slots, int32_t* mergedMap)
{
    using BlockScan = cub::BlockScan<int32_t, kThreads>;
    __shared__ typename BlockScan::TempStorage scanStorage;
    int64_t const image = blockIdx.x;
    int32_t const r = imageMerges[image];
    int32_t* imageSlots = slots + image * (1 + g.patches);
    int32_t carried = 0;
    for (int32_t first = 0; first < g.patches; first += kThreads)
    {
        int32_t const patch = first + static_cast<int32_t>(threadIdx.x);
        bool const valid = patch < g.patches;
        int32_t const rank
            = valid ? windowRanks[image * g.windows + windowOfPatch(patch, g.gridW, g.windowH, g.windowW)] : 0;
        int32_t unmergedBefore = 0;
        int32_t unmergedInChunk = 0;
        BlockScan(scanStorage).ExclusiveSum(valid && !isMerged(rank, r) ? 1 : 0, unmergedBefore, unmergedInChunk);
        if (valid)
        {
            int32_t const slot = clapPatchSlot(rank, carried + unmergedBefore, r);
            imageSlots[1 + patch] = slot;
            mergedMap[image * g.patches + patch] = slot - 1;
        }
        carried += unmergedInChunk;
        __syncthreads(); // scanStorage is reused by the next chunk
    }
    if (threadIdx.x == 0)
    {
        imageSlots[0] = 0;
    }
}

template <typename Storage>
void enqueueLocalMerge(Storage const* tokens, Storage* merged, float* mergedSizes, int32_t* mergedMap,
    int64_t* numTokens, LocalMergeParams const& p, LocalMergeWorkspace const& ws, cudaStream_t stream)
{
    WindowGeometry const g(p);
    int64_t const tokenRows = static_cast<int64_t>(p.batch) * (1 + g.patches);
    int64_t const windowRows = static_cast<int64_t>(p.batch) * g.windows;
    launchUnitDivisors(tokens, tokenRows, p.channels, ws.divisors, stream);
    windowGramKernel<<<gridFor(windowRows * g.k * g.k), kThreads, 0, stream>>>(tokens, ws.divisors, g, ws.gram);
    windowSimilarityKernel<<<gridFor(windowRows), kThreads, 0, stream>>>(
        ws.gram, g, p.threshold, ws.similarity, ws.scatter.counts);
    launchMergeDecision(ws.scatter, false, 1 + g.patches, p.batch, g.k - 1, p.perImage != 0, numTokens, stream);
    launchRanks(ws.similarity, p.batch, g.windows, ws.ranks, stream);
    patchSlotsKernel<<<p.batch, kThreads, 0, stream>>>(
        ws.ranks, ws.scatter.imageMerges, g, ws.scatter.slots, mergedMap);
    ScatterShape const shape{p.batch, 1 + g.patches, p.channels};
    launchScatterOrder(ws.scatter.slots, shape, ws.scatter.order, ws.scatter.ends, stream);
    launchScatterMean(tokens, static_cast<float const*>(nullptr), ws.scatter.order, ws.scatter.ends,
        ws.scatter.imageTokens, ws.scatter.outTokens, shape, merged, mergedSizes, stream);
}

} // namespace

Status localMerge(DataType dtype, void const* tokens, void* merged, float* mergedSizes, int32_t* mergedMap,
    int64_t* numTokens, LocalMergeParams const& params, void* workspace, cudaStream_t stream)
{
    if (!isValid(dtype) || !isValid(params) || !tokens || !merged || !mergedSizes || !mergedMap || !numTokens
        || !workspace)
    {
        return kInvalidArgument;
    }
    LocalMergeWorkspace const ws(workspace, params);
    if (clearCountersAsync(ws.scatter, params.batch, stream) != cudaSuccess)
    {
        return kCudaError;
    }
    withStorage<__half>(dtype, [&](auto tag) {
        using Storage = typename decltype(tag)::type;
        enqueueLocalMerge(static_cast<Storage const*>(tokens), static_cast<Storage*>(merged), mergedSizes, mergedMap,
            numTokens, params, ws, stream);
    });
    return launchStatus();
}

} // namespace algm::cuda
