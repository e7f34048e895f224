// algm_cuda_check: runs every CUDA op and the CPU op on the same inputs, compares, and times the CUDA ops.
#pragma once

#include <cuda_runtime_api.h>

#include "algm/kernels.h"

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace algm::check
{

// Throws on a CUDA runtime error (the program reports it and exits with kExitCudaError).
void checkCuda(cudaError_t error, char const* what);

// Host activations in their storage dtype: float32 values or binary16 bits.
struct Activations
{
    DataType dtype;
    std::vector<uint8_t> bytes;

    Activations(DataType type, std::vector<float> const& values);
    size_t elementSize() const;
    size_t elements() const;
    float at(size_t index) const;
};

struct LocalMergeInput
{
    std::string name;
    LocalMergeParams params;
    Activations tokens;
};

struct GlobalMergeInput
{
    std::string name;
    GlobalMergeParams params;
    Activations tokens;
    std::vector<float> sizes;
    std::vector<int32_t> tokenMap;
    // The token map has out-of-range entries on purpose (math.h's token-map policy): the CPU must answer
    // kInvalidArgument and both backends must write the same outputs.
    bool mapOutOfRange = false;
};

struct UnmergeInput
{
    std::string name;
    UnmergeParams params;
    Activations values;
    std::vector<int32_t> tokenMap;
    bool mapOutOfRange = false; // as in GlobalMergeInput
};

// Outputs trimmed to T' (merged [B, T', C] in storage bytes, sizes [B, T'], map [B, N]).
struct MergeOutput
{
    int64_t numTokens = 0; // the INT64 size tensor the kernels write
    int64_t narrowed = -1; // CUDA only: the same count through cuda::narrowCount (an INT32 size tensor)
    std::vector<uint8_t> merged;
    std::vector<float> sizes;
    std::vector<int32_t> map;
};

// Inputs (cases.cpp): correctness cases of every kind and both dtypes, and the timing sizes.
std::vector<LocalMergeInput> localMergeCases();
std::vector<LocalMergeInput> localMergeTimingCases();
// GBM inputs made from a LocalMerge input and its (CPU) output, like the encoder chains them.
GlobalMergeInput chainedGlobalMerge(LocalMergeInput const& local, MergeOutput const& merged, int32_t layerNumber);
std::vector<GlobalMergeInput> globalMergeCases();
UnmergeInput unmergeCase(GlobalMergeInput const& input, MergeOutput const& merged);

// Runners (runners.cpp). The CUDA ones return the median time of `timedRuns` launches in milliseconds
// (0 when timedRuns is 0) through `medianMs`.
MergeOutput runCpu(LocalMergeInput const& input);
MergeOutput runCpu(GlobalMergeInput const& input);
std::vector<uint8_t> runCpu(UnmergeInput const& input);
MergeOutput runCuda(LocalMergeInput const& input, int timedRuns, double* medianMs);
MergeOutput runCuda(GlobalMergeInput const& input, int timedRuns, double* medianMs);
std::vector<uint8_t> runCuda(UnmergeInput const& input, int timedRuns, double* medianMs);

} // namespace algm::check
