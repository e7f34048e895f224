// Running a deserialized TensorRT engine at batch 1: device buffers, timing, outputs back on the host.
#pragma once

#include <NvInferRuntime.h>
#include <cuda_runtime_api.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace sample
{

// Prints TensorRT's warnings and errors to stderr.
class Logger final : public nvinfer1::ILogger
{
public:
    void log(Severity severity, char const* message) noexcept override;
};

// Registers the creators of a plugin library that exports getCreators() (libalgm_plugins.so) with
// TensorRT's global plugin registry, where engine deserialization looks them up.
void loadPluginLibrary(std::string const& path);

// A tensor copied back to the host.
struct HostTensor
{
    nvinfer1::DataType type{};
    nvinfer1::Dims shape{};
    std::vector<uint8_t> bytes;
};

// Owns cudaMalloc'ed memory.
class DeviceBuffer
{
public:
    DeviceBuffer() = default;
    // Device memory, or pinned host memory when `onHost` (for outputs TensorRT keeps on the host:
    // getTensorLocation() == kHOST, as it may for shape and size tensors).
    explicit DeviceBuffer(size_t bytes, bool onHost = false);
    DeviceBuffer(DeviceBuffer&& other) noexcept;
    DeviceBuffer& operator=(DeviceBuffer&& other) noexcept;
    DeviceBuffer(DeviceBuffer const&) = delete;
    DeviceBuffer& operator=(DeviceBuffer const&) = delete;
    ~DeviceBuffer();

    void* data() const noexcept;
    size_t size() const noexcept;

private:
    void* mData = nullptr;
    size_t mSize = 0;
    bool mOnHost = false;
};

// Memory for an output whose shape is only known once the engine has run (a data-dependent shape):
// TensorRT asks for it during enqueueV3 and reports the shape.
class OutputAllocator final : public nvinfer1::IOutputAllocator
{
public:
    void* reallocateOutputAsync(char const* tensorName, void* currentMemory, uint64_t size, uint64_t alignment,
        cudaStream_t stream) noexcept override;
    void notifyShape(char const* tensorName, nvinfer1::Dims const& dims) noexcept override;

    void* data() const noexcept;
    nvinfer1::Dims const& shape() const noexcept;

private:
    DeviceBuffer mBuffer;
    nvinfer1::Dims mShape{};
};

class Session
{
public:
    // Deserializes the engine at `planPath` (its plugins must be registered already).
    Session(std::string const& planPath, nvinfer1::ILogger& logger);
    ~Session();
    Session(Session const&) = delete;
    Session& operator=(Session const&) = delete;

    bool hasTensor(std::string const& name) const;

    // Sets the shape of the float32 input `name`, uploads `data` and binds memory to every output.
    void setInput(std::string const& name, nvinfer1::Dims const& shape, std::vector<float> const& data);

    // Runs `warmup` untimed then `runs` timed inferences; returns each timed latency in milliseconds
    // (CUDA events recorded around enqueueV3 on the session's stream).
    std::vector<float> run(int warmup, int runs);

    // Output `name` of the last run.
    HostTensor output(std::string const& name) const;

private:
    // Declared so that the context is destroyed first, the memory it was given after it.
    std::unique_ptr<nvinfer1::IRuntime> mRuntime;
    std::unique_ptr<nvinfer1::ICudaEngine> mEngine;
    std::map<std::string, DeviceBuffer> mBuffers;                       // input and fixed-shape outputs
    std::map<std::string, std::unique_ptr<OutputAllocator>> mAllocated; // data-dependent outputs
    std::unique_ptr<nvinfer1::IExecutionContext> mContext;
    cudaStream_t mStream = nullptr;
};

} // namespace sample
