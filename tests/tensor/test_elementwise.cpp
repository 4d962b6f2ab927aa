// Elementwise kernels: unary and binary ops with NumPy broadcasting on
// contiguous and strided inputs, comparisons, where(), error messages, the
// vectorised exp/sigmoid/tanh, and the fused backward helpers. References are
// naive double-precision loops.
#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <functional>
#include <limits>

#include "deft/tensor/vecmath.h"
#include "test_util.h"

using namespace deft;
namespace k = deft::kernel;

namespace {

using BinRef = std::function<double(double, double)>;

double ref_binary(k::Binary op, double x, double y) {
  switch (op) {
    case k::Binary::Add:
      return x + y;
    case k::Binary::Sub:
      return x - y;
    case k::Binary::Mul:
      return x * y;
    case k::Binary::Div:
      return x / y;
    case k::Binary::Maximum:
      return std::max(x, y);
    case k::Binary::Minimum:
      return std::min(x, y);
    case k::Binary::Pow:
      return std::pow(x, y);
    case k::Binary::Eq:
      return x == y;
    case k::Binary::Ne:
      return x != y;
    case k::Binary::Lt:
      return x < y;
    case k::Binary::Le:
      return x <= y;
    case k::Binary::Gt:
      return x > y;
    case k::Binary::Ge:
      return x >= y;
  }
  return 0;
}

bool is_comparison(k::Binary op) { return op >= k::Binary::Eq; }

const k::Binary kAllBinary[] = {k::Binary::Add,     k::Binary::Sub,     k::Binary::Mul, k::Binary::Div,
                                k::Binary::Maximum, k::Binary::Minimum, k::Binary::Pow, k::Binary::Eq,
                                k::Binary::Ne,      k::Binary::Lt,      k::Binary::Le,  k::Binary::Gt,
                                k::Binary::Ge};

// Naive broadcast of a binary op over the logical values of a and b.
std::vector<double> naive_binary(k::Binary op, const Tensor& a, const Tensor& b, Shape* out_shape) {
  const Shape os = tt::bshape(a.shape(), b.shape());
  const auto av = a.to_vector<float>();
  const auto bv = b.to_vector<float>();
  std::vector<double> out(static_cast<size_t>(tt::numel(os)));
  std::vector<int64_t> idx(os.size(), 0);  // odometer over the output shape
  for (int64_t i = 0; i < tt::numel(os); ++i) {
    out[static_cast<size_t>(i)] = ref_binary(op, av[static_cast<size_t>(tt::bcast_flat(idx, a.shape()))],
                                             bv[static_cast<size_t>(tt::bcast_flat(idx, b.shape()))]);
    for (int64_t d = static_cast<int64_t>(os.size()) - 1; d >= 0 && ++idx[d] == os[d]; --d) idx[d] = 0;
  }
  if (out_shape) *out_shape = os;
  return out;
}

void check_binary_all_ops(const Tensor& a, const Tensor& b) {
  for (k::Binary op : kAllBinary) {
    SCOPED_TRACE(k::binary_name(op));
    Tensor out = k::binary(op, a, b);
    Shape os;
    const auto want = naive_binary(op, a, b, &os);
    ASSERT_EQ(out.shape(), os);
    ASSERT_TRUE(out.is_contiguous());
    if (is_comparison(op)) {
      ASSERT_EQ(out.dtype(), DType::UInt8);
      const auto got = out.to_vector<uint8_t>();
      for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], static_cast<uint8_t>(want[i])) << i;
    } else {
      ASSERT_EQ(out.dtype(), DType::Float32);
      ASSERT_TRUE(tt::all_close(out.to_vector<float>(), want, 1e-6, 2e-6));
    }
  }
}

// Positive inputs so that pow and div are well defined everywhere.
Tensor pos_tensor(const Shape& s, uint32_t seed) { return tt::rand_tensor(s, seed, 0.25f, 2.0f); }

}  // namespace

TEST(Elementwise, BinaryBroadcastingContiguous) {
  const std::vector<std::pair<Shape, Shape>> cases = {
      {{2, 3}, {2, 3}}, {{2, 3}, {3}},       {{2, 3}, {2, 1}},         {{4, 1, 3}, {5, 1}}, {{1}, {3, 4}},
      {{}, {2, 3}},     {{2, 3}, {}},        {{2, 1, 4}, {1, 3, 1}},   {{3, 1}, {1, 3}},    {{0, 3}, {3}},
      {{2, 0}, {1}},    {{1, 1, 1}, {2, 2}}, {{6, 1, 5, 1}, {7, 1, 2}}};
  uint32_t seed = 1;
  for (const auto& [sa, sb] : cases) {
    SCOPED_TRACE(shape_str(sa) + " vs " + shape_str(sb));
    check_binary_all_ops(pos_tensor(sa, seed), pos_tensor(sb, seed + 1));
    seed += 2;
  }
}

