// A toy IExprBuilder for calling getOutputShapes() without TensorRT.
//
// The public IExprBuilder/IDimensionExpr classes of NvInferRuntime.h are thin wrappers: every method
// forwards to an implementation object (apiv::VExprBuilder / apiv::VDimensionExpr, NvInferImpl.h) held in
// the protected member mImpl. Here the wrappers are subclassed and given implementations that evaluate
// the expressions, so the test can check the values and structure of the plugins' output shapes.
#pragma once

#include <NvInferRuntime.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace algm::test
{

// An expression with the value the test knows, whether or not TensorRT would know it at build time.
class ToyExpr final : public nvinfer1::IDimensionExpr
{
public:
    enum class Kind
    {
        kConstant,   // known at build time
        kSymbol,     // an input extent known only at run time (e.g. a dynamic batch); the test gives its value
        kSizeTensor, // declared with declareSizeTensor: data-dependent, no value
        kOperation,  // built by IExprBuilder::operation
    };

    ToyExpr(Kind kind, std::optional<int64_t> value, bool dependsOnSizeTensor);
    ~ToyExpr() noexcept override;

    Kind kind() const noexcept;
    bool constant() const noexcept;
    std::optional<int64_t> value() const noexcept; // nullopt when data-dependent
    bool dependsOnSizeTensor() const noexcept;

private:
    class Impl;
    Kind mKind;
    std::optional<int64_t> mValue;
    bool mDependsOnSizeTensor;
    std::unique_ptr<Impl> mImplObject;
};

class ToyExprBuilder final : public nvinfer1::IExprBuilder
{
public:
    struct SizeTensorDeclaration
    {
        int32_t outputIndex;
        ToyExpr const* opt;
        ToyExpr const* upper;
        ToyExpr const* sizeTensor; // what declareSizeTensor returned
    };

    ToyExprBuilder();
    ~ToyExprBuilder() noexcept override;

    // Input extents for DimsExprs given to getOutputShapes().
    ToyExpr const* constantDim(int64_t value);
    ToyExpr const* symbolDim(int64_t value);
    ToyExpr const* dataDependentDim(); // like an extent produced by an earlier size tensor

    std::vector<SizeTensorDeclaration> const& declarations() const noexcept;

    // Misuse noticed while building (an optimum that depends on a size tensor, a foreign expression, ...).
    std::vector<std::string> const& errors() const noexcept;

private:
    class Impl;
    ToyExpr const* make(ToyExpr::Kind kind, std::optional<int64_t> value, bool dependsOnSizeTensor);

    std::vector<std::unique_ptr<ToyExpr>> mExprs;
    std::vector<SizeTensorDeclaration> mDeclarations;
    std::vector<std::string> mErrors;
    std::unique_ptr<Impl> mImplObject;
};

} // namespace algm::test
