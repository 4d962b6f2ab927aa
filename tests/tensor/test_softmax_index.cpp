// softmax / log_softmax and their backward along every axis; cat / stack;
// index_select / index_add / gather / scatter_add with their errors. References
// are naive double-precision loops (and finite differences for the backward).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "test_util.h"

using namespace deft;
namespace k = deft::kernel;

namespace {

// Naive softmax (or log-softmax) in double of logical values `x` (shape s) along axis d.
std::vector<double> naive_softmax(const std::vector<double>& x, const Shape& s, int64_t d, bool log) {
  std::vector<double> out(x.size());
  Shape ks = s;
  ks[static_cast<size_t>(d)] = 1;
  for (int64_t o = 0; o < tt::numel(ks); ++o) {
    auto idx = tt::unravel(o, ks);
    std::vector<size_t> pos;
    for (int64_t i = 0; i < s[static_cast<size_t>(d)]; ++i) {
      idx[static_cast<size_t>(d)] = i;
      pos.push_back(static_cast<size_t>(tt::ravel(idx, s)));
    }
    double m = -INFINITY;
    for (size_t p : pos) m = std::max(m, x[p]);
    double sum = 0;
    for (size_t p : pos) sum += std::exp(x[p] - m);
    for (size_t p : pos) out[p] = log ? x[p] - m - std::log(sum) : std::exp(x[p] - m) / sum;
  }
  return out;
}

double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

}  // namespace

TEST(Softmax, AlongEveryAxisMatchesReference) {
  const std::vector<Shape> shapes = {{7}, {4, 7}, {3, 4, 5}, {2, 1, 3, 70}};
  uint32_t seed = 1;
  for (const Shape& s : shapes) {
    Tensor base = tt::rand_tensor(s, seed++, -5, 5);
    const int64_t nd = static_cast<int64_t>(s.size());
    std::vector<Tensor> inputs = {base};
    if (nd >= 2) inputs.push_back(k::transpose(tt::rand_tensor(s, seed++, -5, 5), 0, nd - 1));  // strided
    for (const Tensor& x : inputs) {
      const auto xv = tt::to_double(x.to_vector<float>());
      for (int64_t axis = -nd; axis < nd; ++axis) {
        const int64_t d = axis < 0 ? axis + nd : axis;
        SCOPED_TRACE(shape_str(x.shape()) + (x.is_contiguous() ? "" : " strided") + " axis " +
                     std::to_string(axis));
        const Tensor y = k::softmax(x, axis);
        const Tensor ly = k::log_softmax(x, axis);
        ASSERT_EQ(y.shape(), x.shape());
        ASSERT_EQ(ly.shape(), x.shape());
        EXPECT_TRUE(tt::all_close(y.to_vector<float>(), naive_softmax(xv, x.shape(), d, false), 1e-7, 1e-5));
        EXPECT_TRUE(tt::all_close(ly.to_vector<float>(), naive_softmax(xv, x.shape(), d, true), 1e-5, 1e-5));
        // Rows sum to one (checked with deft's own reduction along the same axis).
        for (float v : k::reduce(k::Reduce::Sum, y, {axis}, false).to_vector<float>())
          EXPECT_NEAR(v, 1.0f, 1e-5f);
      }
    }
  }
}