TEST(Elementwise, BinaryOnEqualValuesForComparisons) {
  // Comparisons need ties to be meaningful: integers stored as floats.
  Tensor a = Tensor::from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor b = Tensor::from_vector(std::vector<float>{2, 2, 4});
  check_binary_all_ops(a, b);
  check_binary_all_ops(b, a);
}

TEST(Elementwise, BinaryLargeTakesParallelPath) {
  // Above the parallel grain, both for the same-shape fast path and the broadcast path.
  check_binary_all_ops(pos_tensor({300, 257}, 11), pos_tensor({300, 257}, 12));
  check_binary_all_ops(pos_tensor({300, 257}, 13), pos_tensor({257}, 14));
  check_binary_all_ops(pos_tensor({300, 1}, 15), pos_tensor({1, 257}, 16));
}

TEST(Elementwise, BinaryNonContiguousOperands) {
  Tensor base = pos_tensor({6, 10}, 21);
  Tensor t = k::transpose(base, 0, 1);                            // [10,6]
  Tensor s = k::slice(k::slice(base, 0, 1, 6, 2), 1, -8, 10, 3);  // [3,3] strided
  Tensor e = k::expand(pos_tensor({10, 1}, 22), {10, 6});         // stride 0
  Tensor other = pos_tensor({10, 6}, 23);
  ASSERT_FALSE(t.is_contiguous());
  ASSERT_FALSE(s.is_contiguous());
  ASSERT_FALSE(e.is_contiguous());
  {
    SCOPED_TRACE("transposed + contiguous");
    check_binary_all_ops(t, other);
  }
  {
    SCOPED_TRACE("contiguous + transposed");
    check_binary_all_ops(other, t);
  }
  {
    SCOPED_TRACE("transposed + expanded");
    check_binary_all_ops(t, e);
  }
  {
    SCOPED_TRACE("sliced + broadcast row");
    check_binary_all_ops(s, pos_tensor({3}, 24));
  }
  {
    SCOPED_TRACE("sliced + transposed slice");
    check_binary_all_ops(s, k::transpose(s, 0, 1));
  }
  {
    SCOPED_TRACE("big transposed + big transposed");
    Tensor big = pos_tensor({257, 300}, 25);
    check_binary_all_ops(k::transpose(big, 0, 1), k::transpose(pos_tensor({257, 300}, 26), 0, 1));
    check_binary_all_ops(k::transpose(big, 0, 1), pos_tensor({300, 1}, 27));
  }
  {
    SCOPED_TRACE("3-d permuted");
    Tensor p = k::permute(pos_tensor({3, 4, 5}, 28), {2, 0, 1});  // [5,3,4]
    check_binary_all_ops(p, pos_tensor({3, 1}, 29));
  }
}

TEST(Elementwise, BinaryErrorsNameOpAndShapes) {
  Tensor a = Tensor::zeros({2, 3});
  Tensor b = Tensor::zeros({4});
  EXPECT_EQ(tt::error_message<ShapeError>([&] { k::binary(k::Binary::Add, a, b); }),
            "add: shapes [2,3] and [4] cannot be broadcast");
  EXPECT_EQ(tt::error_message<ShapeError>([&] { k::binary(k::Binary::Lt, b, a); }),
            "lt: shapes [4] and [2,3] cannot be broadcast");
  EXPECT_EQ(tt::error_message<ShapeError>([&] {
              k::binary(k::Binary::Mul, Tensor::zeros({2, 3, 4}), Tensor::zeros({3, 3, 4}));
            }),
            "mul: shapes [2,3,4] and [3,3,4] cannot be broadcast");
  // ShapeError is an InputError.
  EXPECT_THROW(k::binary(k::Binary::Sub, a, b), InputError);
  EXPECT_EQ(tt::error_message<InputError>([&] {
              k::binary(k::Binary::Add, a, Tensor::zeros({2, 3}, DType::Int64));
            }),
            "add: dtypes float32 and int64 differ; convert one explicitly with .to()");
  EXPECT_EQ(tt::error_message<InputError>([&] {
              k::binary(k::Binary::Div, Tensor::ones({2}, DType::Int64), Tensor::ones({2}, DType::Int64));
            }),
            "div: needs float32 operands, got int64; convert with .to(DType::Float32)");
  EXPECT_THROW(k::binary(k::Binary::Pow, Tensor::ones({2}, DType::UInt8), Tensor::ones({2}, DType::UInt8)),
               InputError);
  EXPECT_EQ(tt::error_message<InputError>([] { k::unary(k::Unary::Exp, Tensor::ones({2}, DType::Int64)); }),
            "exp: expects float32, got int64");
  EXPECT_EQ(k::broadcast_shapes({5, 1, 3}, {4, 1}, "x"), (Shape{5, 4, 3}));
  EXPECT_EQ(tt::error_message<ShapeError>([] {
              k::broadcast_shapes({3}, {2, 4}, "foo");
            }),
            "foo: shapes [3] and [2,4] cannot be broadcast");
}

