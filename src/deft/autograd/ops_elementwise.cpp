// Elementwise ops: forward and backward side by side.
#include "deft/autograd/ops.h"
#include "deft/tensor/kernels.h"

namespace deft {

using kernel::Binary;
using kernel::Unary;
namespace k = kernel;

namespace {
Tensor kmul(const Tensor& a, const Tensor& b) { return k::binary(Binary::Mul, a, b); }
Tensor kdiv(const Tensor& a, const Tensor& b) { return k::binary(Binary::Div, a, b); }
Tensor as_float(const Tensor& mask) { return k::convert(mask, DType::Float32); }
}  // namespace

// ---- binary, with broadcasting undone in backward ------------------------------------
static const OpDef& kAdd = define_op("add");
Tensor add(const Tensor& a, const Tensor& b) {
  Tensor out = k::binary(Binary::Add, a, b);
  if (!needs_grad({a, b})) return out;
  return record(kAdd, {a, b}, out, [sa = a.shape(), sb = b.shape()](const Tensor& g, NeedsGrad need) {
    return Grads{need[0] ? k::sum_to(g, sa) : Tensor(), need[1] ? k::sum_to(g, sb) : Tensor()};
  });
}

static const OpDef& kSub = define_op("sub");
Tensor sub(const Tensor& a, const Tensor& b) {
  Tensor out = k::binary(Binary::Sub, a, b);
  if (!needs_grad({a, b})) return out;
  return record(kSub, {a, b}, out, [sa = a.shape(), sb = b.shape()](const Tensor& g, NeedsGrad need) {
    return Grads{need[0] ? k::sum_to(g, sa) : Tensor(),
                 need[1] ? k::sum_to(k::unary(Unary::Neg, g), sb) : Tensor()};
  });
}

static const OpDef& kMul = define_op("mul");
Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor out = k::binary(Binary::Mul, a, b);
  if (!needs_grad({a, b})) return out;
  return record(kMul, {a, b}, out, [a = a.detach(), b = b.detach()](const Tensor& g, NeedsGrad need) {
    return Grads{need[0] ? k::sum_to(kmul(g, b), a.shape()) : Tensor(),
                 need[1] ? k::sum_to(kmul(g, a), b.shape()) : Tensor()};
  });
}

static const OpDef& kDiv = define_op("div");
Tensor div(const Tensor& a, const Tensor& b) {
  Tensor out = k::binary(Binary::Div, a, b);
  if (!needs_grad({a, b})) return out;
  return record(kDiv, {a, b}, out,
                [a = a.detach(), b = b.detach(), y = out.detach()](const Tensor& g, NeedsGrad need) {
                  Tensor ga, gb;
                  const Tensor g_over_b = kdiv(g, b);
                  if (need[0]) ga = k::sum_to(g_over_b, a.shape());
                  if (need[1]) gb = k::sum_to(k::unary(Unary::Neg, kmul(g_over_b, y)), b.shape());
                  return Grads{ga, gb};
                });
}

static const OpDef& kPow = define_op("pow");
Tensor pow(const Tensor& a, const Tensor& b) {
  Tensor out = k::binary(Binary::Pow, a, b);
  if (!needs_grad({a, b})) return out;
  return record(kPow, {a, b}, out,
                [a = a.detach(), b = b.detach(), y = out.detach()](const Tensor& g, NeedsGrad need) {
                  Tensor ga, gb;
                  // d/da a^b = b a^(b-1); d/db a^b = a^b log a
                  if (need[0])
                    ga = k::sum_to(kmul(g, kmul(b, k::binary(Binary::Pow, a, k::affine(b, 1.0f, -1.0f)))),
                                   a.shape());
                  if (need[1]) gb = k::sum_to(kmul(g, kmul(y, k::unary(Unary::Log, a))), b.shape());
                  return Grads{ga, gb};
                });
}

namespace {
// Gradient share of `a` in maximum/minimum: 1 where it wins, 1/2 on ties.
Tensor winner_share(const Tensor& a, const Tensor& b, Binary wins) {
  return k::binary(Binary::Add, as_float(k::binary(wins, a, b)),
                   k::affine(as_float(k::binary(Binary::Eq, a, b)), 0.5f, 0.0f));
}
Tensor min_max(const OpDef& op, Binary kind, Binary wins, Binary loses, const Tensor& a, const Tensor& b) {
  Tensor out = k::binary(kind, a, b);
  if (!needs_grad({a, b})) return out;
  return record(op, {a, b}, out, [a = a.detach(), b = b.detach(), wins, loses](const Tensor& g, NeedsGrad need) {
    Tensor ga, gb;
    if (need[0]) ga = k::sum_to(kmul(g, winner_share(a, b, wins)), a.shape());
    if (need[1]) gb = k::sum_to(kmul(g, winner_share(a, b, loses)), b.shape());
    return Grads{ga, gb};
  });
}
}  // namespace

