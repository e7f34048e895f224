#include "trt_session.h"
#include "trt_tensors.h"

#include <cstdio>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <utility>

namespace sample
{
namespace
{
void checkCuda(cudaError_t status, char const* what)
{
    if (status != cudaSuccess)
    {
        throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(status));
    }
}

std::vector<char> readFile(std::string const& path)
{
    std::ifstream file(path, std::ios::binary);
    if (!file)
    {
        throw std::runtime_error(path + ": cannot open");
    }
    return std::vector<char>(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
}
} // namespace

void Logger::log(Severity severity, char const* message) noexcept
{
    if (severity <= Severity::kWARNING)
    {
        std::fprintf(stderr, "[TensorRT] %s\n", message);
    }
}

void loadPluginLibrary(std::string const& path)
{
    if (getPluginRegistry()->loadLibrary(path.c_str()) == nullptr)
    {
        throw std::runtime_error(path + ": TensorRT could not load this plugin library (see its messages above)");
    }
}

DeviceBuffer::DeviceBuffer(size_t bytes, bool onHost)
    : mSize(bytes)
    , mOnHost(onHost)
{
    size_t const allocated = bytes == 0 ? 1 : bytes; // never a null address
    checkCuda(onHost ? cudaMallocHost(&mData, allocated) : cudaMalloc(&mData, allocated),
        onHost ? "cudaMallocHost" : "cudaMalloc");
}

DeviceBuffer::DeviceBuffer(DeviceBuffer&& other) noexcept
    : mData(std::exchange(other.mData, nullptr))
    , mSize(std::exchange(other.mSize, 0))
    , mOnHost(std::exchange(other.mOnHost, false))
{
}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& other) noexcept
{
    if (this != &other)
    {
        DeviceBuffer released(std::move(*this)); // frees the current memory the right way
        mData = std::exchange(other.mData, nullptr);
        mSize = std::exchange(other.mSize, 0);
        mOnHost = std::exchange(other.mOnHost, false);
    }
    return *this;
}

DeviceBuffer::~DeviceBuffer()
{
    if (mOnHost)
    {
        cudaFreeHost(mData);
    }
    else
    {
        cudaFree(mData);
    }
}

void* DeviceBuffer::data() const noexcept
{
    return mData;
}

size_t DeviceBuffer::size() const noexcept
{
    return mSize;
}

void* OutputAllocator::reallocateOutputAsync(char const* /*tensorName*/, void* /*currentMemory*/, uint64_t size,
    uint64_t /*alignment*/, cudaStream_t stream) noexcept
{
    // cudaMalloc'ed memory is aligned for any TensorRT type. Grow only; keep the buffer between runs.
    if (size > mBuffer.size())
    {
        try
        {
            cudaStreamSynchronize(stream); // the old buffer may still be in use on the stream
            mBuffer = DeviceBuffer(size);
        }
        catch (std::exception const&)
        {
            return nullptr;
        }
    }
    return mBuffer.data();
}

void OutputAllocator::notifyShape(char const* /*tensorName*/, nvinfer1::Dims const& dims) noexcept
{
    mShape = dims;
}

void* OutputAllocator::data() const noexcept
{
    return mBuffer.data();
}

nvinfer1::Dims const& OutputAllocator::shape() const noexcept
{
    return mShape;
}

Session::Session(std::string const& planPath, nvinfer1::ILogger& logger)
    : mRuntime(nvinfer1::createInferRuntime(logger))
{
    if (!mRuntime)
    {
        throw std::runtime_error("cannot create the TensorRT runtime");
    }
    std::vector<char> const plan = readFile(planPath);
    mEngine.reset(mRuntime->deserializeCudaEngine(plan.data(), plan.size()));
    if (!mEngine)
    {
        throw std::runtime_error(planPath
            + ": cannot deserialize the engine (built by another TensorRT version or GPU? plugins not loaded?)");
    }
    mContext.reset(mEngine->createExecutionContext());
    if (!mContext)
    {
        throw std::runtime_error("cannot create an execution context");
    }
    checkCuda(cudaStreamCreate(&mStream), "cudaStreamCreate");
}

Session::~Session()
{
    if (mStream != nullptr)
    {
        cudaStreamSynchronize(mStream);
        cudaStreamDestroy(mStream);
    }
}

bool Session::hasTensor(std::string const& name) const
{
    for (int32_t i = 0; i < mEngine->getNbIOTensors(); ++i)
    {
        if (name == mEngine->getIOTensorName(i))
        {
            return true;
        }
    }
    return false;
}

