// Views share storage and copy nothing: reshape/view, transpose/permute, slice,
// squeeze/unsqueeze, expand, contiguous, is_contiguous. Expected values come
// from index arithmetic written out here, never from deft's strides.
#include <gtest/gtest.h>

#include "test_util.h"

using namespace deft;
namespace k = deft::kernel;

namespace {

// 0, 1, 2, ... as float32 of the given shape.
Tensor iota(const Shape& s) { return k::reshape(Tensor::arange(0, static_cast<double>(tt::numel(s))), s); }

bool shares_storage(const Tensor& a, const Tensor& b) { return a.impl()->storage == b.impl()->storage; }

// The value at logical multi-index idx of a view, read through its strides.
// Used only to check that a view's metadata is consistent with to_vector().
float read_strided(const Tensor& t, const std::vector<int64_t>& idx) {
  int64_t off = t.offset();
  for (size_t d = 0; d < idx.size(); ++d) off += idx[d] * t.strides()[d];
  return static_cast<const float*>(t.impl()->storage->data())[off];
}

void expect_strided_matches_to_vector(const Tensor& t) {
  const auto v = t.to_vector<float>();
  for (int64_t i = 0; i < t.numel(); ++i)
    ASSERT_EQ(read_strided(t, tt::unravel(i, t.shape())), v[static_cast<size_t>(i)]) << "flat " << i;
}

}  // namespace

TEST(TensorViews, ReshapeOfContiguousIsAViewWithInference) {
  Tensor base = iota({2, 3, 4});
  Tensor r = k::reshape(base, {4, -1});
  EXPECT_EQ(r.shape(), (Shape{4, 6}));
  EXPECT_TRUE(shares_storage(r, base));
  EXPECT_EQ(r.raw_data(), base.raw_data());
  EXPECT_TRUE(r.is_contiguous());
  EXPECT_EQ(r.to_vector<float>(), base.to_vector<float>());
  // Write through the view, see it in the base.
  r.data<float>()[7] = -1.0f;  // row 1, col 1 of [4,6] = flat 7
  EXPECT_EQ(base.to_vector<float>()[7], -1.0f);

  EXPECT_EQ(k::reshape(base, {-1}).shape(), (Shape{24}));
  EXPECT_EQ(k::reshape(base, {2, -1, 2}).shape(), (Shape{2, 6, 2}));
  EXPECT_EQ(k::reshape(base, {1, 24, 1}).shape(), (Shape{1, 24, 1}));
  EXPECT_EQ(k::reshape(Tensor::scalar(3), {1, 1}).shape(), (Shape{1, 1}));
  EXPECT_EQ(k::reshape(Tensor::zeros({1, 1}), {}).shape(), Shape{});
  EXPECT_EQ(k::reshape(Tensor::zeros({0, 4}), {-1, 2}).shape(), (Shape{0, 2}));

  EXPECT_EQ(tt::error_message<ShapeError>([&] {
              k::reshape(base, {5, -1});
            }),
            "reshape: shape [5,-1] is invalid for input of size 24");
  EXPECT_EQ(tt::error_message<ShapeError>([&] {
              k::reshape(base, {-1, -1});
            }),
            "reshape: only one dimension can be -1 in [-1,-1]");
  EXPECT_THROW(k::reshape(base, {7}), ShapeError);
  EXPECT_THROW(k::reshape(base, {-2, 12}), ShapeError);
}