TEST(Softmax, LargeInputsDoNotOverflow) {
  Tensor x = Tensor::from_vector(
      std::vector<float>{1000, 1001, 1002, -1000, -1001, -1002, 1000, 0, -1000, 88.8f, 89, 100}, {4, 3});
  const auto y = k::softmax(x, 1).to_vector<float>();
  const auto ly = k::log_softmax(x, 1).to_vector<float>();
  for (float v : y) EXPECT_TRUE(std::isfinite(v));
  for (float v : ly) EXPECT_TRUE(std::isfinite(v));
  const auto want = naive_softmax(tt::to_double(x.to_vector<float>()), {4, 3}, 1, false);
  const auto lwant = naive_softmax(tt::to_double(x.to_vector<float>()), {4, 3}, 1, true);
  EXPECT_TRUE(tt::all_close(y, want, 1e-7, 1e-5));
  EXPECT_TRUE(tt::all_close(ly, lwant, 1e-4, 1e-5));
  EXPECT_EQ(y[6], 1.0f);
  EXPECT_EQ(ly[8], -2000.0f);
  // Along axis 0 (strided rows) too.
  const auto y0 = k::softmax(x, 0).to_vector<float>();
  EXPECT_TRUE(
      tt::all_close(y0, naive_softmax(tt::to_double(x.to_vector<float>()), {4, 3}, 0, false), 1e-7, 1e-5));
  // -inf entries get probability 0 and log-probability -inf.
  const float inf = std::numeric_limits<float>::infinity();
  Tensor m = Tensor::from_vector(std::vector<float>{0, -inf, 0, -inf}, {1, 4});
  EXPECT_EQ(k::softmax(m, -1).to_vector<float>(), (std::vector<float>{0.5f, 0.0f, 0.5f, 0.0f}));
  const auto lm = k::log_softmax(m, -1).to_vector<float>();
  EXPECT_NEAR(lm[0], -std::log(2.0f), 1e-6);
  EXPECT_EQ(lm[1], -inf);
  // A 0-d tensor and a length-1 axis give probability 1.
  EXPECT_EQ(k::softmax(Tensor::scalar(3), 0).item<float>(), 1.0f);
  for (float v : k::softmax(tt::rand_tensor({5, 1}, 3), 1).to_vector<float>()) EXPECT_EQ(v, 1.0f);
  for (float v : k::log_softmax(tt::rand_tensor({5, 1}, 3), 1).to_vector<float>()) EXPECT_EQ(v, 0.0f);
  EXPECT_EQ(k::softmax(Tensor::zeros({0, 3}), 1).shape(), (Shape{0, 3}));
}

TEST(Softmax, BackwardMatchesAnalyticAndFiniteDifferences) {
  const Shape s = {3, 4, 5};
  const Tensor x = tt::rand_tensor(s, 21, -2, 2);
  const Tensor g = tt::rand_tensor(s, 22, -1, 1);
  const auto xv = tt::to_double(x.to_vector<float>()), gv = tt::to_double(g.to_vector<float>());
  for (int64_t axis = -3; axis < 3; ++axis) {
    const int64_t d = axis < 0 ? axis + 3 : axis;
    SCOPED_TRACE("axis " + std::to_string(axis));
    const Tensor y = k::softmax(x, axis), ly = k::log_softmax(x, axis);
    const auto got = k::softmax_backward(g, y, axis).to_vector<float>();
    const auto lgot = k::log_softmax_backward(g, ly, axis).to_vector<float>();
    // Analytic, in double, from the double-precision forward.
    const auto yd = naive_softmax(xv, s, d, false);
    std::vector<double> want(xv.size()), lwant(xv.size());
    Shape ks = s;
    ks[static_cast<size_t>(d)] = 1;
    for (int64_t o = 0; o < tt::numel(ks); ++o) {
      auto idx = tt::unravel(o, ks);
      std::vector<size_t> pos;
      for (int64_t i = 0; i < s[static_cast<size_t>(d)]; ++i) {
        idx[static_cast<size_t>(d)] = i;
        pos.push_back(static_cast<size_t>(tt::ravel(idx, s)));
      }
      double gy = 0, gs = 0;
      for (size_t p : pos) {
        gy += gv[p] * yd[p];
        gs += gv[p];
      }
      for (size_t p : pos) {
        want[p] = yd[p] * (gv[p] - gy);
        lwant[p] = gv[p] - yd[p] * gs;
      }
    }
    EXPECT_TRUE(tt::all_close(got, want, 1e-6, 1e-5));
    EXPECT_TRUE(tt::all_close(lgot, lwant, 1e-6, 1e-5));
    // Central finite differences of L(x) = sum(g * f(x)) in double, one element at a time.
    const double h = 1e-6;
    for (size_t i = 0; i < xv.size(); i += 7) {
      std::vector<double> xp = xv, xm = xv;
      xp[i] += h;
      xm[i] -= h;
      const double fd =
          (dot(gv, naive_softmax(xp, s, d, false)) - dot(gv, naive_softmax(xm, s, d, false))) / (2 * h);
      const double lfd =
          (dot(gv, naive_softmax(xp, s, d, true)) - dot(gv, naive_softmax(xm, s, d, true))) / (2 * h);
      EXPECT_NEAR(got[i], fd, 1e-5) << i;
      EXPECT_NEAR(lgot[i], lfd, 1e-5) << i;
    }
  }
  // Non-contiguous gradient and output.
  const Tensor gt = k::transpose(tt::rand_tensor({5, 4, 3}, 23), 0, 2);
  const Tensor yt = k::softmax(x, 1);
  EXPECT_EQ(k::softmax_backward(gt, yt, 1).to_vector<float>(),
            k::softmax_backward(k::contiguous(gt), yt, 1).to_vector<float>());
  EXPECT_EQ(tt::error_message<ShapeError>([&] {
              k::softmax_backward(g, Tensor::zeros({3, 4}), 1);
            }),
            "softmax_backward: shapes [3,4,5] and [3,4] differ");
  EXPECT_EQ(tt::error_message<InputError>([] { k::softmax(Tensor::zeros({3}, DType::Int64), 0); }),
            "softmax: expects float32, got int64");
  EXPECT_THROW(k::log_softmax(x, 3), ShapeError);
}