static const OpDef& kMaximum = define_op("maximum");
Tensor maximum(const Tensor& a, const Tensor& b) {
  return min_max(kMaximum, Binary::Maximum, Binary::Gt, Binary::Lt, a, b);
}
static const OpDef& kMinimum = define_op("minimum");
Tensor minimum(const Tensor& a, const Tensor& b) {
  return min_max(kMinimum, Binary::Minimum, Binary::Lt, Binary::Gt, a, b);
}

static const OpDef& kWhere = define_op("where");
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  Tensor out = k::where(cond, a, b);
  if (!needs_grad({a, b})) return out;
  return record(kWhere, {a, b}, out,
                [c = cond.detach(), sa = a.shape(), sb = b.shape()](const Tensor& g, NeedsGrad need) {
                  const Tensor zero = Tensor::zeros({});
                  return Grads{need[0] ? k::sum_to(k::where(c, g, zero), sa) : Tensor(),
                               need[1] ? k::sum_to(k::where(c, zero, g), sb) : Tensor()};
                });
}

// ---- unary -------------------------------------------------------------------------------
static const OpDef& kNeg = define_op("neg");
Tensor neg(const Tensor& x) {
  Tensor out = k::unary(Unary::Neg, x);
  if (!needs_grad({x})) return out;
  return record(kNeg, {x}, out, [](const Tensor& g, NeedsGrad) { return Grads{k::unary(Unary::Neg, g)}; });
}

static const OpDef& kAffine = define_op("affine");
Tensor affine(const Tensor& x, float scale, float shift) {
  Tensor out = k::affine(x, scale, shift);
  if (!needs_grad({x})) return out;
  return record(kAffine, {x}, out,
                [scale](const Tensor& g, NeedsGrad) { return Grads{k::affine(g, scale, 0.0f)}; });
}

static const OpDef& kPowScalar = define_op("pow_scalar");
Tensor pow(const Tensor& x, float p) {
  Tensor out = k::pow_scalar(x, p);
  if (!needs_grad({x})) return out;
  return record(kPowScalar, {x}, out, [x = x.detach(), p](const Tensor& g, NeedsGrad) {
    const Tensor d = p == 2.0f ? k::affine(x, 2.0f, 0.0f) : k::affine(k::pow_scalar(x, p - 1.0f), p, 0.0f);
    return Grads{kmul(g, d)};
  });
}

Tensor square(const Tensor& x) { return pow(x, 2.0f); }

static const OpDef& kExp = define_op("exp");
Tensor exp(const Tensor& x) {
  Tensor out = k::unary(Unary::Exp, x);
  if (!needs_grad({x})) return out;
  return record(kExp, {x}, out, [y = out.detach()](const Tensor& g, NeedsGrad) { return Grads{kmul(g, y)}; });
}

static const OpDef& kLog = define_op("log");
Tensor log(const Tensor& x) {
  Tensor out = k::unary(Unary::Log, x);
  if (!needs_grad({x})) return out;
  return record(kLog, {x}, out, [x = x.detach()](const Tensor& g, NeedsGrad) { return Grads{kdiv(g, x)}; });
}

static const OpDef& kSqrt = define_op("sqrt");
Tensor sqrt(const Tensor& x) {
  Tensor out = k::unary(Unary::Sqrt, x);
  if (!needs_grad({x})) return out;
  return record(kSqrt, {x}, out, [y = out.detach()](const Tensor& g, NeedsGrad) {
    return Grads{kdiv(g, k::affine(y, 2.0f, 0.0f))};
  });
}

static const OpDef& kAbs = define_op("abs");
Tensor abs(const Tensor& x) {
  Tensor out = k::unary(Unary::Abs, x);
  if (!needs_grad({x})) return out;
  return record(kAbs, {x}, out,
                [x = x.detach()](const Tensor& g, NeedsGrad) { return Grads{kmul(g, k::unary(Unary::Sign, x))}; });
}

