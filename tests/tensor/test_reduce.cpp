// Reductions along any axes (sum/mean/max/min/logsumexp/argmax/argmin) with and
// without keepdim, on contiguous and strided inputs, against naive
// double-precision references; full reductions of large tensors; sum_to.
#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <limits>

#include "test_util.h"

using namespace deft;
namespace k = deft::kernel;

namespace {

enum class Op { Sum, Mean, Max, Min, LogSumExp };

const char* op_name(Op op) {
  switch (op) {
    case Op::Sum:
      return "sum";
    case Op::Mean:
      return "mean";
    case Op::Max:
      return "max";
    case Op::Min:
      return "min";
    case Op::LogSumExp:
      return "logsumexp";
  }
  return "?";
}

Tensor run(Op op, const Tensor& x, const std::vector<int64_t>& axes, bool keepdim) {
  switch (op) {
    case Op::Sum:
      return k::reduce(k::Reduce::Sum, x, axes, keepdim);
    case Op::Mean:
      return k::reduce(k::Reduce::Mean, x, axes, keepdim);
    case Op::Max:
      return k::reduce(k::Reduce::Max, x, axes, keepdim);
    case Op::Min:
      return k::reduce(k::Reduce::Min, x, axes, keepdim);
    case Op::LogSumExp:
      return k::logsumexp(x, axes, keepdim);
  }
  return {};
}

struct Ref {
  Shape shape;
  std::vector<double> v;
};

// Naive reduction of the logical values of x over `axes` (empty = all; negative allowed).
Ref naive_reduce(Op op, const Tensor& x, std::vector<int64_t> axes, bool keepdim) {
  const Shape s = x.shape();
  const int64_t nd = x.dim();
  std::vector<bool> red(static_cast<size_t>(nd), axes.empty());
  for (int64_t a : axes) red[static_cast<size_t>(a < 0 ? a + nd : a)] = true;
  Shape kshape, oshape;  // kshape: reduced dims as 1
  for (int64_t d = 0; d < nd; ++d) {
    kshape.push_back(red[static_cast<size_t>(d)] ? 1 : s[d]);
    if (!red[static_cast<size_t>(d)] || keepdim) oshape.push_back(kshape.back());
  }
  const int64_t n_out = tt::numel(kshape);
  const auto xv = x.to_vector<float>();
  std::vector<double> m(static_cast<size_t>(n_out), -INFINITY), mn(static_cast<size_t>(n_out), INFINITY),
      sum(static_cast<size_t>(n_out), 0.0);
  std::vector<int64_t> cnt(static_cast<size_t>(n_out), 0);
  std::vector<int64_t> idx(static_cast<size_t>(nd), 0);
  std::vector<int64_t> out_of(xv.size());
  for (size_t i = 0; i < xv.size(); ++i) {
    int64_t o = 0;
    for (int64_t d = 0; d < nd; ++d)
      o = o * kshape[d] + (red[static_cast<size_t>(d)] ? 0 : idx[static_cast<size_t>(d)]);
    out_of[i] = o;
    const double v = xv[i];
    const size_t oi = static_cast<size_t>(o);
    if (std::isnan(v) || v > m[oi]) m[oi] = std::isnan(m[oi]) ? m[oi] : v;
    if (std::isnan(v) || v < mn[oi]) mn[oi] = std::isnan(mn[oi]) ? mn[oi] : v;
    sum[oi] += v;
    cnt[oi] += 1;
    for (int64_t d = nd - 1; d >= 0 && ++idx[static_cast<size_t>(d)] == s[d]; --d)
      idx[static_cast<size_t>(d)] = 0;
  }
  Ref r{oshape, {}};
  if (op == Op::LogSumExp) {
    std::vector<double> se(static_cast<size_t>(n_out), 0.0);
    for (size_t i = 0; i < xv.size(); ++i) {
      const size_t oi = static_cast<size_t>(out_of[i]);
      const double shift = std::isfinite(m[oi]) ? m[oi] : 0.0;
      se[oi] += std::exp(static_cast<double>(xv[i]) - shift);
    }
    for (int64_t o = 0; o < n_out; ++o) {
      const size_t oi = static_cast<size_t>(o);
      r.v.push_back(std::log(se[oi]) + (std::isfinite(m[oi]) ? m[oi] : 0.0));
    }
    return r;
  }
  for (int64_t o = 0; o < n_out; ++o) {
    const size_t oi = static_cast<size_t>(o);
    switch (op) {
      case Op::Sum:
        r.v.push_back(sum[oi]);
        break;
      case Op::Mean:
        r.v.push_back(sum[oi] / static_cast<double>(cnt[oi]));
        break;
      case Op::Max:
        r.v.push_back(m[oi]);
        break;
      case Op::Min:
        r.v.push_back(mn[oi]);
        break;
      case Op::LogSumExp:
        break;
    }
  }
  return r;
}

// Every subset of axes (as positive and as negative numbers), keepdim on and off.
void check_all_axes(const Tensor& x, double atol, double rtol) {
  const int64_t nd = x.dim();
  for (Op op : {Op::Sum, Op::Mean, Op::Max, Op::Min, Op::LogSumExp}) {
    SCOPED_TRACE(op_name(op));
    for (int64_t mask = 0; mask < (int64_t{1} << nd); ++mask) {
      for (bool negative : {false, true}) {
        std::vector<int64_t> axes;
        for (int64_t d = 0; d < nd; ++d)
          if (mask & (int64_t{1} << d)) axes.push_back(negative ? d - nd : d);
        for (bool keepdim : {false, true}) {
          SCOPED_TRACE("axes mask " + std::to_string(mask) + (negative ? " (negative)" : "") +
                       (keepdim ? " keepdim" : ""));
          const Tensor got = run(op, x, axes, keepdim);
          const Ref want = naive_reduce(op, x, axes, keepdim);
          ASSERT_EQ(got.shape(), want.shape);
          ASSERT_EQ(got.dtype(), DType::Float32);
          ASSERT_TRUE(tt::all_close(got.to_vector<float>(), want.v, atol, rtol));
        }
      }
    }
  }
}

}  // namespace