// ---- cat / stack ----------------------------------------------------------------------------

TEST(Joining, CatAlongEachAxis) {
  for (int64_t axis = -3; axis < 3; ++axis) {
    const int64_t d = axis < 0 ? axis + 3 : axis;
    SCOPED_TRACE("axis " + std::to_string(axis));
    Shape s1 = {2, 3, 4}, s2 = {2, 3, 4}, s3 = {2, 3, 4};
    s1[static_cast<size_t>(d)] = 1;
    s2[static_cast<size_t>(d)] = 3;
    s3[static_cast<size_t>(d)] = 2;
    // One contiguous, one transposed view, one expanded view.
    Tensor a = tt::rand_tensor(s1, 1);
    Shape s2t = s2;
    std::swap(s2t[0], s2t[2]);
    Tensor b = k::transpose(tt::rand_tensor(s2t, 2), 0, 2);
    Shape s3b = s3;
    s3b[0] = 1;
    Tensor c = k::expand(tt::rand_tensor(s3b, 3), s3);
    Tensor out = k::cat({a, b, c}, axis);
    Shape want_shape = {2, 3, 4};
    want_shape[static_cast<size_t>(d)] = 6;
    ASSERT_EQ(out.shape(), want_shape);
    const auto ov = out.to_vector<float>();
    const std::vector<std::pair<Tensor, int64_t>> parts = {{a, 0}, {b, 1}, {c, 4}};
    for (int64_t i = 0; i < out.numel(); ++i) {
      auto idx = tt::unravel(i, want_shape);
      const int64_t p = idx[static_cast<size_t>(d)];
      const auto& [src, start] = p < 1 ? parts[0] : (p < 4 ? parts[1] : parts[2]);
      idx[static_cast<size_t>(d)] -= start;
      ASSERT_EQ(ov[static_cast<size_t>(i)],
                src.to_vector<float>()[static_cast<size_t>(tt::ravel(idx, src.shape()))]);
    }
  }
  // Integer dtypes and a single input.
  EXPECT_EQ(k::cat({Tensor::arange(0, 2, 1, DType::Int64), Tensor::arange(5, 8, 1, DType::Int64)}, 0)
                .to_vector<int64_t>(),
            (std::vector<int64_t>{0, 1, 5, 6, 7}));
  EXPECT_EQ(k::cat({Tensor::ones({2}, DType::UInt8)}, 0).to_vector<uint8_t>(), (std::vector<uint8_t>{1, 1}));
  EXPECT_EQ(k::cat({Tensor::zeros({0, 3}), Tensor::ones({2, 3})}, 0).shape(), (Shape{2, 3}));
  // Errors.
  EXPECT_EQ(tt::error_message<InputError>([] { k::cat({}, 0); }), "cat: no tensors given");
  EXPECT_EQ(tt::error_message<InputError>([] {
              k::cat({Tensor::zeros({2}), Tensor::zeros({2}, DType::Int64)}, 0);
            }),
            "cat: dtypes float32 and int64 differ");
  EXPECT_EQ(tt::error_message<ShapeError>([] {
              k::cat({Tensor::zeros({2, 3}), Tensor::zeros({2, 4})}, 0);
            }),
            "cat: shapes [2,3] and [2,4] differ outside axis 0");
  EXPECT_EQ(tt::error_message<ShapeError>([] {
              k::cat({Tensor::zeros({2, 3}), Tensor::zeros({6})}, 0);
            }),
            "cat: shapes [2,3] and [6] differ in rank");
  EXPECT_THROW(k::cat({Tensor::zeros({2, 3})}, 2), ShapeError);
  EXPECT_THROW(k::cat({Tensor::scalar(1), Tensor::scalar(2)}, 0), ShapeError);  // 0-d: use stack
}

