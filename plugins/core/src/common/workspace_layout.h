// How the launchers carve their workspace: one layout shared by the CPU and the CUDA builds, so that
// localMergeWorkspaceSize / globalMergeWorkspaceSize bound both.
#pragma once

#include "algm/kernels.h"

#include <cstddef>
#include <cstdint>

namespace algm
{

// Hands out consecutive, aligned sub-buffers of one block of memory. With a null base it only measures.
class WorkspaceCarver
{
public:
    static constexpr size_t kAlignment = 256;

    explicit WorkspaceCarver(void* base)
        : mBase(reinterpret_cast<uintptr_t>(base))
        , mCursor(alignUp(mBase))
    {
    }

    template <typename T>
    T* take(size_t count)
    {
        T* const buffer = mBase == 0 ? nullptr : reinterpret_cast<T*>(mCursor);
        mCursor = alignUp(mCursor + count * sizeof(T));
        return buffer;
    }

    // Bytes used from the base, plus the slack needed to align an arbitrary base.
    size_t boundBytes() const
    {
        return static_cast<size_t>(mCursor - mBase) + kAlignment;
    }

private:
    static uintptr_t alignUp(uintptr_t value)
    {
        return (value + kAlignment - 1) / kAlignment * kAlignment;
    }

    uintptr_t mBase;
    uintptr_t mCursor;
};

// What both merges need after their decisions: the per-image counters and decisions, each input token's
// output slot, and the deterministic scatter-mean's grouping of the tokens by slot (B images, T input tokens).
struct MergeScratch
{
    int32_t* counts;      // [B] windows / A tokens at or above the threshold (zeroed before use)
    int32_t* inputTokens; // [B] T_b, the real input tokens (GlobalMerge: size > 0)
    int32_t* imageMerges; // [B] r_b under the batch rule
    int32_t* imageTokens; // [B] T'_b
    int32_t* outTokens;   // [1] T' = max_b T'_b, on the device (CUDA only)
    int32_t* slots;       // [B, T] output slot of every input token
    int32_t* order;       // [B, T] input rows sorted by slot, ascending inside a slot (stable)
    int32_t* ends;        // [B, T] end of each slot's run in `order` (its start: the previous slot's end, or 0)

    void carve(WorkspaceCarver& carver, size_t batch, size_t tokens)
    {
        counts = carver.take<int32_t>(batch);
        inputTokens = carver.take<int32_t>(batch);
        imageMerges = carver.take<int32_t>(batch);
        imageTokens = carver.take<int32_t>(batch);
        outTokens = carver.take<int32_t>(1);
        slots = carver.take<int32_t>(batch * tokens);
        order = carver.take<int32_t>(batch * tokens);
        ends = carver.take<int32_t>(batch * tokens);
    }
};

// Scratch of LocalMerge (B images, W windows of k tokens, T = 1 + N tokens, C channels).
struct LocalMergeWorkspace
{
    float* divisors;      // [B, T] unit-norm divisor of every token
    float* gram;          // [B, W, k, k] pairwise unit dot products inside each window (diagonal unused)
    float* similarity;    // [B, W]
    int32_t* ranks;       // [B, W] stable descending rank of each window
    MergeScratch scatter; // counters, slots, the scatter-mean's grouping
    size_t bytes;         // what the layout needs from an arbitrary (unaligned) base

    LocalMergeWorkspace(void* base, LocalMergeParams const& p)
    {
        size_t const batch = static_cast<size_t>(p.batch);
        size_t const tokens = 1 + static_cast<size_t>(p.gridH) * static_cast<size_t>(p.gridW);
        size_t const k = static_cast<size_t>(p.windowH) * static_cast<size_t>(p.windowW);
        size_t const windows = (tokens - 1) / k;
        WorkspaceCarver carver(base);
        divisors = carver.take<float>(batch * tokens);
        gram = carver.take<float>(batch * windows * k * k);
        similarity = carver.take<float>(batch * windows);
        ranks = carver.take<int32_t>(batch * windows);
        scatter.carve(carver, batch, tokens);
        bytes = carver.boundBytes();
    }
};

// Scratch of GlobalMerge (B images, T tokens, nA = ceil(T/2) A tokens, C channels).
struct GlobalMergeWorkspace
{
    float* divisors;      // [B, T]
    float* bestScore;     // [B, nA] best cosine score of each A token (-inf for the class token)
    int32_t* bestMatch;   // [B, nA] its B index
    float* imageStats;    // [2, B] per image: mean, then unbiased std of best_score[1:]
    float* thresholds;    // [B] each image's threshold under the batch rule
    int32_t* ranks;       // [B, nA]
    MergeScratch scatter; // counters, slots, the scatter-mean's grouping
    size_t bytes;         // what the layout needs from an arbitrary (unaligned) base

    GlobalMergeWorkspace(void* base, GlobalMergeParams const& p)
    {
        size_t const batch = static_cast<size_t>(p.batch);
        size_t const tokens = static_cast<size_t>(p.tokens);
        size_t const countA = (tokens + 1) / 2;
        WorkspaceCarver carver(base);
        divisors = carver.take<float>(batch * tokens);
        bestScore = carver.take<float>(batch * countA);
        bestMatch = carver.take<int32_t>(batch * countA);
        imageStats = carver.take<float>(batch * 2);
        thresholds = carver.take<float>(batch);
        ranks = carver.take<int32_t>(batch * countA);
        scatter.carve(carver, batch, tokens);
        bytes = carver.boundBytes();
    }
};

} // namespace algm