TEST(Elementwise, IntegerArithmetic) {
  Tensor a = Tensor::from_vector(std::vector<int64_t>{-5, 0, 7, 1LL << 40, -3, 9}, {2, 3});
  Tensor b = Tensor::from_vector(std::vector<int64_t>{3, -2, 7});
  const auto av = a.to_vector<int64_t>();
  const auto bv = b.to_vector<int64_t>();
  auto expect_int = [&](k::Binary op, auto f) {
    SCOPED_TRACE(k::binary_name(op));
    Tensor out = k::binary(op, a, b);
    const auto got = out.to_vector<int64_t>();
    ASSERT_EQ(got.size(), 6u);
    for (size_t i = 0; i < 6; ++i) EXPECT_EQ(got[i], f(av[i], bv[i % 3])) << i;
  };
  expect_int(k::Binary::Add, [](int64_t x, int64_t y) { return x + y; });
  expect_int(k::Binary::Sub, [](int64_t x, int64_t y) { return x - y; });
  expect_int(k::Binary::Mul, [](int64_t x, int64_t y) { return x * y; });
  expect_int(k::Binary::Maximum, [](int64_t x, int64_t y) { return std::max(x, y); });
  expect_int(k::Binary::Minimum, [](int64_t x, int64_t y) { return std::min(x, y); });
  expect_int(k::Binary::Gt, [](int64_t x, int64_t y) -> int64_t { return x > y; });
  expect_int(k::Binary::Eq, [](int64_t x, int64_t y) -> int64_t { return x == y; });
  EXPECT_EQ(k::binary(k::Binary::Add, a, b).dtype(), DType::Int64);
  EXPECT_EQ(k::binary(k::Binary::Le, a, b).dtype(), DType::UInt8);

  Tensor neg = k::unary(k::Unary::Neg, k::transpose(a, 0, 1));
  EXPECT_EQ(neg.dtype(), DType::Int64);
  EXPECT_EQ(neg.to_vector<int64_t>(), (std::vector<int64_t>{5, -(1LL << 40), 0, 3, -7, -9}));
  Tensor ab = k::unary(k::Unary::Abs, a);
  EXPECT_EQ(ab.to_vector<int64_t>(), (std::vector<int64_t>{5, 0, 7, 1LL << 40, 3, 9}));

  // uint8 arithmetic wraps modulo 256; comparisons work on uint8 masks.
  Tensor u = Tensor::from_vector(std::vector<uint8_t>{250, 3, 128});
  Tensor v = Tensor::from_vector(std::vector<uint8_t>{10, 5, 128});
  EXPECT_EQ(k::binary(k::Binary::Add, u, v).to_vector<uint8_t>(), (std::vector<uint8_t>{4, 8, 0}));
  EXPECT_EQ(k::binary(k::Binary::Sub, u, v).to_vector<uint8_t>(), (std::vector<uint8_t>{240, 254, 0}));
  EXPECT_EQ(k::binary(k::Binary::Ge, u, v).to_vector<uint8_t>(), (std::vector<uint8_t>{1, 0, 1}));
  EXPECT_EQ(k::binary(k::Binary::Maximum, u, v).to_vector<uint8_t>(), (std::vector<uint8_t>{250, 5, 128}));
}