TEST(Joining, StackAlongEachAxis) {
  const Tensor a = tt::rand_tensor({3, 4}, 11), b = k::transpose(tt::rand_tensor({4, 3}, 12), 0, 1),
               c = tt::rand_tensor({3, 4}, 13);
  const auto av = a.to_vector<float>(), bv = b.to_vector<float>(), cv = c.to_vector<float>();
  const std::vector<const std::vector<float>*> srcs = {&av, &bv, &cv};
  for (int64_t axis = -3; axis < 3; ++axis) {
    const int64_t d = axis < 0 ? axis + 3 : axis;
    SCOPED_TRACE("axis " + std::to_string(axis));
    Tensor out = k::stack({a, b, c}, axis);
    Shape want_shape = {3, 4};
    want_shape.insert(want_shape.begin() + d, 3);
    ASSERT_EQ(out.shape(), want_shape);
    const auto ov = out.to_vector<float>();
    for (int64_t i = 0; i < out.numel(); ++i) {
      auto idx = tt::unravel(i, want_shape);
      const int64_t which = idx[static_cast<size_t>(d)];
      idx.erase(idx.begin() + d);
      ASSERT_EQ(ov[static_cast<size_t>(i)],
                (*srcs[static_cast<size_t>(which)])[static_cast<size_t>(idx[0] * 4 + idx[1])]);
    }
  }
  EXPECT_EQ(k::stack({Tensor::scalar(1), Tensor::scalar(2)}, 0).to_vector<float>(),
            (std::vector<float>{1, 2}));
  EXPECT_EQ(tt::error_message<ShapeError>([&] {
              k::stack({a, Tensor::zeros({4, 3})}, 0);
            }),
            "stack: shapes [3,4] and [4,3] differ");
  EXPECT_THROW(k::stack({a, c}, 3), ShapeError);
  EXPECT_THROW(k::stack({}, 0), InputError);
}

// ---- indexing ---------------------------------------------------------------------------------