TEST(TensorViews, ReshapeCopiesWhenAViewIsImpossible) {
  Tensor base = iota({3, 4});
  Tensor t = k::transpose(base, 0, 1);  // [4,3], not contiguous
  Tensor r = k::reshape(t, {12});
  EXPECT_FALSE(shares_storage(r, base));
  EXPECT_TRUE(r.is_contiguous());
  std::vector<float> want;
  for (int j = 0; j < 4; ++j)
    for (int i = 0; i < 3; ++i) want.push_back(static_cast<float>(i * 4 + j));
  EXPECT_EQ(r.to_vector<float>(), want);
  // The copy is independent of the base.
  r.data<float>()[0] = 50.0f;
  EXPECT_EQ(base.to_vector<float>()[0], 0.0f);

  // A reshape that only splits or merges compatible dims of a non-contiguous tensor is still a view.
  Tensor sliced = k::slice(iota({4, 6}), 1, 0, 4);  // [4,4] with row stride 6
  Tensor split = k::reshape(sliced, {2, 2, 4});     // splits the outer dim only
  EXPECT_TRUE(shares_storage(split, sliced));
  expect_strided_matches_to_vector(split);
  EXPECT_EQ(split.to_vector<float>(), sliced.to_vector<float>());
  Tensor merged = k::reshape(sliced, {16});  // rows are not adjacent: copy
  EXPECT_FALSE(shares_storage(merged, sliced));
  EXPECT_EQ(merged.to_vector<float>(), sliced.to_vector<float>());
  // Splitting the inner dim of a transposed tensor is a view too.
  Tensor tsplit = k::reshape(t, {2, 2, 3});
  EXPECT_TRUE(shares_storage(tsplit, base));
  EXPECT_EQ(tsplit.to_vector<float>(), want);
}

TEST(TensorViews, ViewErrorsWhenImpossible) {
  Tensor base = iota({3, 4});
  Tensor v = k::view(base, {2, 6});
  EXPECT_TRUE(shares_storage(v, base));
  v.data<float>()[11] = 100.0f;
  EXPECT_EQ(base.to_vector<float>()[11], 100.0f);
  Tensor t = k::transpose(base, 0, 1);
  EXPECT_EQ(tt::error_message<ShapeError>([&] { k::view(t, {12}); }),
            "view: a tensor of shape [4,3] with strides [1,4] cannot be viewed as [12]; use reshape");
  EXPECT_THROW(k::view(base, {5, 5}), ShapeError);
  // Inserting and removing size-1 dims is always possible.
  Tensor t1 = k::view(t, {4, 1, 3});
  EXPECT_TRUE(shares_storage(t1, base));
  EXPECT_EQ(t1.to_vector<float>(), t.to_vector<float>());
  expect_strided_matches_to_vector(t1);
  // Viewing an expanded (stride 0) tensor with its broadcast dim split.
  Tensor e = k::expand(Tensor::arange(0, 3), {4, 3});
  Tensor ev = k::view(e, {2, 2, 3});
  EXPECT_EQ(ev.to_vector<float>(), e.to_vector<float>());
  EXPECT_THROW(k::view(e, {12}), ShapeError);
}

TEST(TensorViews, TransposeAndPermute) {
  Tensor base = iota({2, 3, 4});
  Tensor t = k::transpose(base, 0, 2);  // [4,3,2]
  EXPECT_EQ(t.shape(), (Shape{4, 3, 2}));
  EXPECT_TRUE(shares_storage(t, base));
  EXPECT_FALSE(t.is_contiguous());
  const auto tv = t.to_vector<float>();
  for (int a = 0; a < 4; ++a)
    for (int b = 0; b < 3; ++b)
      for (int c = 0; c < 2; ++c) EXPECT_EQ(tv[(a * 3 + b) * 2 + c], static_cast<float>((c * 3 + b) * 4 + a));

  Tensor p = k::permute(base, {1, 2, 0});  // [3,4,2], p[i,j,l] = base[l,i,j]
  EXPECT_EQ(p.shape(), (Shape{3, 4, 2}));
  const auto pv = p.to_vector<float>();
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 4; ++j)
      for (int l = 0; l < 2; ++l) EXPECT_EQ(pv[(i * 4 + j) * 2 + l], static_cast<float>((l * 3 + i) * 4 + j));
  expect_strided_matches_to_vector(p);

  // Writes through a permuted view land in the base.
  Tensor p2 = k::permute(base, {-1, 0, 1});  // [4,2,3], negative axes accepted
  EXPECT_EQ(p2.shape(), (Shape{4, 2, 3}));
  float* data = static_cast<float*>(p2.impl()->storage->data());
  // p2[3,1,2] = base[1,2,3]
  EXPECT_EQ(p2.to_vector<float>()[(3 * 2 + 1) * 3 + 2], 23.0f);
  data[p2.offset() + 3 * p2.strides()[0] + 1 * p2.strides()[1] + 2 * p2.strides()[2]] = -5.0f;
  EXPECT_EQ(base.to_vector<float>()[23], -5.0f);

  // Permuting back gives the original contiguous layout.
  Tensor back = k::permute(p, {2, 0, 1});
  EXPECT_TRUE(back.is_contiguous());
  EXPECT_EQ(back.to_vector<float>(), base.to_vector<float>());

  EXPECT_THROW(k::permute(base, {0, 1}), ShapeError);
  EXPECT_EQ(tt::error_message<ShapeError>([&] { k::permute(base, {0, 1, 1}); }), "permute: axis 1 repeated");
  EXPECT_THROW(k::permute(base, {0, 1, 3}), ShapeError);
  EXPECT_THROW(k::transpose(base, 0, 3), ShapeError);
  EXPECT_EQ(k::transpose(base, -1, -2).shape(), (Shape{2, 4, 3}));
  EXPECT_EQ(k::transpose(Tensor::scalar(1), 0, 0).dim(), 0);
}