TEST(Elementwise, UnaryOpsMatchStd) {
  struct Case {
    k::Unary op;
    std::function<double(double)> ref;
    float lo, hi;
    double atol, rtol;
  };
  const double kInvSqrt2 = 0.70710678118654752440;
  const std::vector<Case> cases = {
      {k::Unary::Neg, [](double x) { return -x; }, -5, 5, 0, 0},
      {k::Unary::Abs, [](double x) { return std::fabs(x); }, -5, 5, 0, 0},
      {k::Unary::Exp, [](double x) { return std::exp(x); }, -20, 20, 0, 3e-7},
      {k::Unary::Log, [](double x) { return std::log(x); }, 1e-3f, 50, 1e-7, 3e-7},
      {k::Unary::Sqrt, [](double x) { return std::sqrt(x); }, 0, 50, 0, 1.2e-7},
      {k::Unary::Rsqrt, [](double x) { return 1 / std::sqrt(x); }, 1e-2f, 50, 0, 3e-7},
      {k::Unary::Square, [](double x) { return x * x; }, -5, 5, 0, 1.2e-7},
      {k::Unary::Reciprocal, [](double x) { return 1 / x; }, 0.1f, 5, 0, 1.2e-7},
      {k::Unary::Relu, [](double x) { return x > 0 ? x : 0.0; }, -5, 5, 0, 0},
      {k::Unary::Sigmoid, [](double x) { return 1 / (1 + std::exp(-x)); }, -30, 30, 1e-12, 1e-6},
      {k::Unary::Tanh, [](double x) { return std::tanh(x); }, -10, 10, 1e-12, 1e-6},
      {k::Unary::Gelu, [=](double x) { return 0.5 * x * (1 + std::erf(x * kInvSqrt2)); }, -8, 8, 1e-6, 1e-6},
      {k::Unary::Silu, [](double x) { return x / (1 + std::exp(-x)); }, -30, 30, 1e-6, 1e-6},
      {k::Unary::Sign, [](double x) { return static_cast<double>((x > 0) - (x < 0)); }, -5, 5, 0, 0},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(k::unary_name(c.op));
    // Contiguous (large: parallel), transposed, sliced with step and expanded inputs.
    Tensor base = tt::rand_tensor({150, 200}, 100 + static_cast<uint32_t>(c.op), c.lo, c.hi);
    const std::vector<Tensor> inputs = {
        base, k::transpose(base, 0, 1), k::slice(k::slice(base, 0, 3, 150, 7), 1, -50, 200, 3),
        k::expand(k::slice(base, 0, 0, 1), {4, 200}), Tensor::scalar(c.lo * 0.5f + c.hi * 0.5f)};
    for (const Tensor& x : inputs) {
      Tensor y = k::unary(c.op, x);
      ASSERT_EQ(y.shape(), x.shape());
      ASSERT_TRUE(y.is_contiguous());
      std::vector<double> want;
      for (float v : x.to_vector<float>()) want.push_back(c.ref(v));
      ASSERT_TRUE(tt::all_close(y.to_vector<float>(), want, c.atol, c.rtol))
          << "input " << shape_str(x.shape());
    }
  }
  // Zero-element input.
  EXPECT_EQ(k::unary(k::Unary::Exp, Tensor::zeros({0, 3})).shape(), (Shape{0, 3}));
  // Special values.
  Tensor sp = Tensor::from_vector(std::vector<float>{0.0f, -0.0f, INFINITY, -INFINITY, NAN});
  const auto sq = k::unary(k::Unary::Sqrt, sp).to_vector<float>();
  EXPECT_EQ(sq[2], INFINITY);
  EXPECT_TRUE(std::isnan(sq[4]));
  const auto lg = k::unary(k::Unary::Log, sp).to_vector<float>();
  EXPECT_EQ(lg[0], -INFINITY);
  EXPECT_EQ(lg[2], INFINITY);
  const auto rl = k::unary(k::Unary::Relu, sp).to_vector<float>();
  EXPECT_EQ(rl[2], INFINITY);
  EXPECT_EQ(rl[3], 0.0f);
  const auto sg = k::unary(k::Unary::Sign, sp).to_vector<float>();
  EXPECT_EQ(sg[0], 0.0f);
  EXPECT_EQ(sg[2], 1.0f);
  EXPECT_EQ(sg[3], -1.0f);
}