TEST(Indexing, IndexSelectAlongEachAxis) {
  const Tensor base = tt::rand_tensor({4, 5, 6}, 31);
  const std::vector<Tensor> inputs = {base, k::permute(tt::rand_tensor({6, 4, 5}, 32), {1, 2, 0})};
  for (const Tensor& x : inputs) {
    const auto xv = x.to_vector<float>();
    for (int64_t axis = -3; axis < 3; ++axis) {
      const int64_t d = axis < 0 ? axis + 3 : axis;
      SCOPED_TRACE("axis " + std::to_string(axis) + (x.is_contiguous() ? "" : " strided"));
      const std::vector<int64_t> iv = {3, 0, 3, 1};  // repeats and any order
      const Tensor idx = Tensor::from_vector(iv);
      const Tensor out = k::index_select(x, axis, idx);
      Shape ws = x.shape();
      ws[static_cast<size_t>(d)] = 4;
      ASSERT_EQ(out.shape(), ws);
      const auto ov = out.to_vector<float>();
      for (int64_t i = 0; i < out.numel(); ++i) {
        auto id = tt::unravel(i, ws);
        id[static_cast<size_t>(d)] = iv[static_cast<size_t>(id[static_cast<size_t>(d)])];
        ASSERT_EQ(ov[static_cast<size_t>(i)], xv[static_cast<size_t>(tt::ravel(id, x.shape()))]);
      }
    }
  }
  // Strided index, integer payload, empty index.
  const Tensor strided_idx = k::slice(Tensor::from_vector(std::vector<int64_t>{2, 9, 0, 9, 1}), 0, 0, 5, 2);
  const Tensor xi = k::reshape(Tensor::arange(0, 12, 1, DType::Int64), {3, 4});
  EXPECT_EQ(k::index_select(xi, 0, strided_idx).to_vector<int64_t>(),
            (std::vector<int64_t>{8, 9, 10, 11, 0, 1, 2, 3, 4, 5, 6, 7}));
  EXPECT_EQ(k::index_select(xi, 1, Tensor::zeros({0}, DType::Int64)).shape(), (Shape{3, 0}));
  // Errors.
  EXPECT_EQ(tt::error_message<ShapeError>([&] {
              k::index_select(base, 1, Tensor::from_vector(std::vector<int64_t>{0, 5}));
            }),
            "index_select: index 5 is out of range for axis 1 of size 5");
  EXPECT_EQ(tt::error_message<ShapeError>(
                [&] { k::index_select(base, 0, Tensor::from_vector(std::vector<int64_t>{-1})); }),
            "index_select: index -1 is out of range for axis 0 of size 4");
  EXPECT_EQ(tt::error_message<InputError>([&] { k::index_select(base, 0, Tensor::zeros({2})); }),
            "index_select: index must be int64, got float32");
  EXPECT_THROW(k::index_select(base, 0, Tensor::zeros({2, 2}, DType::Int64)), ShapeError);
  EXPECT_THROW(k::index_select(base, 3, Tensor::zeros({1}, DType::Int64)), ShapeError);
  EXPECT_THROW(k::index_select(Tensor::scalar(1), 0, Tensor::zeros({1}, DType::Int64)), ShapeError);
}