TEST(TensorViews, SliceWithStepAndNegativeIndices) {
  Tensor base = iota({5, 8});
  // Rows 1..4 step 2 -> rows 1, 3; columns -6..-1 step 3 -> cols 2, 5.
  Tensor s = k::slice(k::slice(base, 0, 1, 5, 2), 1, -6, -1, 3);
  EXPECT_EQ(s.shape(), (Shape{2, 2}));
  EXPECT_TRUE(shares_storage(s, base));
  EXPECT_EQ(s.to_vector<float>(), (std::vector<float>{1 * 8 + 2, 1 * 8 + 5, 3 * 8 + 2, 3 * 8 + 5}));
  expect_strided_matches_to_vector(s);

  // Write through the slice.
  float* d = static_cast<float*>(s.impl()->storage->data());
  d[s.offset() + 1 * s.strides()[0] + 1 * s.strides()[1]] = 1000.0f;
  EXPECT_EQ(base.to_vector<float>()[3 * 8 + 5], 1000.0f);
  Tensor filled = k::slice(base, 1, 0, 8, 4);  // columns 0 and 4
  filled.fill(-1.0);
  const auto bv = base.to_vector<float>();
  for (int r = 0; r < 5; ++r)
    for (int c = 0; c < 8; c += 4) EXPECT_EQ(bv[r * 8 + c], -1.0f);

  // Every (start, end, step) against Python-style slicing semantics for non-negative steps.
  Tensor v = Tensor::arange(0, 10);
  for (int64_t start = -12; start <= 12; ++start)
    for (int64_t end = -12; end <= 12; ++end)
      for (int64_t step = 1; step <= 4; ++step) {
        int64_t lo = start < 0 ? start + 10 : start;
        int64_t hi = end < 0 ? end + 10 : end;
        lo = std::min<int64_t>(std::max<int64_t>(lo, 0), 10);
        hi = std::min<int64_t>(std::max<int64_t>(hi, 0), 10);
        std::vector<float> want;
        for (int64_t i = lo; i < hi; i += step) want.push_back(static_cast<float>(i));
        ASSERT_EQ(k::slice(v, 0, start, end, step).to_vector<float>(), want)
            << start << ":" << end << ":" << step;
      }
  EXPECT_EQ(tt::error_message<InputError>([&] { k::slice(v, 0, 0, 5, 0); }),
            "slice: step must be positive, got 0");
  EXPECT_THROW(k::slice(v, 0, 0, 5, -1), InputError);
  EXPECT_THROW(k::slice(v, 1, 0, 5), ShapeError);
}