void Session::setInput(std::string const& name, nvinfer1::Dims const& shape, std::vector<float> const& data)
{
    if (!hasTensor(name) || mEngine->getTensorIOMode(name.c_str()) != nvinfer1::TensorIOMode::kINPUT)
    {
        throw std::runtime_error("the engine has no input '" + name + "'");
    }
    if (mEngine->getTensorDataType(name.c_str()) != nvinfer1::DataType::kFLOAT)
    {
        throw std::runtime_error("input '" + name + "' is not float32");
    }
    if (volume(shape) != static_cast<int64_t>(data.size()) || !mContext->setInputShape(name.c_str(), shape))
    {
        throw std::runtime_error("the engine does not accept this shape for input '" + name + "'");
    }
    DeviceBuffer input(data.size() * sizeof(float));
    checkCuda(cudaMemcpy(input.data(), data.data(), input.size(), cudaMemcpyHostToDevice), "upload the input");
    mContext->setTensorAddress(name.c_str(), input.data());
    mBuffers[name] = std::move(input);

    // With the input shape set, every output shape is known except data-dependent ones (-1 extents).
    for (int32_t i = 0; i < mEngine->getNbIOTensors(); ++i)
    {
        char const* tensor = mEngine->getIOTensorName(i);
        if (mEngine->getTensorIOMode(tensor) != nvinfer1::TensorIOMode::kOUTPUT)
        {
            continue;
        }
        int64_t const count = volume(mContext->getTensorShape(tensor));
        if (count < 0)
        {
            auto allocator = std::make_unique<OutputAllocator>();
            if (!mContext->setOutputAllocator(tensor, allocator.get()))
            {
                throw std::runtime_error(std::string("cannot set an output allocator for '") + tensor + "'");
            }
            mAllocated[tensor] = std::move(allocator);
            continue;
        }
        bool const onHost = mEngine->getTensorLocation(tensor) == nvinfer1::TensorLocation::kHOST;
        DeviceBuffer buffer(static_cast<size_t>(count) * elementSize(mEngine->getTensorDataType(tensor)), onHost);
        mContext->setTensorAddress(tensor, buffer.data());
        mBuffers[tensor] = std::move(buffer);
    }
}

std::vector<float> Session::run(int warmup, int runs)
{
    cudaEvent_t start = nullptr;
    cudaEvent_t stop = nullptr;
    checkCuda(cudaEventCreate(&start), "cudaEventCreate");
    checkCuda(cudaEventCreate(&stop), "cudaEventCreate");
    std::vector<float> latencies;
    try
    {
        for (int i = 0; i < warmup + runs; ++i)
        {
            checkCuda(cudaEventRecord(start, mStream), "cudaEventRecord");
            if (!mContext->enqueueV3(mStream))
            {
                throw std::runtime_error("inference failed (see TensorRT's messages above)");
            }
            checkCuda(cudaEventRecord(stop, mStream), "cudaEventRecord");
            checkCuda(cudaEventSynchronize(stop), "inference");
            float milliseconds = 0.F;
            checkCuda(cudaEventElapsedTime(&milliseconds, start, stop), "cudaEventElapsedTime");
            if (i >= warmup)
            {
                latencies.push_back(milliseconds);
            }
        }
    }
    catch (...)
    {
        cudaEventDestroy(start);
        cudaEventDestroy(stop);
        throw;
    }
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    return latencies;
}

HostTensor Session::output(std::string const& name) const
{
    HostTensor tensor;
    tensor.type = mEngine->getTensorDataType(name.c_str());
    void const* source = nullptr;
    if (auto allocated = mAllocated.find(name); allocated != mAllocated.end())
    {
        tensor.shape = allocated->second->shape();
        source = allocated->second->data();
    }
    else if (auto buffer = mBuffers.find(name); buffer != mBuffers.end())
    {
        tensor.shape = mContext->getTensorShape(name.c_str());
        source = buffer->second.data();
    }
    else
    {
        throw std::runtime_error("the engine has no output '" + name + "' (or setInput was not called)");
    }
    // Guarded: before a run a data-dependent output has no data and may have unknown (-1) extents.
    tensor.bytes.resize(hostBytes(tensor.shape, tensor.type, source != nullptr, name));
    // cudaMemcpyDefault: `source` is device memory, or pinned host memory for host-resident outputs.
    checkCuda(cudaMemcpy(tensor.bytes.data(), source, tensor.bytes.size(), cudaMemcpyDefault),
        std::string("download '" + name + "'").c_str());
    return tensor;
}

} // namespace sample