TEST(Elementwise, ScalarParamOps) {
  Tensor x = k::transpose(tt::rand_tensor({40, 30}, 7, -3, 3), 0, 1);
  const auto xv = x.to_vector<float>();
  auto check = [&](const Tensor& y, const std::function<double(double)>& f, double atol, double rtol) {
    ASSERT_EQ(y.shape(), x.shape());
    std::vector<double> want;
    for (float v : xv) want.push_back(f(v));
    EXPECT_TRUE(tt::all_close(y.to_vector<float>(), want, atol, rtol));
  };
  check(
      k::affine(x, 2.5f, -1.0f), [](double v) { return v * 2.5 - 1.0; }, 1e-6, 1e-6);
  check(
      k::pow_scalar(x, 2.0f), [](double v) { return v * v; }, 0, 1e-6);
  check(
      k::pow_scalar(x, 3.0f), [](double v) { return v * v * v; }, 1e-6, 1e-6);
  check(
      k::leaky_relu(x, 0.1f), [](double v) { return v > 0 ? v : 0.1 * v; }, 1e-7, 1e-6);
  check(
      k::elu(x, 1.5f), [](double v) { return v > 0 ? v : 1.5 * (std::exp(v) - 1); }, 1e-6, 1e-6);
  check(
      k::clamp(x, -1.0f, 0.5f), [](double v) { return std::min(std::max(v, -1.0), 0.5); }, 0, 0);
  Tensor pos = tt::rand_tensor({100}, 8, 0.1f, 4.0f);
  std::vector<double> want;
  for (float v : pos.to_vector<float>()) want.push_back(std::pow(static_cast<double>(v), 0.5));
  EXPECT_TRUE(tt::all_close(k::pow_scalar(pos, 0.5f).to_vector<float>(), want, 0, 3e-7));
}

TEST(Elementwise, NaNPropagationInMaximumMinimum) {
  Tensor a = Tensor::from_vector(std::vector<float>{NAN, 1.0f, 2.0f, NAN});
  Tensor b = Tensor::from_vector(std::vector<float>{0.0f, NAN, 1.0f, NAN});
  for (k::Binary op : {k::Binary::Maximum, k::Binary::Minimum}) {
    const auto r = k::binary(op, a, b).to_vector<float>();
    EXPECT_TRUE(std::isnan(r[0])) << k::binary_name(op);
    EXPECT_TRUE(std::isnan(r[1])) << k::binary_name(op);
    EXPECT_EQ(r[2], op == k::Binary::Maximum ? 2.0f : 1.0f);
    EXPECT_TRUE(std::isnan(r[3]));
  }
  // Comparisons with NaN are false, except ne.
  EXPECT_EQ(k::binary(k::Binary::Eq, a, a).to_vector<uint8_t>(), (std::vector<uint8_t>{0, 1, 1, 0}));
  EXPECT_EQ(k::binary(k::Binary::Ne, a, a).to_vector<uint8_t>(), (std::vector<uint8_t>{1, 0, 0, 1}));
}

TEST(Elementwise, Where) {
  Tensor a = tt::rand_tensor({3, 4}, 31);
  Tensor b = tt::rand_tensor({4}, 32);
  Tensor cond = k::binary(k::Binary::Gt, a, Tensor::scalar(0.0f));  // uint8 [3,4]
  ASSERT_EQ(cond.dtype(), DType::UInt8);
  Tensor w = k::where(cond, a, b);
  ASSERT_EQ(w.shape(), (Shape{3, 4}));
  const auto av = a.to_vector<float>(), bv = b.to_vector<float>(), wv = w.to_vector<float>();
  for (size_t i = 0; i < 12; ++i) EXPECT_EQ(wv[i], av[i] > 0 ? av[i] : bv[i % 4]);

  // Broadcast over all three operands, with transposed and expanded inputs.
  Tensor c2 =
      k::transpose(Tensor::from_vector(std::vector<uint8_t>{1, 0, 0, 1, 1, 0}, {3, 2}), 0, 1);  // [2,3]
  Tensor x = tt::rand_tensor({4, 1, 1}, 33);
  Tensor y = k::expand(tt::rand_tensor({1, 3}, 34), {2, 3});
  Tensor r = k::where(c2, x, y);
  ASSERT_EQ(r.shape(), (Shape{4, 2, 3}));
  const auto cv = c2.to_vector<uint8_t>();
  const auto xv = x.to_vector<float>(), yv = y.to_vector<float>(), rv = r.to_vector<float>();
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 2; ++j)
      for (int l = 0; l < 3; ++l) EXPECT_EQ(rv[(i * 2 + j) * 3 + l], cv[j * 3 + l] ? xv[i] : yv[j * 3 + l]);

  // Integer payloads.
  Tensor ri = k::where(Tensor::from_vector(std::vector<uint8_t>{1, 0}),
                       Tensor::from_vector(std::vector<int64_t>{5, 6}), Tensor::full({}, -1, DType::Int64));
  EXPECT_EQ(ri.to_vector<int64_t>(), (std::vector<int64_t>{5, -1}));

  EXPECT_EQ(tt::error_message<InputError>([&] { k::where(a, a, b); }),
            "where: condition must be uint8 (a comparison result), got float32");
  EXPECT_EQ(tt::error_message<InputError>([&] { k::where(cond, a, Tensor::zeros({4}, DType::Int64)); }),
            "where: dtypes float32 and int64 differ");
  EXPECT_EQ(tt::error_message<ShapeError>([&] { k::where(cond, a, Tensor::zeros({5})); }),
            "where: shapes [3,4] and [5] cannot be broadcast");
}