TEST(TensorViews, SqueezeUnsqueeze) {
  Tensor base = iota({3, 1, 4, 1});
  Tensor s = k::squeeze(base, 1);
  EXPECT_EQ(s.shape(), (Shape{3, 4, 1}));
  EXPECT_TRUE(shares_storage(s, base));
  EXPECT_EQ(k::squeeze(base, -1).shape(), (Shape{3, 1, 4}));
  EXPECT_EQ(k::squeeze(base, 0).shape(), (Shape{3, 1, 4, 1}));  // not size 1: unchanged
  EXPECT_EQ(k::squeeze_all(base).shape(), (Shape{3, 4}));
  EXPECT_EQ(k::squeeze_all(Tensor::zeros({1, 1})).shape(), Shape{});
  EXPECT_THROW(k::squeeze(base, 4), ShapeError);

  Tensor v = Tensor::arange(0, 6);
  Tensor u0 = k::unsqueeze(v, 0);
  Tensor u1 = k::unsqueeze(v, 1);
  Tensor um = k::unsqueeze(v, -1);
  EXPECT_EQ(u0.shape(), (Shape{1, 6}));
  EXPECT_EQ(u1.shape(), (Shape{6, 1}));
  EXPECT_EQ(um.shape(), (Shape{6, 1}));
  EXPECT_TRUE(u0.is_contiguous());
  EXPECT_TRUE(u1.is_contiguous());
  EXPECT_EQ(u1.to_vector<float>(), v.to_vector<float>());
  EXPECT_TRUE(shares_storage(u1, v));
  EXPECT_THROW(k::unsqueeze(v, 3), ShapeError);
  EXPECT_EQ(k::unsqueeze(Tensor::scalar(1), 0).shape(), (Shape{1}));

  // Unsqueeze of a transposed view keeps the logical order, and views stay writable.
  Tensor t = k::transpose(iota({2, 3}), 0, 1);  // [3,2]
  Tensor tu = k::unsqueeze(t, 1);               // [3,1,2]
  EXPECT_EQ(tu.to_vector<float>(), t.to_vector<float>());
  expect_strided_matches_to_vector(tu);
  Tensor tu_c = k::contiguous(tu);
  EXPECT_EQ(tu_c.to_vector<float>(), (std::vector<float>{0, 3, 1, 4, 2, 5}));
}

TEST(TensorViews, ExpandUsesStrideZero) {
  Tensor col = Tensor::from_vector(std::vector<float>{1, 2, 3}, {3, 1});
  Tensor e = k::expand(col, {2, 3, 4});
  EXPECT_EQ(e.shape(), (Shape{2, 3, 4}));
  EXPECT_EQ(e.strides()[0], 0);
  EXPECT_EQ(e.strides()[2], 0);
  EXPECT_TRUE(shares_storage(e, col));
  EXPECT_FALSE(e.is_contiguous());
  const auto ev = e.to_vector<float>();
  for (int a = 0; a < 2; ++a)
    for (int b = 0; b < 3; ++b)
      for (int c = 0; c < 4; ++c) EXPECT_EQ(ev[(a * 3 + b) * 4 + c], static_cast<float>(b + 1));
  // A write to the base is seen at every expanded position.
  col.data<float>()[1] = 20.0f;
  const auto ev2 = e.to_vector<float>();
  for (int a = 0; a < 2; ++a)
    for (int c = 0; c < 4; ++c) EXPECT_EQ(ev2[(a * 3 + 1) * 4 + c], 20.0f);
  EXPECT_EQ(k::expand(col, {-1, 5}).shape(), (Shape{3, 5}));
  EXPECT_EQ(tt::error_message<ShapeError>([&] {
              k::expand(col, {2, 4});
            }),
            "expand: cannot expand shape [3,1] to [2,4]");
  EXPECT_THROW(k::expand(col, {5}), ShapeError);
  EXPECT_THROW(k::expand(col, {-1, 3, 5}), ShapeError);
  // contiguous() of an expanded tensor materialises the repeats.
  Tensor c = k::contiguous(e);
  EXPECT_TRUE(c.is_contiguous());
  EXPECT_FALSE(shares_storage(c, col));
  EXPECT_EQ(c.to_vector<float>(), ev2);
  EXPECT_EQ(c.strides(), (Shape{12, 4, 1}));
}

