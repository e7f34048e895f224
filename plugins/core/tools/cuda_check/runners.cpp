#include "check.h"

#include <algorithm>
#include <cstring>
#include <functional>

namespace algm::check
{
namespace
{

// `mapOutOfRange`: the input's token map is out of range on purpose, so the CPU must report kInvalidArgument.
void checkStatus(Status status, char const* what, bool mapOutOfRange = false)
{
    Status const expected = mapOutOfRange ? kInvalidArgument : kSuccess;
    if (status != expected)
    {
        throw std::runtime_error(std::string(what) + " returned status " + std::to_string(status) + ", expected "
            + std::to_string(expected));
    }
}

// Device memory owned for the lifetime of one run.
class DeviceBuffer
{
public:
    explicit DeviceBuffer(size_t bytes)
        : mBytes(bytes)
    {
        checkCuda(cudaMalloc(&mData, std::max<size_t>(bytes, 1)), "cudaMalloc");
    }

    template <typename T>
    explicit DeviceBuffer(std::vector<T> const& host)
        : DeviceBuffer(host.size() * sizeof(T))
    {
        checkCuda(cudaMemcpy(mData, host.data(), mBytes, cudaMemcpyHostToDevice), "cudaMemcpy to device");
    }

    DeviceBuffer(DeviceBuffer const&) = delete;
    DeviceBuffer& operator=(DeviceBuffer const&) = delete;

    ~DeviceBuffer()
    {
        cudaFree(mData);
    }

    template <typename T>
    T* as() const
    {
        return static_cast<T*>(mData);
    }

    template <typename T>
    std::vector<T> download(size_t count) const
    {
        std::vector<T> host(count);
        checkCuda(cudaMemcpy(host.data(), mData, count * sizeof(T), cudaMemcpyDeviceToHost), "cudaMemcpy to host");
        return host;
    }

private:
    void* mData = nullptr;
    size_t mBytes;
};

// Output buffers sized for the upper bound T' = T.
struct MergeBuffers
{
    DeviceBuffer merged;
    DeviceBuffer sizes;
    DeviceBuffer map;
    DeviceBuffer numTokens;

    MergeBuffers(size_t mergedBytes, size_t rows, size_t mapEntries)
        : merged(mergedBytes)
        , sizes(rows * sizeof(float))
        , map(mapEntries * sizeof(int32_t))
        , numTokens(sizeof(int64_t))
    {
    }