TEST(Elementwise, AddInplaceBroadcastsIntoDestination) {
  Tensor dst = tt::rand_tensor({5, 6}, 41);
  const auto before = dst.to_vector<float>();
  Tensor src = tt::rand_tensor({6}, 42);
  k::add_inplace(dst, src, 0.5f);
  const auto after = dst.to_vector<float>(), sv = src.to_vector<float>();
  for (size_t i = 0; i < 30; ++i) EXPECT_NEAR(after[i], before[i] + 0.5 * sv[i % 6], 1e-6);
  // Into a transposed view: the base sees the update at the transposed positions.
  Tensor base = Tensor::zeros({3, 4});
  k::add_inplace(k::transpose(base, 0, 1), k::reshape(Tensor::arange(0, 12), {4, 3}));
  const auto bv = base.to_vector<float>();
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 4; ++c) EXPECT_EQ(bv[r * 4 + c], static_cast<float>(c * 3 + r));
  // Large, alpha = 1 fast path.
  Tensor big = Tensor::ones({70000});
  k::add_inplace(big, Tensor::full({}, 2.0));
  for (float v : big.to_vector<float>()) ASSERT_EQ(v, 3.0f);
  EXPECT_EQ(tt::error_message<ShapeError>([&] { k::add_inplace(src, dst); }),
            "add_: shape [5,6] does not broadcast to [6]");
  EXPECT_THROW(k::add_inplace(dst, Tensor::zeros({6}, DType::Int64)), InputError);
}

// ---- vectorised exp / sigmoid / tanh ---------------------------------------------------

namespace {

// Inputs over [-100, 100] on a fine grid, plus the float neighbours of every
// threshold where exp over/underflows, plus the special values.
std::vector<float> vecmath_inputs() {
  std::vector<float> xs;
  for (int i = -100000; i <= 100000; ++i) xs.push_back(static_cast<float>(i) * 1e-3f);
  for (float t : {88.0f, 88.3762626647949f, 88.72283905f, -87.0f, -87.33654475f, -103.972077f, -43.0f, 43.0f,
                  -9.0f, 0.0625f, -0.0625f, 0.0f, -0.0f, 1e-30f, -1e-30f}) {
    float lo = t, hi = t;
    for (int j = 0; j < 40; ++j) {
      xs.push_back(lo);
      xs.push_back(hi);
      lo = std::nextafter(lo, -INFINITY);
      hi = std::nextafter(hi, INFINITY);
    }
  }
  for (float v : {INFINITY, -INFINITY, NAN, FLT_MAX, -FLT_MAX, 100.0f, -100.0f}) xs.push_back(v);
  return xs;
}

// got vs the double-precision reference: a few ulp where the float result is
// normal; within FLT_MIN where it is subnormal (the kernels flush to zero).
::testing::AssertionResult close_ulp(const std::vector<float>& xs, const std::vector<float>& got,
                                     double (*ref)(double), double rtol) {
  for (size_t i = 0; i < xs.size(); ++i) {
    const double x = xs[i];
    const double want = ref(x);
    const float g = got[i];
    const float wf = static_cast<float>(want);
    bool ok;
    if (std::isnan(want))
      ok = std::isnan(g);
    else if (std::isinf(wf))
      ok = g == wf;
    else if (std::fabs(want) < FLT_MIN)
      ok = std::fabs(g - want) <= FLT_MIN;
    else
      ok = std::fabs(g - want) <= rtol * std::fabs(want);
    if (!ok)
      return ::testing::AssertionFailure()
             << "x = " << std::hexfloat << xs[i] << std::defaultfloat << " (" << xs[i] << "): got " << g
             << ", want " << want << " (rel err " << std::fabs(g - want) / std::fabs(want) << ")";
  }
  return ::testing::AssertionSuccess();
}

double ref_exp(double x) { return std::exp(x); }
double ref_sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }
double ref_tanh(double x) { return std::tanh(x); }

}  // namespace