TEST(Indexing, IndexAddIsTheAdjointOfIndexSelect) {
  const Shape s = {4, 5, 6};
  for (int64_t axis = 0; axis < 3; ++axis) {
    SCOPED_TRACE("axis " + std::to_string(axis));
    const std::vector<int64_t> iv = {1, 3, 1, 0, 1};
    const Tensor idx = Tensor::from_vector(iv);
    Shape ss = s;
    ss[static_cast<size_t>(axis)] = 5;
    const Tensor src = k::transpose(tt::rand_tensor({ss[2], ss[1], ss[0]}, 41), 0, 2);  // strided source
    const Tensor out = k::index_add(s, axis, idx, src);
    ASSERT_EQ(out.shape(), s);
    std::vector<double> want(static_cast<size_t>(tt::numel(s)), 0.0);
    const auto sv = src.to_vector<float>();
    for (int64_t i = 0; i < src.numel(); ++i) {
      auto id = tt::unravel(i, ss);
      id[static_cast<size_t>(axis)] = iv[static_cast<size_t>(id[static_cast<size_t>(axis)])];
      want[static_cast<size_t>(tt::ravel(id, s))] += sv[static_cast<size_t>(i)];
    }
    EXPECT_TRUE(tt::all_close(out.to_vector<float>(), want, 1e-6, 1e-6));
    // <index_select(x), src> == <x, index_add(src)>
    const Tensor x = tt::rand_tensor(s, 42);
    const double lhs =
        dot(tt::to_double(k::index_select(x, axis, idx).to_vector<float>()), tt::to_double(sv));
    const double rhs = dot(tt::to_double(x.to_vector<float>()), tt::to_double(out.to_vector<float>()));
    EXPECT_NEAR(lhs, rhs, 1e-4);
  }
  // Wide inner extent: parallel over the inner dimension.
  const Tensor wide = tt::rand_tensor({3, 5000}, 43);
  const Tensor wi = Tensor::from_vector(std::vector<int64_t>{1, 1, 0});
  const auto w = k::index_add({2, 5000}, 0, wi, wide).to_vector<float>();
  const auto wv = wide.to_vector<float>();
  for (int64_t j = 0; j < 5000; ++j) {
    ASSERT_FLOAT_EQ(w[static_cast<size_t>(j)], wv[static_cast<size_t>(2 * 5000 + j)]);
    ASSERT_FLOAT_EQ(w[static_cast<size_t>(5000 + j)],
                    wv[static_cast<size_t>(j)] + wv[static_cast<size_t>(5000 + j)]);
  }
  EXPECT_EQ(tt::error_message<ShapeError>([] {
              k::index_add({3, 2}, 0, Tensor::from_vector(std::vector<int64_t>{3}), Tensor::zeros({1, 2}));
            }),
            "index_add: index 3 is out of range for axis 0 of size 3");
  EXPECT_EQ(tt::error_message<ShapeError>([] {
              k::index_add({3, 2}, 0, Tensor::from_vector(std::vector<int64_t>{0}), Tensor::zeros({2, 2}));
            }),
            "index_add: source shape [2,2] does not match [1,2]");
  EXPECT_THROW(k::index_add({3, 2}, 0, Tensor::zeros({1}), Tensor::zeros({1, 2})), InputError);
  EXPECT_THROW(k::index_add({}, 0, Tensor::zeros({1}, DType::Int64), Tensor::zeros({1})), ShapeError);
}