TEST(Reduce, AllAxisSubsetsContiguous) {
  check_all_axes(tt::rand_tensor({2, 3, 4}, 1, -2, 2), 1e-5, 1e-5);
  check_all_axes(tt::rand_tensor({5, 1, 7, 3}, 2, -2, 2), 1e-5, 1e-5);
  check_all_axes(tt::rand_tensor({37}, 3, -2, 2), 1e-5, 1e-5);
  // Rows longer than the 16 vector lanes, with a remainder.
  check_all_axes(tt::rand_tensor({3, 133}, 4, -2, 2), 1e-5, 1e-5);
}

TEST(Reduce, AllAxisSubsetsNonContiguous) {
  Tensor base = tt::rand_tensor({4, 5, 6}, 11, -2, 2);
  {
    SCOPED_TRACE("permuted");
    check_all_axes(k::permute(base, {2, 0, 1}), 1e-5, 1e-5);
  }
  {
    SCOPED_TRACE("transposed inner");
    check_all_axes(k::transpose(base, 1, 2), 1e-5, 1e-5);
  }
  {
    SCOPED_TRACE("sliced with steps");
    check_all_axes(k::slice(k::slice(base, 2, 1, 6, 2), 0, -3, 4), 1e-5, 1e-5);
  }
  {
    SCOPED_TRACE("expanded");
    check_all_axes(k::expand(tt::rand_tensor({3, 1, 4}, 12, -2, 2), {2, 3, 5, 4}), 1e-5, 1e-5);
  }
  {
    SCOPED_TRACE("single column of a matrix");
    check_all_axes(k::slice(tt::rand_tensor({40, 9}, 13), 1, 4, 5), 1e-5, 1e-5);
  }
}

