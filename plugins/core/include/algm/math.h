// The arithmetic of the ALGM merges, shared by the CUDA kernels and the CPU loops (one source of truth).
// Semantics: docs/plugin-ops.md; PyTorch reference: algm_export/merging/assignment.py.
//
// Every function here works on ONE element (a token, a window, a score...): the CPU build calls it in
// loops, the CUDA build from one thread per element. Sums run sequentially in a fixed order and products
// are never fused into FMAs (addProduct), so the two builds produce bit-identical similarities, scores,
// thresholds and therefore identical merge decisions. All similarity and threshold arithmetic is float32
// whatever the activation dtype; merged values are accumulated in float32.
#pragma once

#include "algm/contract.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#ifdef __CUDACC__
#include <cuda_fp16.h>
#define ALGM_HD __host__ __device__
#else
#define ALGM_HD
#endif

namespace algm
{

// x / max(||x||, kNormEpsilon): F.normalize's eps, compared in float32 (from the op contract).
constexpr float kNormEpsilon = contract::kNormEpsilon;

// ---------------------------------------------------------------------------------------------------
// Bits and special values

ALGM_HD inline uint32_t floatBits(float value)
{
    uint32_t bits;
    memcpy(&bits, &value, sizeof(bits));
    return bits;
}

ALGM_HD inline float floatFromBits(uint32_t bits)
{
    float value;
    memcpy(&value, &bits, sizeof(value));
    return value;
}

ALGM_HD inline float quietNaN()
{
    return floatFromBits(0x7fc00000u);
}

ALGM_HD inline float negativeInfinity()
{
    return floatFromBits(0xff800000u);
}

// ---------------------------------------------------------------------------------------------------
// IEEE binary16 <-> float32 in software (the CPU's half storage; the CUDA build uses __half).

// Half-precision storage on the CPU: the raw binary16 bits.
struct Half
{
    uint16_t bits;
};

// Exact widening of binary16 bits to float32 (subnormals, infinities and NaN payloads preserved).
ALGM_HD inline float halfBitsToFloat(uint16_t half)
{
    uint32_t const sign = static_cast<uint32_t>(half & 0x8000u) << 16;
    uint32_t const exponent = (half >> 10) & 0x1fu;
    uint32_t mantissa = half & 0x3ffu;
    if (exponent == 0x1fu)
    {
        return floatFromBits(sign | 0x7f800000u | (mantissa << 13));
    }
    if (exponent != 0)
    {
        return floatFromBits(sign | ((exponent + 112u) << 23) | (mantissa << 13)); // rebias 15 -> 127
    }
    if (mantissa == 0)
    {
        return floatFromBits(sign);
    }
    // Subnormal half m * 2^-24: shift the leading one up to the implicit-bit position.
    uint32_t shifts = 0;
    while ((mantissa & 0x400u) == 0)
    {
        mantissa <<= 1;
        ++shifts;
    }
    return floatFromBits(sign | ((113u - shifts) << 23) | ((mantissa & 0x3ffu) << 13));
}

// Rounds `mantissa >> shift` to nearest, ties to even (shift >= 1).
ALGM_HD inline uint32_t shiftRoundNearestEven(uint32_t mantissa, uint32_t shift)
{
    uint32_t const kept = mantissa >> shift;
    uint32_t const remainder = mantissa & ((1u << shift) - 1u);
    uint32_t const halfway = 1u << (shift - 1u);
    return kept + ((remainder > halfway || (remainder == halfway && (kept & 1u))) ? 1u : 0u);
}

// float32 -> binary16 bits, round to nearest even; overflow gives infinity, NaN stays (quiet) NaN.
ALGM_HD inline uint16_t floatToHalfBits(float value)
{
    uint32_t const bits = floatBits(value);
    uint32_t const sign = (bits >> 16) & 0x8000u;
    uint32_t const magnitude = bits & 0x7fffffffu;
    if (magnitude > 0x7f800000u)
    {
        return static_cast<uint16_t>(sign | 0x7e00u | ((magnitude >> 13) & 0x3ffu));
    }
    if (magnitude >= 0x477ff000u) // >= 65520: rounds past the largest half (65504), or is infinite
    {
        return static_cast<uint16_t>(sign | 0x7c00u);
    }
    uint32_t const exponent = magnitude >> 23;
    if (exponent >= 113u) // normal half: rebias 127 -> 15, keep 10 mantissa bits (a carry may bump the exponent)
    {
        uint32_t const rebased = ((exponent - 112u) << 23) | (magnitude & 0x7fffffu);
        return static_cast<uint16_t>(sign | shiftRoundNearestEven(rebased, 13));
    }
    if (exponent < 102u) // below 2^-25: rounds to zero
    {
        return static_cast<uint16_t>(sign);
    }
    // Subnormal half: value = (mantissa with implicit one) * 2^(exponent - 150) = m * 2^-24.
    uint32_t const mantissa = (magnitude & 0x7fffffu) | 0x800000u;
    return static_cast<uint16_t>(sign | shiftRoundNearestEven(mantissa, 126u - exponent));
}

// ---------------------------------------------------------------------------------------------------
// Loading storage as float32 and storing float32 as storage.

ALGM_HD inline float loadFloat(float value)
{
    return value;
}

ALGM_HD inline float loadFloat(Half value)
{
    return halfBitsToFloat(value.bits);
}

template <typename Storage>
struct StoreAs;

template <>
struct StoreAs<float>
{
    ALGM_HD static float convert(float value)
    {
        return value;
    }
};

template <>
struct StoreAs<Half>
{
    ALGM_HD static Half convert(float value)
    {
        return Half{floatToHalfBits(value)};
    }
};

#ifdef __CUDACC__
__device__ inline float loadFloat(__half value)
{
    return __half2float(value);
}

template <>
struct StoreAs<__half>
{
    __device__ static __half convert(float value)
    {
        return __float2half_rn(value);
    }
};
#endif

template <typename Storage>
ALGM_HD inline Storage storeAs(float value)
{
    return StoreAs<Storage>::convert(value);
}

// ---------------------------------------------------------------------------------------------------
// Cosine similarity

// acc + a * b, rounded twice: nvcc would otherwise contract it into an FMA and the device results
// would stop matching the host bit for bit.
ALGM_HD inline float addProduct(float acc, float a, float b)
{
#ifdef __CUDA_ARCH__
    return __fadd_rn(acc, __fmul_rn(a, b));
#else
    return acc + a * b;
#endif
}

// max(||row||_2, eps): the divisor that makes a row unit length (a zero row stays zero). As in
// F.normalize the row is divided by it (not multiplied by its reciprocal).
template <typename Storage>
ALGM_HD inline float unitDivisor(Storage const* row, int channels)
{
    float sumOfSquares = 0.0f;
    for (int c = 0; c < channels; ++c)
    {
        float const value = loadFloat(row[c]);
        sumOfSquares = addProduct(sumOfSquares, value, value);
    }
    float const norm = sqrtf(sumOfSquares);
    return norm < kNormEpsilon ? kNormEpsilon : norm;
}

// One component of the unit vector of a row with divisor `divisor`.
ALGM_HD inline float unitComponent(float value, float divisor)
{
    return value / divisor;
}

// u_a . u_b over the channels in order, the unit components formed on the fly.
template <typename Storage>
ALGM_HD inline float unitDot(Storage const* a, float divisorA, Storage const* b, float divisorB, int channels)
{
    float dot = 0.0f;
    for (int c = 0; c < channels; ++c)
    {
        dot = addProduct(dot, unitComponent(loadFloat(a[c]), divisorA), unitComponent(loadFloat(b[c]), divisorB));
    }
    return dot;
}

// Mean pairwise cosine similarity of a window of k tokens from its gram matrix [k, k] (row-major):
// the off-diagonal entries summed row by row, divided by k(k-1). The diagonal is never read.
ALGM_HD inline float windowSimilarity(float const* gram, int k)
{
    float sum = 0.0f;
    for (int i = 0; i < k; ++i)
    {
        for (int j = 0; j < k; ++j)
        {
            if (i != j)
            {
                sum += gram[i * k + j];
            }
        }
    }
    return sum / static_cast<float>(k * (k - 1));
}

// True when (score, index) beats the current best of an argmax whose ties go to the lowest index.
ALGM_HD inline bool betterMatch(float score, int index, float bestScore, int bestIndex)
{
    return score > bestScore || (score == bestScore && index < bestIndex);
}

// ---------------------------------------------------------------------------------------------------
// Ranking and thresholds

// Position of values[i] in a stable descending sort of values[0..n): ties keep the lower index first.
ALGM_HD inline int stableDescendingRank(float const* values, int n, int i)
{
    float const mine = values[i];
    int rank = 0;
    for (int j = 0; j < n; ++j)
    {
        rank += (values[j] > mine || (j < i && values[j] == mine)) ? 1 : 0;
    }
    return rank;
}

// Sequential mean of values[0..n) (NaN when n == 0, like torch.mean of an empty tensor).
ALGM_HD inline float sequentialMean(float const* values, int n)
{
    float sum = 0.0f;
    for (int i = 0; i < n; ++i)
    {
        sum += values[i];
    }
    return n > 0 ? sum / static_cast<float>(n) : quietNaN();
}

// Whether a token takes part in a merge: padding tokens (per-image batches) have size 0.
ALGM_HD inline bool isRealToken(float size)
{
    return size > 0.0f;
}

// T_b: how many of an image's `tokens` sizes belong to real tokens.
ALGM_HD inline int32_t realTokenCount(float const* sizes, int32_t tokens)
{
    int32_t real = 0;
    for (int32_t t = 0; t < tokens; ++t)
    {
        real += isRealToken(sizes[t]) ? 1 : 0;
    }
    return real;
}

// Mean m_b and unbiased standard deviation sigma_b (n - 1 divisor) of one image's candidate best scores:
// bestScore[a] for 1 <= a < countA (the class token A[0] excluded) whose A token (token 2a) is real.
// `sizes` is the image's [T] size row. Sums run in order; 0/0 gives NaN (mean of none, std of one), like
// the function bodies and torch.std.
ALGM_HD inline void gbmScoreStats(float const* bestScore, float const* sizes, int countA, float& mean, float& std)
{
    float sum = 0.0f;
    int count = 0;
    for (int a = 1; a < countA; ++a)
    {
        if (isRealToken(sizes[2 * a]))
        {
            sum += bestScore[a];
            ++count;
        }
    }
    mean = count > 0 ? sum / static_cast<float>(count) : quietNaN();
    float sumOfSquares = 0.0f;
    for (int a = 1; a < countA; ++a)
    {
        if (isRealToken(sizes[2 * a]))
        {
            float const deviation = bestScore[a] - mean;
            sumOfSquares = addProduct(sumOfSquares, deviation, deviation);
        }
    }
    std = count > 1 ? sqrtf(sumOfSquares / static_cast<float>(count - 1)) : quietNaN();
}

// GBM threshold t = m + sigma / layer_number. A NaN threshold (too few tokens) merges nothing, since no
// score compares >= NaN.
ALGM_HD inline float gbmThreshold(float mean, float std, int layerNumber)
{
    return mean + std / static_cast<float>(layerNumber);
}

// Image `image`'s GBM threshold under the batch rule: per image, t_b = m_b + sigma_b / layer_number;
// published rule (perImage false), t = mean_b(m_b) + mean_b(sigma_b) / layer_number for every image.
ALGM_HD inline float gbmImageThreshold(
    float const* means, float const* stds, int batch, int image, int layerNumber, bool perImage)
{
    return perImage ? gbmThreshold(means[image], stds[image], layerNumber)
                    : gbmThreshold(sequentialMean(means, batch), sequentialMean(stds, batch), layerNumber);
}

// Whether the element of stable descending rank `rank` merges when r = `merges` merges happen.
ALGM_HD inline bool isMerged(int rank, int merges)
{
    return rank < merges;
}

// Token count after merging r groups that each remove `removedPerMerge` tokens:
// CLAP removes k-1 per window (T' = 1 + r + N - k*r), GBM removes 1 per A token (T' = T - r).
ALGM_HD inline int tokensAfterMerges(int tokens, int merges, int removedPerMerge)
{
    return tokens - merges * removedPerMerge;
}

// The batch rule's r_b: the image's own count (perImage) or the batch minimum (the published rule).
ALGM_HD inline int batchRuleMerges(int32_t const* counts, int batch, int image, bool perImage)
{
    if (perImage)
    {
        return counts[image];
    }
    int minimum = counts[0];
    for (int b = 1; b < batch; ++b)
    {
        minimum = counts[b] < minimum ? counts[b] : minimum;
    }
    return minimum;
}

// The merge decision of a whole batch (a batch-level step: the CPU, or one CUDA thread): r_b (imageMerges)
// and T'_b (imageTokens) of every image from its count at or above the threshold, and T' = max_b T'_b, the
// padded output length (returned). `inputTokens`: each image's real input tokens T_b, or null when every
// image has `tokens`.
ALGM_HD inline int32_t decideMerges(int32_t const* counts, int32_t const* inputTokens, int32_t tokens, int32_t batch,
    int32_t removedPerMerge, bool perImage, int32_t* imageMerges, int32_t* imageTokens)
{
    int32_t longest = 0;
    for (int32_t b = 0; b < batch; ++b)
    {
        int32_t const merges = batchRuleMerges(counts, batch, b, perImage);
        int32_t const after = tokensAfterMerges(inputTokens ? inputTokens[b] : tokens, merges, removedPerMerge);
        imageMerges[b] = merges;
        imageTokens[b] = after;
        longest = after > longest ? after : longest;
    }
    return longest;
}

// ---------------------------------------------------------------------------------------------------
// CLAP geometry and slots (patch indices exclude the class token; slots include it at 0)

// Raster index of the window holding patch p.
ALGM_HD inline int windowOfPatch(int patch, int gridW, int windowH, int windowW)
{
    int const row = patch / gridW;
    int const col = patch % gridW;
    return (row / windowH) * (gridW / windowW) + col / windowW;
}

// Patch index of member m (raster order inside the window) of window w.
ALGM_HD inline int patchOfWindowMember(int window, int member, int gridW, int windowH, int windowW)
{
    int const windowsPerRow = gridW / windowW;
    int const row = (window / windowsPerRow) * windowH + member / windowW;
    int const col = (window % windowsPerRow) * windowW + member % windowW;
    return row * gridW + col;
}

// Slot of a patch: 1 + rank of its window when that window merges, else
// 1 + r + (number of unmerged patches before it in raster order).
ALGM_HD inline int clapPatchSlot(int windowRank, int unmergedBefore, int merges)
{
    return isMerged(windowRank, merges) ? 1 + windowRank : 1 + merges + unmergedBefore;
}

// ---------------------------------------------------------------------------------------------------
// GBM slots (A = even token positions, B = odd; nA = ceil(T/2))

// Slot of A token a: its best match's B slot when it merges, else its place among the unmerged
// A tokens (the class token, never merged, comes first).
ALGM_HD inline int gbmEvenSlot(int rank, int bestMatch, int unmergedBefore, int countA, int merges)
{
    return isMerged(rank, merges) ? countA - merges + bestMatch : unmergedBefore;
}

// Slot of B token j: after all unmerged A tokens.
ALGM_HD inline int gbmOddSlot(int j, int countA, int merges)
{
    return countA - merges + j;
}

// Input token `token`'s slot: `slot` for a real token, 0 for a padding token (its size 0 adds nothing).
ALGM_HD inline int gbmTokenSlot(float size, int slot)
{
    return isRealToken(size) ? slot : 0;
}

// ---------------------------------------------------------------------------------------------------
// Token maps (one policy for both builds, docs/plugin-ops.md): an entry outside [0, rows - 1] names no token.
// It never causes an out-of-bounds access: GlobalMerge composes it to -1 in merged_token_map, Unmerge gathers a
// zero row for it; the rest of the outputs is computed as usual. The CPU launchers also return kInvalidArgument
// after writing these outputs; the CUDA launchers cannot report it without synchronising the host.

// Whether map entry `entry` names one of `rows` tokens.
ALGM_HD inline bool mapEntryInRange(int32_t entry, int32_t rows)
{
    return entry >= 0 && entry < rows;
}

// GlobalMerge's merged_token_map entry for the input map entry `entry` (a patch token: row 1 + entry of the
// `tokens` rows, whose output slots are `slots`): its slot without the class token, or -1 when out of range.
ALGM_HD inline int32_t composedMapEntry(int32_t entry, int32_t tokens, int32_t const* slots)
{
    return mapEntryInRange(entry, tokens - 1) ? slots[1 + entry] - 1 : -1;
}

// ---------------------------------------------------------------------------------------------------
// Scatter-mean

// Output value of a slot from its float32 accumulations: sum(size * x) / max(sum(size), 1); an empty
// (padding) slot gets 0.
ALGM_HD inline float scatterMean(float weightedSum, float sizeSum)
{
    return weightedSum / (sizeSum > 1.0f ? sizeSum : 1.0f);
}

// Deterministic scatter-mean of one output slot and channel: its member tokens (`members`: input rows of
// one image in ascending order, as built by the stable counting sort of the slots) are summed one after the
// other in float32, so every build and every run adds the same numbers in the same order (no atomics);
// `count` 0 is a padding slot: 0, size 0.
// `tokens` [T, C] and `sizes` [T] (null: every token has size 1) are one image's rows. Returns the mean and
// stores sum(size) in `sizeSum`.
template <typename Storage>
ALGM_HD inline float slotMean(Storage const* tokens, float const* sizes, int32_t const* members, int32_t count,
    int64_t channels, int64_t channel, float& sizeSum)
{
    float weighted = 0.0f;
    float total = 0.0f;
    for (int32_t i = 0; i < count; ++i)
    {
        int64_t const row = members[i];
        float const size = sizes ? sizes[row] : 1.0f;
        weighted = addProduct(weighted, size, loadFloat(tokens[row * channels + channel]));
        total = total + size;
    }
    sizeSum = total;
    return scatterMean(weighted, total);
}

} // namespace algm