TEST(Vecmath, ExpAccuracyOverflowUnderflowNaN) {
  const auto xs = vecmath_inputs();
  // Through the (vectorised, multi-threaded) kernel and the scalar inline function.
  const auto got = k::unary(k::Unary::Exp, Tensor::from_vector(xs)).to_vector<float>();
  EXPECT_TRUE(close_ulp(xs, got, ref_exp, 3 * FLT_EPSILON));
  std::vector<float> scalar;
  for (float x : xs) scalar.push_back(vm::exp(x));
  EXPECT_TRUE(close_ulp(xs, scalar, ref_exp, 3 * FLT_EPSILON));

  EXPECT_EQ(vm::exp(INFINITY), INFINITY);
  EXPECT_EQ(vm::exp(-INFINITY), 0.0f);
  EXPECT_TRUE(std::isnan(vm::exp(NAN)));
  EXPECT_EQ(vm::exp(0.0f), 1.0f);
  EXPECT_EQ(vm::exp(89.0f), INFINITY);
  EXPECT_EQ(vm::exp(-100.0f), 0.0f);
  // The largest results stay finite right up to ln(FLT_MAX) ...
  EXPECT_NEAR(vm::exp(88.5f) / std::exp(static_cast<double>(88.5f)), 1.0, 1e-6);
  EXPECT_NEAR(vm::exp(88.72f) / std::exp(static_cast<double>(88.72f)), 1.0, 1e-6);
  // ... and the smallest normal results are not flushed.
  EXPECT_NEAR(vm::exp(-87.2f) / std::exp(static_cast<double>(-87.2f)), 1.0, 1e-6);
  EXPECT_NEAR(vm::exp(-87.33f) / std::exp(static_cast<double>(-87.33f)), 1.0, 1e-6);
}

TEST(Vecmath, SigmoidAccuracy) {
  const auto xs = vecmath_inputs();
  const auto got = k::unary(k::Unary::Sigmoid, Tensor::from_vector(xs)).to_vector<float>();
  EXPECT_TRUE(close_ulp(xs, got, ref_sigmoid, 1e-6));
  EXPECT_EQ(vm::sigmoid(INFINITY), 1.0f);
  EXPECT_EQ(vm::sigmoid(-INFINITY), 0.0f);
  EXPECT_TRUE(std::isnan(vm::sigmoid(NAN)));
  EXPECT_EQ(vm::sigmoid(0.0f), 0.5f);
  for (float x : {-100.0f, -20.0f, -1.0f, 3.0f, 50.0f}) {
    const float s = vm::sigmoid(x);
    EXPECT_GE(s, 0.0f);
    EXPECT_LE(s, 1.0f);
    EXPECT_NEAR(s + vm::sigmoid(-x), 1.0f, 1e-6f);
  }
}

TEST(Vecmath, TanhAccuracyAndSymmetry) {
  const auto xs = vecmath_inputs();
  const auto got = k::unary(k::Unary::Tanh, Tensor::from_vector(xs)).to_vector<float>();
  EXPECT_TRUE(close_ulp(xs, got, ref_tanh, 1e-6));
  for (size_t i = 0; i < xs.size(); ++i) {
    if (std::isnan(xs[i])) continue;
    ASSERT_EQ(vm::tanh(-xs[i]), -vm::tanh(xs[i])) << xs[i];
  }
  EXPECT_EQ(vm::tanh(INFINITY), 1.0f);
  EXPECT_EQ(vm::tanh(-INFINITY), -1.0f);
  EXPECT_EQ(vm::tanh(100.0f), 1.0f);
  EXPECT_TRUE(std::isnan(vm::tanh(NAN)));
  EXPECT_EQ(vm::tanh(0.0f), 0.0f);
  EXPECT_EQ(vm::tanh(1e-30f), 1e-30f);
}

// ---- fused backward helpers ----------------------------------------------------------------

