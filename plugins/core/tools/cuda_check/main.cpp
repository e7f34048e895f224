// algm_cuda_check [runs]: compares every CUDA op with the CPU op, bit for bit (token counts, maps, sizes and
// merged values: the scatter-mean sums in a fixed order on both, without atomics), twice per case (the CUDA
// result must not change between runs), with both size-tensor dtypes (the kernels' int64 T' and its int32
// narrowing, cuda::narrowCount, as the plugins' INT32 size tensors get it), and prints median CUDA timings.
// Exit codes: 0 pass, 1 mismatch, 2 CUDA error, 77 no GPU (skipped).
#include "check.h"

#include "algm/math.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace
{

using namespace algm;
using namespace algm::check;

constexpr int kExitMismatch = 1;
constexpr int kExitCudaError = 2;
constexpr int kExitNoGpu = 77;
constexpr int32_t kGbmLayer = 5;

float valueAt(std::vector<uint8_t> const& bytes, DataType dtype, size_t index)
{
    if (dtype == DataType::kFloat16)
    {
        return halfBitsToFloat(reinterpret_cast<uint16_t const*>(bytes.data())[index]);
    }
    return reinterpret_cast<float const*>(bytes.data())[index];
}

std::string difference(MergeOutput const& cpu, MergeOutput const& gpu, DataType dtype)
{
    if (cpu.numTokens != gpu.numTokens)
    {
        return "token count " + std::to_string(gpu.numTokens) + " != CPU " + std::to_string(cpu.numTokens);
    }
    if (gpu.narrowed != gpu.numTokens)
    {
        return "INT32 size tensor " + std::to_string(gpu.narrowed) + " != INT64 " + std::to_string(gpu.numTokens);
    }
    if (cpu.map != gpu.map)
    {
        return "token maps differ";
    }
    if (cpu.sizes != gpu.sizes)
    {
        return "sizes differ";
    }
    size_t const elements = cpu.merged.size() / (dtype == DataType::kFloat16 ? 2 : 4);
    size_t const width = dtype == DataType::kFloat16 ? 2 : 4;
    for (size_t i = 0; i < elements; ++i)
    {
        if (std::memcmp(&cpu.merged[i * width], &gpu.merged[i * width], width) != 0)
        {
            return "value " + std::to_string(i) + ": " + std::to_string(valueAt(gpu.merged, dtype, i)) + " != CPU "
                + std::to_string(valueAt(cpu.merged, dtype, i)) + " (not bit-identical)";
        }
    }
    return "";
}

class Report
{
public:
    void merge(char const* op, std::string const& name, MergeOutput const& cpu, MergeOutput const& gpu, DataType dtype)
    {
        record(op, name, difference(cpu, gpu, dtype), "T'=" + std::to_string(gpu.numTokens) + " (int64 = int32)");
    }

    void unmerge(std::string const& name, std::vector<uint8_t> const& cpu, std::vector<uint8_t> const& gpu)
    {
        record("unmerge", name, cpu == gpu ? "" : "values differ", "");
    }

    int failures() const
    {
        return mFailures;
    }

private:
    void record(char const* op, std::string const& name, std::string const& problem, std::string const& note)
    {
        mFailures += problem.empty() ? 0 : 1;
        std::printf("%-4s %-12s %-34s %s\n", problem.empty() ? "ok" : "FAIL", op, name.c_str(),
            problem.empty() ? note.c_str() : problem.c_str());
    }

    int mFailures = 0;
};

void checkAll(Report& report)
{
    double unused = 0.0;
    std::vector<GlobalMergeInput> globalInputs = globalMergeCases();
    for (LocalMergeInput const& local : localMergeCases())
    {
        MergeOutput const cpu = runCpu(local);
        for (int run = 0; run < 2; ++run) // the same bits on every run
        {
            report.merge("local_merge", local.name, cpu, runCuda(local, 0, &unused), local.tokens.dtype);
        }
        globalInputs.push_back(chainedGlobalMerge(local, cpu, kGbmLayer));
    }
    for (GlobalMergeInput const& global : globalInputs)
    {
        MergeOutput const cpu = runCpu(global);
        for (int run = 0; run < 2; ++run)
        {
            report.merge("global_merge", global.name, cpu, runCuda(global, 0, &unused), global.tokens.dtype);
        }
        UnmergeInput const spread = unmergeCase(global, cpu);
        std::vector<uint8_t> const cpuSpread = runCpu(spread);
        for (int run = 0; run < 2; ++run)
        {
            report.unmerge(spread.name, cpuSpread, runCuda(spread, 0, &unused));
        }
    }
}

void timeAll(int runs)
{
    std::printf("\nmedian of %d runs (ms), grid 32x32, window 2x2, threshold 0.88, GBM layer %d\n", runs, kGbmLayer);
    std::printf("%-5s %5s %5s | %-12s %6s | %-12s %6s | %-8s\n", "dtype", "B", "C", "local_merge", "T'", "global_merge",
        "T'", "unmerge");
    for (LocalMergeInput const& local : localMergeTimingCases())
    {
        double localMs = 0.0;
        double globalMs = 0.0;
        double unmergeMs = 0.0;
        MergeOutput const merged = runCuda(local, runs, &localMs);
        GlobalMergeInput const global = chainedGlobalMerge(local, merged, kGbmLayer);
        MergeOutput const merged2 = runCuda(global, runs, &globalMs);
        runCuda(unmergeCase(global, merged2), runs, &unmergeMs);
        std::printf("%-5s %5d %5d | %12.4f %6lld | %12.4f %6lld | %8.4f\n", local.name.c_str(), local.params.batch,
            local.params.channels, localMs, static_cast<long long>(merged.numTokens), globalMs,
            static_cast<long long>(merged2.numTokens), unmergeMs);
    }
}

} // namespace

int main(int argc, char** argv)
{
    int const runs = argc > 1 ? std::atoi(argv[1]) : 50;
    int devices = 0;
    cudaError_t const error = cudaGetDeviceCount(&devices);
    if (error != cudaSuccess || devices == 0)
    {
        std::printf("algm_cuda_check: no CUDA GPU available (%s) -- skipped\n",
            error != cudaSuccess ? cudaGetErrorString(error) : "no devices");
        return kExitNoGpu;
    }
    try
    {
        cudaDeviceProp properties;
        checkCuda(cudaGetDeviceProperties(&properties, 0), "cudaGetDeviceProperties");
        std::printf("GPU: %s (sm_%d%d)\n\n", properties.name, properties.major, properties.minor);
        Report report;
        checkAll(report);
        timeAll(runs);
        std::printf("\n%s: %d mismatches\n", report.failures() == 0 ? "PASS" : "FAIL", report.failures());
        return report.failures() == 0 ? 0 : kExitMismatch;
    }
    catch (std::exception const& e)
    {
        std::printf("algm_cuda_check: CUDA error: %s\n", e.what());
        return kExitCudaError;
    }
}
