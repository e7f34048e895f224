// CPU GlobalMerge (GBM): the same steps, in the same order, as the CUDA kernels, as plain loops.
#include "algm/kernels.h"
#include "algm/math.h"
#include "../common/dispatch.h"
#include "../common/validate.h"
#include "../common/workspace_layout.h"
#include "scatter_mean.h"
#include "selection.h"

#include <algorithm>

namespace algm::cpu
{
namespace
{

template <typename Storage>
void globalMergeImpl(Storage const* tokens, float const* sizes, int32_t const* tokenMap, Storage* merged,
    float* mergedSizes, int32_t* mergedMap, int64_t* numTokens, GlobalMergeParams const& p,
    GlobalMergeWorkspace const& ws)
{
    int32_t const countA = (p.tokens + 1) / 2;
    int32_t const countB = p.tokens / 2;
    int64_t const channels = p.channels;

    for (int64_t i = 0; i < static_cast<int64_t>(p.batch) * p.tokens; ++i)
    {
        ws.divisors[i] = unitDivisor(tokens + i * channels, p.channels);
    }

    // Best B match of every A token (A = token 2a, B = token 2j + 1) among the image's real B tokens; the
    // class token A[0] never merges, nor do padding tokens (size 0): their best score is -inf.
    for (int64_t b = 0; b < p.batch; ++b)
    {
        float const* divisors = ws.divisors + b * p.tokens;
        float const* imageSizes = sizes + b * p.tokens;
        Storage const* image = tokens + b * p.tokens * channels;
        ws.scatter.inputTokens[b] = realTokenCount(imageSizes, p.tokens);
        for (int64_t a = 0; a < countA; ++a)
        {
            bool const candidate = a > 0 && isRealToken(imageSizes[2 * a]);
            float best = negativeInfinity();
            int32_t bestIndex = 0;
            for (int32_t j = 0; candidate && j < countB; ++j)
            {
                if (!isRealToken(imageSizes[2 * j + 1]))
                {
                    continue;
                }
                float const score = unitDot(image + 2 * a * channels, divisors[2 * a], image + (2 * j + 1) * channels,
                    divisors[2 * j + 1], p.channels);
                if (betterMatch(score, j, best, bestIndex))
                {
                    best = score;
                    bestIndex = j;
                }
            }
            ws.bestScore[b * countA + a] = best;
            ws.bestMatch[b * countA + a] = bestIndex;
        }
    }

    // Thresholds from each image's mean and unbiased std of its real best_score[1:], under the batch rule.
    float* means = ws.imageStats;
    float* stds = ws.imageStats + p.batch;
    for (int64_t b = 0; b < p.batch; ++b)
    {
        gbmScoreStats(ws.bestScore + b * countA, sizes + b * p.tokens, countA, means[b], stds[b]);
    }
    for (int32_t b = 0; b < p.batch; ++b)
    {
        ws.thresholds[b] = gbmImageThreshold(means, stds, p.batch, b, p.layerNumber, p.perImage != 0);
    }

    countAtLeast(ws.bestScore, p.batch, countA, ws.thresholds, 1, ws.scatter.counts);
    int32_t const outTokens = decideMerges(ws.scatter.counts, ws.scatter.inputTokens, p.tokens, p.batch, 1,
        p.perImage != 0, ws.scatter.imageMerges, ws.scatter.imageTokens);
    rankEachImage(ws.bestScore, p.batch, countA, ws.ranks);

    for (int64_t b = 0; b < p.batch; ++b)
    {
        int32_t const merges = ws.scatter.imageMerges[b];
        int32_t const realA = (ws.scatter.inputTokens[b] + 1) / 2;
        float const* imageSizes = sizes + b * p.tokens;
        int32_t* slots = ws.scatter.slots + b * p.tokens;
        int32_t unmergedBefore = 0;
        for (int32_t a = 0; a < countA; ++a)
        {
            int32_t const rank = ws.ranks[b * countA + a];
            slots[2 * a] = gbmTokenSlot(
                imageSizes[2 * a], gbmEvenSlot(rank, ws.bestMatch[b * countA + a], unmergedBefore, realA, merges));
            unmergedBefore += isMerged(rank, merges) ? 0 : 1;
        }
        for (int32_t j = 0; j < countB; ++j)
        {
            slots[2 * j + 1] = gbmTokenSlot(imageSizes[2 * j + 1], gbmOddSlot(j, realA, merges));
        }
        for (int64_t patch = 0; patch < p.patches; ++patch)
        {
            mergedMap[b * p.patches + patch] = composedMapEntry(tokenMap[b * p.patches + patch], p.tokens, slots);
        }
    }

    writeScatterMean(tokens, sizes, ws.scatter.slots, ScatterShape{p.batch, p.tokens, p.channels, outTokens},
        ws.scatter.order, ws.scatter.ends, merged, mergedSizes);
    *numTokens = outTokens;
}

// Every map entry names a patch token: [0, T - 2].
bool mapInRange(int32_t const* tokenMap, GlobalMergeParams const& p)
{
    int64_t const entries = static_cast<int64_t>(p.batch) * p.patches;
    return std::all_of(tokenMap, tokenMap + entries, [&](int32_t v) { return mapEntryInRange(v, p.tokens - 1); });
}

} // namespace

Status globalMerge(DataType dtype, void const* tokens, float const* sizes, int32_t const* tokenMap, void* merged,
    float* mergedSizes, int32_t* mergedMap, int64_t* numTokens, GlobalMergeParams const& params, void* workspace)
{
    if (!isValid(dtype) || !isValid(params) || !tokens || !sizes || !tokenMap || !merged || !mergedSizes || !mergedMap
        || !numTokens || !workspace)
    {
        return kInvalidArgument;
    }
    GlobalMergeWorkspace const ws(workspace, params);
    withStorage<Half>(dtype, [&](auto tag) {
        using Storage = typename decltype(tag)::type;
        globalMergeImpl(static_cast<Storage const*>(tokens), sizes, tokenMap, static_cast<Storage*>(merged),
            mergedSizes, mergedMap, numTokens, params, ws);
    });
    // The outputs are written as on CUDA (out-of-range entries map to -1, math.h); the CPU also reports them.
    return mapInRange(tokenMap, params) ? kSuccess : kInvalidArgument;
}

} // namespace algm::cpu