TEST(TensorViews, ContiguousCopiesOnlyWhenNeeded) {
  Tensor base = iota({4, 5});
  Tensor c = k::contiguous(base);
  EXPECT_TRUE(c.same(base) || c.raw_data() == base.raw_data());
  EXPECT_TRUE(base.contiguous_copy().same(base));
  Tensor t = k::transpose(base, 0, 1);
  Tensor tc = k::contiguous(t);
  EXPECT_TRUE(tc.is_contiguous());
  EXPECT_FALSE(shares_storage(tc, base));
  EXPECT_EQ(tc.strides(), (Shape{4, 1}));
  EXPECT_EQ(tc.to_vector<float>(), t.to_vector<float>());
  EXPECT_FALSE(t.contiguous_copy().same(t));
  // Slicing whole rows keeps contiguity, slicing columns does not.
  EXPECT_TRUE(k::slice(base, 0, 1, 3).is_contiguous());
  EXPECT_FALSE(k::slice(base, 1, 1, 3).is_contiguous());
  EXPECT_FALSE(k::slice(base, 1, 2, 3).is_contiguous());  // one column
  // A single column of a single row is contiguous (size-1 dims do not matter).
  EXPECT_TRUE(k::slice(k::slice(base, 0, 2, 3), 1, 1, 4).is_contiguous());
  Tensor row = k::slice(base, 0, 2, 3);
  Tensor rowc = k::contiguous(row);
  EXPECT_EQ(rowc.raw_data(), row.raw_data());  // no copy
  EXPECT_EQ(rowc.to_vector<float>(), (std::vector<float>{10, 11, 12, 13, 14}));
  EXPECT_TRUE(k::transpose(Tensor::zeros({1, 5}), 0, 1).is_contiguous());
}

TEST(TensorViews, ChainedViewsMatchIndexArithmetic) {
  // base [4,6,5]; v = permute(2,0,1) -> [5,4,6]; slice axis 2 [1:6:2] -> [5,4,3];
  // slice axis 0 [-3:] -> [3,4,3]; v[a,b,c] = base[b, 1+2c, 2+a].
  Tensor base = iota({4, 6, 5});
  Tensor v = k::slice(k::slice(k::permute(base, {2, 0, 1}), 2, 1, 6, 2), 0, -3, 5);
  ASSERT_EQ(v.shape(), (Shape{3, 4, 3}));
  const auto vv = v.to_vector<float>();
  for (int a = 0; a < 3; ++a)
    for (int b = 0; b < 4; ++b)
      for (int c = 0; c < 3; ++c)
        EXPECT_EQ(vv[(a * 4 + b) * 3 + c], static_cast<float>((b * 6 + (1 + 2 * c)) * 5 + (2 + a)));
  expect_strided_matches_to_vector(v);
  // reshape of such a view must copy and keep the logical order.
  Tensor r = k::reshape(v, {36});
  EXPECT_EQ(r.to_vector<float>(), vv);
  // clone + unsqueeze + expand + reshape round-trip.
  Tensor e = k::reshape(k::expand(k::unsqueeze(v, 0), {2, 3, 4, 3}), {2, 36});
  const auto evv = e.to_vector<float>();
  for (int rep = 0; rep < 2; ++rep)
    for (int i = 0; i < 36; ++i) EXPECT_EQ(evv[rep * 36 + i], vv[i]);
}

TEST(TensorViews, ViewsOfInt64AndUInt8) {
  Tensor i = k::reshape(Tensor::arange(0, 6, 1, DType::Int64), {2, 3});
  Tensor it = k::transpose(i, 0, 1);
  EXPECT_EQ(it.dtype(), DType::Int64);
  EXPECT_EQ(it.to_vector<int64_t>(), (std::vector<int64_t>{0, 3, 1, 4, 2, 5}));
  EXPECT_EQ(k::contiguous(it).to_vector<int64_t>(), (std::vector<int64_t>{0, 3, 1, 4, 2, 5}));
  Tensor u = k::reshape(Tensor::arange(0, 6, 1, DType::UInt8), {3, 2});
  EXPECT_EQ(k::slice(u, 0, 0, 3, 2).to_vector<uint8_t>(), (std::vector<uint8_t>{0, 1, 4, 5}));
  EXPECT_EQ(k::expand(k::slice(u, 1, 1, 2), {3, 3}).to_vector<uint8_t>(),
            (std::vector<uint8_t>{1, 1, 1, 3, 3, 3, 5, 5, 5}));
}