static const OpDef& kRelu = define_op("relu");
Tensor relu(const Tensor& x) {
  Tensor out = k::unary(Unary::Relu, x);
  if (!needs_grad({x})) return out;
  return record(kRelu, {x}, out, [x = x.detach()](const Tensor& g, NeedsGrad) { return Grads{k::relu_backward(g, x)}; });
}

static const OpDef& kLeakyRelu = define_op("leaky_relu");
Tensor leaky_relu(const Tensor& x, float slope) {
  Tensor out = k::leaky_relu(x, slope);
  if (!needs_grad({x})) return out;
  return record(kLeakyRelu, {x}, out, [x = x.detach(), slope](const Tensor& g, NeedsGrad) {
    return Grads{k::leaky_relu_backward(g, x, slope)};
  });
}

static const OpDef& kElu = define_op("elu");
Tensor elu(const Tensor& x, float alpha) {
  Tensor out = k::elu(x, alpha);
  if (!needs_grad({x})) return out;
  return record(kElu, {x}, out,
                [x = x.detach(), alpha](const Tensor& g, NeedsGrad) { return Grads{k::elu_backward(g, x, alpha)}; });
}

static const OpDef& kGelu = define_op("gelu");
Tensor gelu(const Tensor& x) {
  Tensor out = k::unary(Unary::Gelu, x);
  if (!needs_grad({x})) return out;
  return record(kGelu, {x}, out, [x = x.detach()](const Tensor& g, NeedsGrad) { return Grads{k::gelu_backward(g, x)}; });
}

static const OpDef& kSilu = define_op("silu");
Tensor silu(const Tensor& x) {
  Tensor out = k::unary(Unary::Silu, x);
  if (!needs_grad({x})) return out;
  return record(kSilu, {x}, out, [x = x.detach()](const Tensor& g, NeedsGrad) { return Grads{k::silu_backward(g, x)}; });
}

static const OpDef& kSigmoid = define_op("sigmoid");
Tensor sigmoid(const Tensor& x) {
  Tensor out = k::unary(Unary::Sigmoid, x);
  if (!needs_grad({x})) return out;
  return record(kSigmoid, {x}, out,
                [y = out.detach()](const Tensor& g, NeedsGrad) { return Grads{k::sigmoid_backward(g, y)}; });
}

static const OpDef& kTanh = define_op("tanh");
Tensor tanh(const Tensor& x) {
  Tensor out = k::unary(Unary::Tanh, x);
  if (!needs_grad({x})) return out;
  return record(kTanh, {x}, out, [y = out.detach()](const Tensor& g, NeedsGrad) { return Grads{k::tanh_backward(g, y)}; });
}

static const OpDef& kClamp = define_op("clamp");
Tensor clamp(const Tensor& x, float low, float high) {
  Tensor out = k::clamp(x, low, high);
  if (!needs_grad({x})) return out;
  return record(kClamp, {x}, out, [x = x.detach(), low, high](const Tensor& g, NeedsGrad) {
    return Grads{k::clamp_backward(g, x, low, high)};
  });
}

// ---- operators and comparisons ----------------------------------------------------------
Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator-(const Tensor& x) { return neg(x); }
Tensor operator+(const Tensor& a, float s) { return affine(a, 1.0f, s); }
Tensor operator+(float s, const Tensor& a) { return affine(a, 1.0f, s); }
Tensor operator-(const Tensor& a, float s) { return affine(a, 1.0f, -s); }
Tensor operator-(float s, const Tensor& a) { return affine(a, -1.0f, s); }
Tensor operator*(const Tensor& a, float s) { return affine(a, s, 0.0f); }
Tensor operator*(float s, const Tensor& a) { return affine(a, s, 0.0f); }
Tensor operator/(const Tensor& a, float s) { return affine(a, 1.0f / s, 0.0f); }

Tensor eq(const Tensor& a, const Tensor& b) { return k::binary(Binary::Eq, a, b); }
Tensor ne(const Tensor& a, const Tensor& b) { return k::binary(Binary::Ne, a, b); }
Tensor lt(const Tensor& a, const Tensor& b) { return k::binary(Binary::Lt, a, b); }
Tensor le(const Tensor& a, const Tensor& b) { return k::binary(Binary::Le, a, b); }
Tensor gt(const Tensor& a, const Tensor& b) { return k::binary(Binary::Gt, a, b); }
Tensor ge(const Tensor& a, const Tensor& b) { return k::binary(Binary::Ge, a, b); }

}  // namespace deft