    // The outputs trimmed to T', and T' narrowed to int32 on the device as the plugins do for INT32 size tensors.
    MergeOutput download(int32_t batch, int32_t channels, size_t elementSize, size_t mapEntries) const
    {
        DeviceBuffer const narrowed(sizeof(int32_t));
        checkCuda(cudaMemset(narrowed.as<void>(), 0xff, sizeof(int32_t)), "cudaMemset"); // -1 unless written
        checkStatus(cuda::narrowCount(numTokens.as<int64_t>(), narrowed.as<int32_t>(), nullptr), "cuda::narrowCount");
        checkCuda(cudaDeviceSynchronize(), "narrowCount");
        MergeOutput out;
        out.numTokens = numTokens.download<int64_t>(1)[0];
        out.narrowed = narrowed.download<int32_t>(1)[0];
        out.merged = merged.download<uint8_t>(batch * out.numTokens * channels * elementSize);
        out.sizes = sizes.download<float>(batch * out.numTokens);
        out.map = map.download<int32_t>(mapEntries);
        return out;
    }
};

// Runs `enqueue` once (checked), then `timedRuns` more times, each between two events; the median.
double timeLaunches(std::function<Status(cudaStream_t)> const& enqueue, int timedRuns)
{
    cudaStream_t stream;
    checkCuda(cudaStreamCreate(&stream), "cudaStreamCreate");
    checkStatus(enqueue(stream), "CUDA launcher");
    checkCuda(cudaStreamSynchronize(stream), "first run");
    std::vector<float> times;
    cudaEvent_t start;
    cudaEvent_t stop;
    checkCuda(cudaEventCreate(&start), "cudaEventCreate");
    checkCuda(cudaEventCreate(&stop), "cudaEventCreate");
    for (int run = 0; run < timedRuns; ++run)
    {
        checkCuda(cudaEventRecord(start, stream), "cudaEventRecord");
        enqueue(stream);
        checkCuda(cudaEventRecord(stop, stream), "cudaEventRecord");
        checkCuda(cudaEventSynchronize(stop), "timed run");
        float ms = 0.0f;
        checkCuda(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime");
        times.push_back(ms);
    }
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    cudaStreamDestroy(stream);
    if (times.empty())
    {
        return 0.0;
    }
    std::nth_element(times.begin(), times.begin() + times.size() / 2, times.end());
    return times[times.size() / 2];
}

MergeOutput trimmed(MergeOutput full, int32_t batch, int32_t channels, size_t elementSize)
{
    full.merged.resize(batch * full.numTokens * channels * elementSize);
    full.sizes.resize(batch * full.numTokens);
    return full;
}

} // namespace

MergeOutput runCpu(LocalMergeInput const& input)
{
    LocalMergeParams const& p = input.params;
    size_t const rows = static_cast<size_t>(p.batch) * (1 + p.gridH * p.gridW);
    MergeOutput out;
    out.merged.resize(input.tokens.bytes.size());
    out.sizes.resize(rows);
    out.map.resize(static_cast<size_t>(p.batch) * p.gridH * p.gridW);
    std::vector<uint8_t> workspace(localMergeWorkspaceSize(p));
    checkStatus(cpu::localMerge(input.tokens.dtype, input.tokens.bytes.data(), out.merged.data(), out.sizes.data(),
                    out.map.data(), &out.numTokens, p, workspace.data()),
        "cpu::localMerge");
    return trimmed(std::move(out), p.batch, p.channels, input.tokens.elementSize());
}

MergeOutput runCpu(GlobalMergeInput const& input)
{
    GlobalMergeParams const& p = input.params;
    MergeOutput out;
    out.merged.resize(input.tokens.bytes.size());
    out.sizes.resize(input.sizes.size());
    out.map.resize(input.tokenMap.size());
    std::vector<uint8_t> workspace(globalMergeWorkspaceSize(p));
    checkStatus(
        cpu::globalMerge(input.tokens.dtype, input.tokens.bytes.data(), input.sizes.data(), input.tokenMap.data(),
            out.merged.data(), out.sizes.data(), out.map.data(), &out.numTokens, p, workspace.data()),
        "cpu::globalMerge", input.mapOutOfRange);
    return trimmed(std::move(out), p.batch, p.channels, input.tokens.elementSize());
}

std::vector<uint8_t> runCpu(UnmergeInput const& input)
{
    UnmergeParams const& p = input.params;
    std::vector<uint8_t> out(static_cast<size_t>(p.batch) * p.patches * p.width * input.values.elementSize());
    checkStatus(cpu::unmerge(input.values.dtype, input.values.bytes.data(), input.tokenMap.data(), out.data(), p),
        "cpu::unmerge", input.mapOutOfRange);
    return out;
}

MergeOutput runCuda(LocalMergeInput const& input, int timedRuns, double* medianMs)
{
    LocalMergeParams const& p = input.params;
    size_t const mapEntries = static_cast<size_t>(p.batch) * p.gridH * p.gridW;
    DeviceBuffer const tokens(input.tokens.bytes);
    DeviceBuffer const workspace(localMergeWorkspaceSize(p));
    MergeBuffers const out(
        input.tokens.bytes.size(), static_cast<size_t>(p.batch) * (1 + p.gridH * p.gridW), mapEntries);
    *medianMs = timeLaunches(
        [&](cudaStream_t stream) {
            return cuda::localMerge(input.tokens.dtype, tokens.as<void>(), out.merged.as<void>(), out.sizes.as<float>(),
                out.map.as<int32_t>(), out.numTokens.as<int64_t>(), p, workspace.as<void>(), stream);
        },
        timedRuns);
    return out.download(p.batch, p.channels, input.tokens.elementSize(), mapEntries);
}

MergeOutput runCuda(GlobalMergeInput const& input, int timedRuns, double* medianMs)
{
    GlobalMergeParams const& p = input.params;
    DeviceBuffer const tokens(input.tokens.bytes);
    DeviceBuffer const sizes(input.sizes);
    DeviceBuffer const tokenMap(input.tokenMap);
    DeviceBuffer const workspace(globalMergeWorkspaceSize(p));
    MergeBuffers const out(input.tokens.bytes.size(), input.sizes.size(), input.tokenMap.size());
    *medianMs = timeLaunches(
        [&](cudaStream_t stream) {
            return cuda::globalMerge(input.tokens.dtype, tokens.as<void>(), sizes.as<float>(), tokenMap.as<int32_t>(),
                out.merged.as<void>(), out.sizes.as<float>(), out.map.as<int32_t>(), out.numTokens.as<int64_t>(), p,
                workspace.as<void>(), stream);
        },
        timedRuns);
    return out.download(p.batch, p.channels, input.tokens.elementSize(), input.tokenMap.size());
}

std::vector<uint8_t> runCuda(UnmergeInput const& input, int timedRuns, double* medianMs)
{
    UnmergeParams const& p = input.params;
    size_t const outBytes = static_cast<size_t>(p.batch) * p.patches * p.width * input.values.elementSize();
    DeviceBuffer const values(input.values.bytes);
    DeviceBuffer const tokenMap(input.tokenMap);
    DeviceBuffer const out(outBytes);
    *medianMs = timeLaunches(
        [&](cudaStream_t stream) {
            return cuda::unmerge(
                input.values.dtype, values.as<void>(), tokenMap.as<int32_t>(), out.as<void>(), p, stream);
        },
        timedRuns);
    return out.download<uint8_t>(outBytes);
}

} // namespace algm::check
