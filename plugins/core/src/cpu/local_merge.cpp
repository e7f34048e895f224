// CPU LocalMerge (CLAP): the same steps, in the same order, as the CUDA kernels, as plain loops.
#include "algm/kernels.h"
#include "algm/math.h"
#include "../common/dispatch.h"
#include "../common/validate.h"
#include "../common/workspace_layout.h"
#include "scatter_mean.h"
#include "selection.h"

namespace algm::cpu
{
namespace
{

template <typename Storage>
void localMergeImpl(Storage const* tokens, Storage* merged, float* mergedSizes, int32_t* mergedMap, int64_t* numTokens,
    LocalMergeParams const& p, LocalMergeWorkspace const& ws)
{
    int32_t const patches = p.gridH * p.gridW;
    int32_t const tokenCount = 1 + patches;
    int32_t const k = p.windowH * p.windowW;
    int32_t const windows = patches / k;
    int64_t const channels = p.channels;
    auto row = [&](int64_t b, int64_t t) { return tokens + (b * tokenCount + t) * channels; };

    for (int64_t i = 0; i < static_cast<int64_t>(p.batch) * tokenCount; ++i)
    {
        ws.divisors[i] = unitDivisor(tokens + i * channels, p.channels);
    }

    // Gram matrix of each window's unit vectors (patch token p is token 1 + p), then its similarity.
    // unitDot is symmetric bit for bit (products commute), so each pair is computed once.
    for (int64_t b = 0; b < p.batch; ++b)
    {
        for (int32_t w = 0; w < windows; ++w)
        {
            float* gram = ws.gram + (b * windows + w) * k * k;
            for (int32_t i = 0; i < k; ++i)
            {
                int64_t const ti = 1 + patchOfWindowMember(w, i, p.gridW, p.windowH, p.windowW);
                for (int32_t j = i + 1; j < k; ++j)
                {
                    int64_t const tj = 1 + patchOfWindowMember(w, j, p.gridW, p.windowH, p.windowW);
                    gram[i * k + j] = gram[j * k + i] = unitDot(row(b, ti), ws.divisors[b * tokenCount + ti],
                        row(b, tj), ws.divisors[b * tokenCount + tj], p.channels);
                }
            }
            ws.similarity[b * windows + w] = windowSimilarity(gram, k);
        }
    }

    countAtLeast(ws.similarity, p.batch, windows, &p.threshold, 0, ws.scatter.counts);
    int32_t const outTokens = decideMerges(ws.scatter.counts, nullptr, tokenCount, p.batch, k - 1, p.perImage != 0,
        ws.scatter.imageMerges, ws.scatter.imageTokens);
    rankEachImage(ws.similarity, p.batch, windows, ws.ranks);

    for (int64_t b = 0; b < p.batch; ++b)
    {
        int32_t const merges = ws.scatter.imageMerges[b];
        int32_t* slots = ws.scatter.slots + b * tokenCount;
        slots[0] = 0;
        int32_t unmergedBefore = 0;
        for (int32_t patch = 0; patch < patches; ++patch)
        {
            int32_t const rank = ws.ranks[b * windows + windowOfPatch(patch, p.gridW, p.windowH, p.windowW)];
            slots[1 + patch] = clapPatchSlot(rank, unmergedBefore, merges);
            unmergedBefore += isMerged(rank, merges) ? 0 : 1;
            mergedMap[b * patches + patch] = slots[1 + patch] - 1;
        }
    }

    writeScatterMean(tokens, nullptr, ws.scatter.slots, ScatterShape{p.batch, tokenCount, p.channels, outTokens},
        ws.scatter.order, ws.scatter.ends, merged, mergedSizes);
    *numTokens = outTokens;
}

} // namespace

Status localMerge(DataType dtype, void const* tokens, void* merged, float* mergedSizes, int32_t* mergedMap,
    int64_t* numTokens, LocalMergeParams const& params, void* workspace)
{
    if (!isValid(dtype) || !isValid(params) || !tokens || !merged || !mergedSizes || !mergedMap || !numTokens
        || !workspace)
    {
        return kInvalidArgument;
    }
    LocalMergeWorkspace const ws(workspace, params);
    withStorage<Half>(dtype, [&](auto tag) {
        using Storage = typename decltype(tag)::type;
        localMergeImpl(static_cast<Storage const*>(tokens), static_cast<Storage*>(merged), mergedSizes, mergedMap,
            numTokens, params, ws);
    });
    return kSuccess;
}

} // namespace algm::cpu