TEST(Reduce, ScalarAndEmpty) {
  Tensor s = Tensor::scalar(3.5f);
  for (Op op : {Op::Sum, Op::Mean, Op::Max, Op::Min, Op::LogSumExp}) {
    Tensor r = run(op, s, {}, false);
    EXPECT_EQ(r.dim(), 0) << op_name(op);
    EXPECT_FLOAT_EQ(r.item<float>(), 3.5f) << op_name(op);
    EXPECT_FLOAT_EQ(run(op, s, {0}, true).item<float>(), 3.5f) << op_name(op);
  }
  Tensor e = Tensor::zeros({3, 0});
  EXPECT_EQ(k::reduce(k::Reduce::Sum, e, {1}, false).to_vector<float>(), (std::vector<float>{0, 0, 0}));
  for (float v : k::reduce(k::Reduce::Mean, e, {1}, false).to_vector<float>()) EXPECT_TRUE(std::isnan(v));
  EXPECT_EQ(k::reduce(k::Reduce::Sum, e, {0}, false).shape(), (Shape{0}));
  EXPECT_EQ(k::reduce(k::Reduce::Sum, e, {}, false).item<float>(), 0.0f);
  EXPECT_EQ(tt::error_message<ShapeError>([&] { k::reduce(k::Reduce::Max, e, {1}, false); }),
            "max: cannot reduce over an empty axis of shape [3,0]");
  EXPECT_EQ(tt::error_message<InputError>(
                [] { k::reduce(k::Reduce::Sum, Tensor::ones({2}, DType::Int64), {}, false); }),
            "sum: expects float32, got int64; convert with .to()");
  EXPECT_THROW(k::reduce(k::Reduce::Sum, Tensor::ones({2, 3}), {2}, false), ShapeError);
  // Duplicate axes count once.
  Tensor x = tt::rand_tensor({3, 4}, 5);
  EXPECT_EQ(k::reduce(k::Reduce::Sum, x, {1, -1}, false).to_vector<float>(),
            k::reduce(k::Reduce::Sum, x, {1}, false).to_vector<float>());
  EXPECT_EQ(k::normalize_axes({-1, 0, 2, 0}, 3, "op"), (std::vector<int64_t>{0, 2}));
  EXPECT_EQ(k::normalize_axes({}, 3, "op"), (std::vector<int64_t>{0, 1, 2}));
}

TEST(Reduce, NaNPropagatesThroughMaxMin) {
  Tensor x = Tensor::from_vector(std::vector<float>{1, NAN, 3, 4, 5, 6}, {2, 3});
  const auto mx = k::reduce(k::Reduce::Max, x, {1}, false).to_vector<float>();
  EXPECT_TRUE(std::isnan(mx[0]));
  EXPECT_EQ(mx[1], 6.0f);
  const auto mn = k::reduce(k::Reduce::Min, x, {0}, false).to_vector<float>();
  EXPECT_EQ(mn[0], 1.0f);
  EXPECT_TRUE(std::isnan(mn[1]));
  EXPECT_EQ(mn[2], 3.0f);
  // A NaN in a long row (vector lanes and blocks) still wins.
  std::vector<float> v = tt::random_floats(200000, 6);
  v[123457] = NAN;
  EXPECT_TRUE(std::isnan(k::reduce(k::Reduce::Max, Tensor::from_vector(v), {}, false).item<float>()));
  EXPECT_TRUE(std::isnan(k::reduce(k::Reduce::Min, Tensor::from_vector(v), {}, false).item<float>()));
  EXPECT_EQ(k::argmax(Tensor::from_vector(v), 0, false).item<int64_t>(), 123457);
  EXPECT_EQ(k::argmin(Tensor::from_vector(v), 0, false).item<int64_t>(), 123457);
}

TEST(Reduce, LargeFullReductions) {
  // > 65536 elements: blocked, parallel path for contiguous input; the strided
  // paths for transposed and sliced views of the same data.
  const int64_t R = 1031, C = 1100;  // 1.13M elements, not a multiple of the block
  Tensor base = tt::rand_tensor({R, C}, 21, -1.0f, 3.0f);
  const std::vector<std::pair<const char*, Tensor>> inputs = {
      {"contiguous", base},
      {"flat", k::reshape(base, {-1})},
      {"transposed", k::transpose(base, 0, 1)},
      {"sliced", k::slice(base, 1, 1, C, 2)},
  };
  for (const auto& [name, x] : inputs) {
    SCOPED_TRACE(name);
    for (Op op : {Op::Sum, Op::Mean, Op::Max, Op::Min, Op::LogSumExp}) {
      SCOPED_TRACE(op_name(op));
      const Ref want = naive_reduce(op, x, {}, false);
      const Tensor got = run(op, x, {}, false);
      ASSERT_EQ(got.dim(), 0);
      // Float accumulation of ~1M terms in 16 lanes and 64K blocks stays within a
      // few 1e-7; a single running float sum of this size is off by ~1e-5.
      EXPECT_TRUE(tt::all_close(got.to_vector<float>(), want.v, 0, 1e-6));
    }
  }
  // Column reductions of a tall matrix: few outputs, each over 200000 strided elements.
  Tensor tall = tt::rand_tensor({200000, 3}, 22, -1.0f, 3.0f);
  for (Op op : {Op::Sum, Op::Mean, Op::Max, Op::Min, Op::LogSumExp}) {
    SCOPED_TRACE(std::string("tall ") + op_name(op));
    for (const Tensor& x : {tall, k::transpose(tall, 0, 1)}) {
      const int64_t axis = x.shape()[0] == 3 ? 1 : 0;
      const Ref want = naive_reduce(op, x, {axis}, false);
      EXPECT_TRUE(tt::all_close(run(op, x, {axis}, false).to_vector<float>(), want.v, 0, 1e-6));
    }
  }
  // Large partial reductions: long rows, and many rows reduced over the outer axis.
  for (const auto& [name, x] : inputs) {
    if (x.dim() != 2) continue;
    SCOPED_TRACE(name);
    for (int64_t axis : {0, 1}) {
      const Ref want = naive_reduce(Op::Sum, x, {axis}, true);
      EXPECT_TRUE(
          tt::all_close(k::reduce(k::Reduce::Sum, x, {axis}, true).to_vector<float>(), want.v, 1e-4, 1e-5));
      const Ref wmax = naive_reduce(Op::Max, x, {axis}, false);
      EXPECT_TRUE(
          tt::all_close(k::reduce(k::Reduce::Max, x, {axis}, false).to_vector<float>(), wmax.v, 0, 0));
    }
  }
}