TEST(Elementwise, BackwardHelpersMatchAnalyticAndFiniteDifferences) {
  const double kInvSqrt2 = 0.70710678118654752440, kInvSqrt2Pi = 0.39894228040143268;
  // Inputs kept away from the kinks of relu / leaky_relu / elu / clamp.
  std::vector<float> xv = tt::random_floats(400, 51, -4.0f, 4.0f);
  for (float& v : xv)
    for (float kink : {0.0f, -1.0f, 1.5f})
      if (std::fabs(v - kink) < 0.05f) v = kink + 0.1f;
  Tensor x = Tensor::from_vector(xv, {20, 20});
  Tensor g = tt::rand_tensor({20, 20}, 52, -2.0f, 2.0f);
  const auto gv = g.to_vector<float>();
  const float h = 1e-2f;
  Tensor xp = k::affine(x, 1.0f, h), xm = k::affine(x, 1.0f, -h);

  struct Case {
    const char* name;
    std::function<Tensor(const Tensor&)> fwd;                 // deft forward
    std::function<Tensor(const Tensor&, const Tensor&)> bwd;  // deft backward(g, x)
    std::function<double(double)> dref;                       // analytic derivative
  };
  auto sig = [](double v) { return 1 / (1 + std::exp(-v)); };
  const std::vector<Case> cases = {
      {"relu", [](const Tensor& t) { return k::unary(k::Unary::Relu, t); },
       [](const Tensor& gg, const Tensor& t) { return k::relu_backward(gg, t); },
       [](double v) { return v > 0 ? 1.0 : 0.0; }},
      {"leaky_relu", [](const Tensor& t) { return k::leaky_relu(t, 0.2f); },
       [](const Tensor& gg, const Tensor& t) { return k::leaky_relu_backward(gg, t, 0.2f); },
       [](double v) { return v > 0 ? 1.0 : 0.2; }},
      {"elu", [](const Tensor& t) { return k::elu(t, 0.7f); },
       [](const Tensor& gg, const Tensor& t) { return k::elu_backward(gg, t, 0.7f); },
       [](double v) { return v > 0 ? 1.0 : 0.7 * std::exp(v); }},
      {"sigmoid", [](const Tensor& t) { return k::unary(k::Unary::Sigmoid, t); },
       [](const Tensor& gg, const Tensor& t) {
         return k::sigmoid_backward(gg, k::unary(k::Unary::Sigmoid, t));
       },
       [=](double v) { return sig(v) * (1 - sig(v)); }},
      {"tanh", [](const Tensor& t) { return k::unary(k::Unary::Tanh, t); },
       [](const Tensor& gg, const Tensor& t) { return k::tanh_backward(gg, k::unary(k::Unary::Tanh, t)); },
       [](double v) { return 1 - std::tanh(v) * std::tanh(v); }},
      {"gelu", [](const Tensor& t) { return k::unary(k::Unary::Gelu, t); },
       [](const Tensor& gg, const Tensor& t) { return k::gelu_backward(gg, t); },
       [=](double v) {
         return 0.5 * (1 + std::erf(v * kInvSqrt2)) + v * kInvSqrt2Pi * std::exp(-0.5 * v * v);
       }},
      {"silu", [](const Tensor& t) { return k::unary(k::Unary::Silu, t); },
       [](const Tensor& gg, const Tensor& t) { return k::silu_backward(gg, t); },
       [=](double v) { return sig(v) * (1 + v * (1 - sig(v))); }},
      {"clamp", [](const Tensor& t) { return k::clamp(t, -1.0f, 1.5f); },
       [](const Tensor& gg, const Tensor& t) { return k::clamp_backward(gg, t, -1.0f, 1.5f); },
       [](double v) { return v >= -1.0 && v <= 1.5 ? 1.0 : 0.0; }},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const auto got = c.bwd(g, x).to_vector<float>();
    std::vector<double> analytic, fd;
    const auto fp = c.fwd(xp).to_vector<float>(), fm = c.fwd(xm).to_vector<float>();
    const auto xpv = xp.to_vector<float>(), xmv = xm.to_vector<float>();
    for (size_t i = 0; i < xv.size(); ++i) {
      analytic.push_back(gv[i] * c.dref(xv[i]));
      fd.push_back(gv[i] * (static_cast<double>(fp[i]) - fm[i]) / (static_cast<double>(xpv[i]) - xmv[i]));
    }
    EXPECT_TRUE(tt::all_close(got, analytic, 1e-5, 1e-5)) << "vs analytic";
    EXPECT_TRUE(tt::all_close(got, fd, 2e-3, 2e-3)) << "vs finite differences";
  }
  EXPECT_THROW(k::relu_backward(g, Tensor::zeros({20, 20}, DType::Int64)), InputError);
}