TEST(Indexing, GatherAndScatterAdd) {
  const Shape xs = {3, 4, 5};
  const Tensor x = tt::rand_tensor(xs, 51);
  const auto xv = x.to_vector<float>();
  for (int64_t axis = -3; axis < 3; ++axis) {
    const int64_t d = axis < 0 ? axis + 3 : axis;
    SCOPED_TRACE("axis " + std::to_string(axis));
    // Index shape: smaller than x off the axis, any length along it.
    Shape is = {2, 3, 4};
    is[static_cast<size_t>(d)] = 6;
    std::vector<int64_t> iv(static_cast<size_t>(tt::numel(is)));
    for (size_t i = 0; i < iv.size(); ++i)
      iv[i] = static_cast<int64_t>((i * 7 + 3) % static_cast<size_t>(xs[static_cast<size_t>(d)]));
    // A transposed (strided) index tensor with the same logical values.
    Shape ist = {is[2], is[1], is[0]};
    std::vector<int64_t> ivt(iv.size());
    for (int64_t i = 0; i < tt::numel(is); ++i) {
      const auto id = tt::unravel(i, is);
      ivt[static_cast<size_t>(tt::ravel({id[2], id[1], id[0]}, ist))] = iv[static_cast<size_t>(i)];
    }
    const Tensor idx = k::transpose(Tensor::from_vector(ivt, ist), 0, 2);
    ASSERT_EQ(idx.to_vector<int64_t>(), iv);

    const Tensor g = k::gather(x, axis, idx);
    ASSERT_EQ(g.shape(), is);
    const auto gv = g.to_vector<float>();
    for (int64_t i = 0; i < tt::numel(is); ++i) {
      auto id = tt::unravel(i, is);
      id[static_cast<size_t>(d)] = iv[static_cast<size_t>(i)];
      ASSERT_EQ(gv[static_cast<size_t>(i)], xv[static_cast<size_t>(tt::ravel(id, xs))]);
    }

    const Tensor src = tt::rand_tensor(is, 52);
    const auto sv = src.to_vector<float>();
    const Tensor sc = k::scatter_add(xs, axis, idx, src);
    ASSERT_EQ(sc.shape(), xs);
    std::vector<double> want(static_cast<size_t>(tt::numel(xs)), 0.0);
    for (int64_t i = 0; i < tt::numel(is); ++i) {
      auto id = tt::unravel(i, is);
      id[static_cast<size_t>(d)] = iv[static_cast<size_t>(i)];
      want[static_cast<size_t>(tt::ravel(id, xs))] += sv[static_cast<size_t>(i)];
    }
    EXPECT_TRUE(tt::all_close(sc.to_vector<float>(), want, 1e-6, 1e-6));
    // Adjoint: <gather(x), src> == <x, scatter_add(src)>
    EXPECT_NEAR(dot(tt::to_double(gv), tt::to_double(sv)), dot(tt::to_double(xv), want), 1e-4);
  }
  // Gather from a strided x, and of integer payloads.
  const Tensor xt = k::transpose(x, 0, 2);  // [5,4,3]
  const Tensor i0 = Tensor::from_vector(std::vector<int64_t>{4, 0}, {2, 1, 1});
  const auto got = k::gather(xt, 0, i0).to_vector<float>();
  EXPECT_EQ(got[0], xv[static_cast<size_t>(tt::ravel({0, 0, 4}, xs))]);
  EXPECT_EQ(got[1], xv[static_cast<size_t>(tt::ravel({0, 0, 0}, xs))]);
  const Tensor xi = k::reshape(Tensor::arange(0, 6, 1, DType::Int64), {2, 3});
  EXPECT_EQ(
      k::gather(xi, 1, Tensor::from_vector(std::vector<int64_t>{2, 2, 0, 1}, {2, 2})).to_vector<int64_t>(),
      (std::vector<int64_t>{2, 2, 3, 4}));
  // Errors.
  EXPECT_EQ(tt::error_message<ShapeError>([&] {
              k::gather(x, 1, Tensor::from_vector(std::vector<int64_t>{0, 4}, {1, 2, 1}));
            }),
            "gather: index 4 is out of range for axis 1 of size 4");
  EXPECT_EQ(tt::error_message<ShapeError>([&] {
              k::gather(x, 1, Tensor::from_vector(std::vector<int64_t>{-1}, {1, 1, 1}));
            }),
            "gather: index -1 is out of range for axis 1 of size 4");
  EXPECT_EQ(tt::error_message<ShapeError>([&] {
              k::gather(x, 0, Tensor::zeros({2, 2}, DType::Int64));
            }),
            "gather: index shape [2,2] and input shape [3,4,5] differ in rank");
  EXPECT_EQ(tt::error_message<ShapeError>([&] {
              k::gather(x, 0, Tensor::zeros({1, 5, 1}, DType::Int64));
            }),
            "gather: index shape [1,5,1] exceeds input shape [3,4,5] at axis 1");
  EXPECT_EQ(tt::error_message<InputError>([&] {
              k::gather(x, 0, Tensor::zeros({1, 1, 1}));
            }),
            "gather: index must be int64, got float32");
  EXPECT_EQ(tt::error_message<ShapeError>([] {
              k::scatter_add({2, 2}, 0, Tensor::from_vector(std::vector<int64_t>{2}, {1, 1}),
                             Tensor::zeros({1, 1}));
            }),
            "scatter_add: index 2 is out of range for axis 0 of size 2");
  EXPECT_EQ(tt::error_message<ShapeError>([] {
              k::scatter_add({2, 2}, 0, Tensor::zeros({1, 1}, DType::Int64), Tensor::zeros({1, 2}));
            }),
            "scatter_add: source shape [1,2] and index shape [1,1] differ");
  EXPECT_THROW(k::gather(Tensor::scalar(1), 0, Tensor::zeros({}, DType::Int64)), ShapeError);
  EXPECT_THROW(k::scatter_add({}, 0, Tensor::zeros({}, DType::Int64), Tensor::zeros({})), ShapeError);
}