TEST(Reduce, LogSumExpEdgeCases) {
  const float inf = std::numeric_limits<float>::infinity();
  Tensor x =
      Tensor::from_vector(std::vector<float>{-inf, -inf, -inf,              // all -inf row
                                             0.0f, -inf, 1.0f,              // some -inf
                                             1000.0f, 1000.0f, 999.0f,      // large: no overflow
                                             -1000.0f, -1001.0f, -1000.0f,  // small: no underflow to -inf
                                             inf, 0.0f, 1.0f},              // +inf
                          {5, 3});
  const auto r = k::logsumexp(x, {1}, false).to_vector<float>();
  ASSERT_EQ(r.size(), 5u);
  EXPECT_EQ(r[0], -inf);
  EXPECT_NEAR(r[1], std::log(1.0 + std::exp(1.0)), 1e-6);
  EXPECT_NEAR(r[2], 1000.0 + std::log(2.0 + std::exp(-1.0)), 1e-4);
  EXPECT_NEAR(r[3], -1000.0 + std::log(2.0 + std::exp(-1.0)), 1e-4);
  EXPECT_EQ(r[4], inf);
  const auto rk = k::logsumexp(x, {-1}, true);
  EXPECT_EQ(rk.shape(), (Shape{5, 1}));
  // Column-wise, with a NaN making its column NaN.
  Tensor y = Tensor::from_vector(std::vector<float>{-inf, NAN, 2.0f, -inf, 0.0f, 2.0f}, {2, 3});
  const auto c = k::logsumexp(y, {0}, false).to_vector<float>();
  EXPECT_EQ(c[0], -inf);
  EXPECT_TRUE(std::isnan(c[1]));
  EXPECT_NEAR(c[2], 2.0 + std::log(2.0), 1e-6);
  // Rows of -inf in a non-contiguous input with several reduced axes.
  Tensor z = Tensor::full({3, 2, 4}, -inf);
  k::slice(z, 0, 1, 2).copy_from(tt::rand_tensor({1, 2, 4}, 7));
  const Tensor zt = k::permute(z, {2, 0, 1});  // [4,3,2]
  const Ref want = naive_reduce(Op::LogSumExp, zt, {0, 2}, false);
  const auto got = k::logsumexp(zt, {0, 2}, false).to_vector<float>();
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0], -inf);
  EXPECT_EQ(got[2], -inf);
  EXPECT_NEAR(got[1], want.v[1], 1e-5);
}

