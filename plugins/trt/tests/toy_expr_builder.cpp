#include "toy_expr_builder.h"

#include <algorithm>
#include <limits>

namespace algm::test
{
namespace
{
using nvinfer1::DimensionOperation;

int64_t floorDiv(int64_t a, int64_t b)
{
    int64_t const quotient = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? quotient - 1 : quotient;
}

std::optional<int64_t> evaluate(DimensionOperation op, int64_t a, int64_t b)
{
    switch (op)
    {
    case DimensionOperation::kSUM: return a + b;
    case DimensionOperation::kPROD: return a * b;
    case DimensionOperation::kMAX: return std::max(a, b);
    case DimensionOperation::kMIN: return std::min(a, b);
    case DimensionOperation::kSUB: return a - b;
    case DimensionOperation::kEQUAL: return a == b ? 1 : 0;
    case DimensionOperation::kLESS: return a < b ? 1 : 0;
    case DimensionOperation::kFLOOR_DIV: return b == 0 ? std::nullopt : std::optional<int64_t>(floorDiv(a, b));
    case DimensionOperation::kCEIL_DIV: return b == 0 ? std::nullopt : std::optional<int64_t>(-floorDiv(-a, b));
    }
    return std::nullopt;
}
} // namespace

class ToyExpr::Impl final : public nvinfer1::apiv::VDimensionExpr
{
public:
    explicit Impl(ToyExpr const& owner)
        : mOwner(owner)
    {
    }

    bool isConstant() const override
    {
        return mOwner.constant();
    }

    int64_t getConstantValue() const override
    {
        return mOwner.constant() ? *mOwner.value() : std::numeric_limits<int64_t>::min(); // as documented
    }

    bool isSizeTensor() const override
    {
        return mOwner.kind() == Kind::kSizeTensor;
    }

private:
    ToyExpr const& mOwner;
};

ToyExpr::ToyExpr(Kind kind, std::optional<int64_t> value, bool dependsOnSizeTensor)
    : mKind(kind)
    , mValue(value)
    , mDependsOnSizeTensor(dependsOnSizeTensor)
    , mImplObject(std::make_unique<Impl>(*this))
{
    mImpl = mImplObject.get();
}

ToyExpr::~ToyExpr() noexcept = default;

ToyExpr::Kind ToyExpr::kind() const noexcept
{
    return mKind;
}

bool ToyExpr::constant() const noexcept
{
    return mKind == Kind::kConstant;
}

std::optional<int64_t> ToyExpr::value() const noexcept
{
    return mValue;
}

bool ToyExpr::dependsOnSizeTensor() const noexcept
{
    return mDependsOnSizeTensor;
}

// The public IExprBuilder methods are noexcept: report misuse through errors() and nullptr, never throw.
class ToyExprBuilder::Impl final : public nvinfer1::apiv::VExprBuilder
{
public:
    explicit Impl(ToyExprBuilder& owner)
        : mOwner(owner)
    {
    }

    nvinfer1::IDimensionExpr const* constant(int64_t value) override
    {
        return mOwner.make(ToyExpr::Kind::kConstant, value, false);
    }

    nvinfer1::IDimensionExpr const* operation(
        DimensionOperation op, nvinfer1::IDimensionExpr const& first, nvinfer1::IDimensionExpr const& second) override
    {
        ToyExpr const* a = toy(first);
        ToyExpr const* b = toy(second);
        if (a == nullptr || b == nullptr)
        {
            return nullptr;
        }
        std::optional<int64_t> value;
        if (a->value() && b->value())
        {
            value = evaluate(op, *a->value(), *b->value());
        }
        bool const constant = a->constant() && b->constant() && value.has_value();
        return mOwner.make(constant ? ToyExpr::Kind::kConstant : ToyExpr::Kind::kOperation, value,
            a->dependsOnSizeTensor() || b->dependsOnSizeTensor());
    }

    nvinfer1::IDimensionExpr const* declareSizeTensor(
        int32_t outputIndex, nvinfer1::IDimensionExpr const& opt, nvinfer1::IDimensionExpr const& upper) override
    {
        ToyExpr const* toyOpt = toy(opt);
        ToyExpr const* toyUpper = toy(upper);
        if (toyOpt == nullptr || toyUpper == nullptr)
        {
            return nullptr;
        }
        if (toyOpt->dependsOnSizeTensor())
        {
            note("declareSizeTensor: the optimum depends on a size tensor, which TensorRT does not allow");
        }
        ToyExpr const* sizeTensor = mOwner.make(ToyExpr::Kind::kSizeTensor, std::nullopt, true);
        if (sizeTensor != nullptr)
        {
            try
            {
                mOwner.mDeclarations.push_back({outputIndex, toyOpt, toyUpper, sizeTensor});
            }
            catch (...)
            {
                return nullptr;
            }
        }
        return sizeTensor;
    }

private:
    ToyExpr const* toy(nvinfer1::IDimensionExpr const& expr)
    {
        auto const* result = dynamic_cast<ToyExpr const*>(&expr);
        if (result == nullptr)
        {
            note("an expression that this builder did not make");
        }
        return result;
    }

    void note(char const* error)
    {
        try
        {
            mOwner.mErrors.emplace_back(error);
        }
        catch (...)
        {
        }
    }

    ToyExprBuilder& mOwner;
};

ToyExprBuilder::ToyExprBuilder()
    : mImplObject(std::make_unique<Impl>(*this))
{
    mImpl = mImplObject.get();
}

ToyExprBuilder::~ToyExprBuilder() noexcept = default;

ToyExpr const* ToyExprBuilder::constantDim(int64_t value)
{
    return make(ToyExpr::Kind::kConstant, value, false);
}

ToyExpr const* ToyExprBuilder::symbolDim(int64_t value)
{
    return make(ToyExpr::Kind::kSymbol, value, false);
}

ToyExpr const* ToyExprBuilder::dataDependentDim()
{
    return make(ToyExpr::Kind::kSizeTensor, std::nullopt, true);
}

std::vector<ToyExprBuilder::SizeTensorDeclaration> const& ToyExprBuilder::declarations() const noexcept
{
    return mDeclarations;
}

std::vector<std::string> const& ToyExprBuilder::errors() const noexcept
{
    return mErrors;
}

ToyExpr const* ToyExprBuilder::make(ToyExpr::Kind kind, std::optional<int64_t> value, bool dependsOnSizeTensor)
{
    try
    {
        mExprs.push_back(std::make_unique<ToyExpr>(kind, value, dependsOnSizeTensor));
        return mExprs.back().get();
    }
    catch (...)
    {
        return nullptr;
    }
}

} // namespace algm::test