TEST(Reduce, ArgmaxArgminAlongEachAxis) {
  // Values with many ties: the first occurrence wins, as in NumPy.
  std::vector<float> v = tt::random_floats(3 * 4 * 5, 31, 0, 4);
  for (float& f : v) f = std::floor(f);
  Tensor base = Tensor::from_vector(v, {3, 4, 5});
  const std::vector<std::pair<const char*, Tensor>> inputs = {{"contiguous", base},
                                                              {"permuted", k::permute(base, {1, 2, 0})},
                                                              {"sliced", k::slice(base, 2, 0, 5, 2)}};
  for (const auto& [name, x] : inputs) {
    SCOPED_TRACE(name);
    const auto xv = x.to_vector<float>();
    const Shape s = x.shape();
    for (int64_t axis = -3; axis < 3; ++axis) {
      const int64_t d = axis < 0 ? axis + 3 : axis;
      for (bool keepdim : {false, true}) {
        for (bool is_max : {true, false}) {
          Tensor got = is_max ? k::argmax(x, axis, keepdim) : k::argmin(x, axis, keepdim);
          ASSERT_EQ(got.dtype(), DType::Int64);
          Shape want_shape = s;
          if (keepdim)
            want_shape[static_cast<size_t>(d)] = 1;
          else
            want_shape.erase(want_shape.begin() + d);
          ASSERT_EQ(got.shape(), want_shape);
          const auto gv = got.to_vector<int64_t>();
          // Naive: walk each output position's row.
          Shape ks = s;
          ks[static_cast<size_t>(d)] = 1;
          for (int64_t o = 0; o < tt::numel(ks); ++o) {
            auto idx = tt::unravel(o, ks);
            int64_t best = 0;
            float bv = 0;
            for (int64_t i = 0; i < s[static_cast<size_t>(d)]; ++i) {
              idx[static_cast<size_t>(d)] = i;
              const float val = xv[static_cast<size_t>(tt::ravel(idx, s))];
              if (i == 0 || (is_max ? val > bv : val < bv)) {
                bv = val;
                best = i;
              }
            }
            ASSERT_EQ(gv[static_cast<size_t>(o)], best) << "output " << o << (is_max ? " argmax" : " argmin");
          }
        }
      }
    }
  }
  EXPECT_EQ(k::argmax(Tensor::scalar(2), 0, false).item<int64_t>(), 0);
  EXPECT_EQ(tt::error_message<ShapeError>([] {
              k::argmax(Tensor::zeros({2, 0}), 1, false);
            }),
            "argmax: cannot reduce over an empty axis of shape [2,0]");
  EXPECT_THROW(k::argmin(Tensor::zeros({2}, DType::Int64), 0, false), InputError);
  EXPECT_THROW(k::argmax(Tensor::zeros({2}), 1, false), ShapeError);
}

TEST(Reduce, SumToUndoesBroadcasting) {
  const std::vector<std::pair<Shape, Shape>> cases = {
      {{4, 3}, {3}},   {{4, 3}, {4, 1}}, {{4, 3}, {1, 3}},       {{2, 4, 3}, {4, 1}},
      {{2, 4, 3}, {}}, {{2, 4, 3}, {1}}, {{2, 4, 3}, {2, 4, 3}}, {{5, 1, 3}, {1, 1}}};
  uint32_t seed = 40;
  for (const auto& [gs, ts] : cases) {
    SCOPED_TRACE(shape_str(gs) + " -> " + shape_str(ts));
    Tensor g = tt::rand_tensor(gs, seed++);
    Tensor got = k::sum_to(g, ts);
    ASSERT_EQ(got.shape(), ts);
    // Naive: each element of g adds into the target position it broadcast from.
    std::vector<double> want(static_cast<size_t>(tt::numel(ts)), 0.0);
    const auto gv = g.to_vector<float>();
    for (int64_t i = 0; i < g.numel(); ++i)
      want[static_cast<size_t>(tt::bcast_flat(tt::unravel(i, gs), ts))] += gv[static_cast<size_t>(i)];
    EXPECT_TRUE(tt::all_close(got.to_vector<float>(), want, 1e-5, 1e-5));
  }
  // Non-contiguous gradient.
  Tensor gt = k::transpose(tt::rand_tensor({3, 4}, 50), 0, 1);  // [4,3]
  const auto gtv = gt.to_vector<float>();
  std::vector<double> want(3, 0.0);
  for (int r = 0; r < 4; ++r)
    for (int c = 0; c < 3; ++c) want[static_cast<size_t>(c)] += gtv[static_cast<size_t>(r * 3 + c)];
  EXPECT_TRUE(tt::all_close(k::sum_to(gt, {3}).to_vector<float>(), want, 1e-6, 1e-6));
  EXPECT_EQ(tt::error_message<ShapeError>([] {
              k::sum_to(Tensor::zeros({4, 3}), {2});
            }),
            "sum_to: cannot reduce shape [4,3] to [2]");
  EXPECT_THROW(k::sum_to(Tensor::zeros({3}), {2, 3}), ShapeError);
}
