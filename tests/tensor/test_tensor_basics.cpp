// dtypes, creation, item()/to_vector(), explicit conversion, copies and fill.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <sstream>

#include "test_util.h"

using namespace deft;

TEST(TensorBasics, DtypeSizesAndNames) {
  EXPECT_EQ(dtype_size(DType::Float32), 4u);
  EXPECT_EQ(dtype_size(DType::Int64), 8u);
  EXPECT_EQ(dtype_size(DType::UInt8), 1u);
  EXPECT_STREQ(dtype_name(DType::Float32), "float32");
  EXPECT_STREQ(dtype_name(DType::Int64), "int64");
  EXPECT_STREQ(dtype_name(DType::UInt8), "uint8");
  static_assert(dtype_of<float>() == DType::Float32);
  static_assert(dtype_of<int64_t>() == DType::Int64);
  static_assert(dtype_of<uint8_t>() == DType::UInt8);
}

TEST(TensorBasics, ShapeHelpers) {
  EXPECT_EQ(shape_str({64, 784}), "[64,784]");
  EXPECT_EQ(shape_str({}), "[]");
  EXPECT_EQ(shape_str({0}), "[0]");
  EXPECT_EQ(shape_numel({}), 1);
  EXPECT_EQ(shape_numel({2, 0, 3}), 0);
  EXPECT_EQ(shape_numel({2, 3, 4}), 24);
  EXPECT_EQ(contiguous_strides({2, 3, 4}), (Shape{12, 4, 1}));
  EXPECT_EQ(contiguous_strides({}), Shape{});
  EXPECT_EQ(normalize_axis(-1, 3, "op"), 2);
  EXPECT_EQ(normalize_axis(-3, 3, "op"), 0);
  EXPECT_EQ(normalize_axis(0, 0, "op"), 0);  // a 0-d tensor accepts axis 0 / -1
  EXPECT_EQ(normalize_axis(-1, 0, "op"), 0);
  EXPECT_EQ(tt::error_message<ShapeError>([] { normalize_axis(3, 3, "myop"); }),
            "myop: axis 3 is out of range for a tensor with 3 dims");
  EXPECT_THROW(normalize_axis(-4, 3, "op"), ShapeError);
}

TEST(TensorBasics, ZerosOnesFullEveryDtype) {
  for (DType dt : {DType::Float32, DType::Int64, DType::UInt8}) {
    SCOPED_TRACE(dtype_name(dt));
    Tensor z = Tensor::zeros({3, 5}, dt);
    Tensor o = Tensor::ones({3, 5}, dt);
    Tensor f = Tensor::full({2, 2, 2}, 7, dt);
    EXPECT_EQ(z.dtype(), dt);
    EXPECT_EQ(z.shape(), (Shape{3, 5}));
    EXPECT_EQ(z.strides(), (Shape{5, 1}));
    EXPECT_EQ(z.numel(), 15);
    EXPECT_EQ(z.dim(), 2);
    EXPECT_TRUE(z.is_contiguous());
    for (double v : z.to_vector<float>()) EXPECT_EQ(v, 0.0);
    for (double v : o.to_vector<float>()) EXPECT_EQ(v, 1.0);
    for (int64_t v : f.to_vector<int64_t>()) EXPECT_EQ(v, 7);
    EXPECT_EQ(f.numel(), 8);
  }
  // Raw storage of each dtype holds the right bit pattern.
  Tensor fi = Tensor::full({4}, -3, DType::Int64);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(fi.data<int64_t>()[i], -3);
  Tensor fu = Tensor::full({4}, 200, DType::UInt8);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(fu.data<uint8_t>()[i], 200);
  Tensor ff = Tensor::full({4}, 0.25, DType::Float32);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(ff.data<float>()[i], 0.25f);
  // Large enough to take the parallel fill path.
  Tensor big = Tensor::full({300000}, 1.5);
  const auto bv = big.to_vector<float>();
  for (size_t i = 0; i < bv.size(); ++i) ASSERT_EQ(bv[i], 1.5f) << i;
}

TEST(TensorBasics, ScalarAndEmptyShapes) {
  Tensor s = Tensor::scalar(2.5f);
  EXPECT_EQ(s.dim(), 0);
  EXPECT_EQ(s.numel(), 1);
  EXPECT_TRUE(s.shape().empty());
  EXPECT_EQ(s.item<float>(), 2.5f);
  EXPECT_EQ(s.item<double>(), 2.5);
  EXPECT_EQ(s.item<int>(), 2);

  Tensor e = Tensor::zeros({0, 4});
  EXPECT_EQ(e.numel(), 0);
  EXPECT_TRUE(e.to_vector<float>().empty());
  EXPECT_THROW(Tensor::zeros({2, -1}), ShapeError);
  EXPECT_THROW(Tensor::zeros(Shape(13, 1)), ShapeError);  // more than 12 dims
  EXPECT_NO_THROW(Tensor::zeros(Shape(12, 1)));
}

TEST(TensorBasics, Arange) {
  auto v = Tensor::arange(0, 5).to_vector<float>();
  EXPECT_EQ(v, (std::vector<float>{0, 1, 2, 3, 4}));
  v = Tensor::arange(2, -2, -1.5).to_vector<float>();  // 2, 0.5, -1
  EXPECT_EQ(v, (std::vector<float>{2.0f, 0.5f, -1.0f}));
  // Non-integer step: ten elements, the end excluded.
  Tensor a = Tensor::arange(0, 1, 0.1);
  ASSERT_EQ(a.numel(), 10);
  for (int64_t i = 0; i < 10; ++i) EXPECT_FLOAT_EQ(a.to_vector<float>()[i], 0.1f * static_cast<float>(i));
  Tensor ai = Tensor::arange(-3, 3, 2, DType::Int64);
  EXPECT_EQ(ai.dtype(), DType::Int64);
  EXPECT_EQ(ai.to_vector<int64_t>(), (std::vector<int64_t>{-3, -1, 1}));
  Tensor au = Tensor::arange(250, 256, 1, DType::UInt8);
  EXPECT_EQ(au.to_vector<uint8_t>(), (std::vector<uint8_t>{250, 251, 252, 253, 254, 255}));
  EXPECT_EQ(Tensor::arange(5, 5).numel(), 0);
  EXPECT_EQ(Tensor::arange(5, 0).numel(), 0);  // wrong direction: empty, not negative
  EXPECT_THROW(Tensor::arange(0, 1, 0), InputError);
}

TEST(TensorBasics, FromBufferCopiesTheData) {
  std::vector<float> src = {1, 2, 3, 4, 5, 6};
  Tensor t = Tensor::from_buffer(src.data(), {2, 3}, DType::Float32);
  src[0] = 100;  // the tensor owns a copy
  EXPECT_EQ(t.to_vector<float>(), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(t.shape(), (Shape{2, 3}));

  std::vector<int64_t> si = {-5, 1LL << 40, 3};
  Tensor ti = Tensor::from_vector(si);
  EXPECT_EQ(ti.dtype(), DType::Int64);
  EXPECT_EQ(ti.shape(), (Shape{3}));
  EXPECT_EQ(ti.to_vector<int64_t>(), si);

  std::vector<uint8_t> su = {0, 7, 255, 128};
  Tensor tu = Tensor::from_vector(su, {2, 2});
  EXPECT_EQ(tu.dtype(), DType::UInt8);
  EXPECT_EQ(tu.to_vector<uint8_t>(), su);

  EXPECT_EQ(tt::error_message<InputError>([] {
              Tensor::from_vector(std::vector<float>{1, 2, 3}, {2, 2});
            }),
            "from_vector: 3 values do not fill shape [2,2]");
}

TEST(TensorBasics, ItemChecksNumelAndConverts) {
  EXPECT_EQ(Tensor::full({1, 1}, 42, DType::Int64).item<int64_t>(), 42);
  EXPECT_EQ(Tensor::full({1}, 200, DType::UInt8).item<int>(), 200);
  EXPECT_EQ(Tensor::full({}, 3.75).item<double>(), 3.75);
  EXPECT_EQ(Tensor::full({1}, 9, DType::Int64).item<float>(), 9.0f);
  EXPECT_EQ(tt::error_message<ShapeError>([] {
              Tensor::zeros({2, 3}).item();
            }),
            "item: tensor of shape [2,3] has 6 elements, expected 1");
  // item() of a one-element view reads the view's element, not the storage start.
  Tensor base = Tensor::arange(0, 10);
  EXPECT_EQ(kernel::slice(base, 0, 7, 8).item<float>(), 7.0f);
}

TEST(TensorBasics, DataChecksDtype) {
  Tensor t = Tensor::zeros({2}, DType::Int64);
  EXPECT_NO_THROW(t.data<int64_t>());
  EXPECT_EQ(tt::error_message<InputError>([&] { t.data<float>(); }),
            "data: tensor has dtype int64, expected float32");
  Tensor undefined;
  EXPECT_FALSE(undefined.defined());
  EXPECT_THROW(undefined.data<float>(), InputError);
  std::ostringstream os;
  os << undefined;
  EXPECT_EQ(os.str(), "Tensor(undefined)");
}

TEST(TensorBasics, ExplicitConversionWithTo) {
  Tensor f = Tensor::from_vector(std::vector<float>{-2.75f, -0.5f, 0.0f, 1.9f, 3.0f, 1e6f});
  Tensor i = f.to(DType::Int64);
  EXPECT_EQ(i.dtype(), DType::Int64);
  // C++ float -> integer conversion truncates toward zero.
  EXPECT_EQ(i.to_vector<int64_t>(), (std::vector<int64_t>{-2, 0, 0, 1, 3, 1000000}));

  Tensor u = Tensor::from_vector(std::vector<float>{0.0f, 1.5f, 254.9f, 255.0f}).to(DType::UInt8);
  EXPECT_EQ(u.dtype(), DType::UInt8);
  EXPECT_EQ(u.to_vector<uint8_t>(), (std::vector<uint8_t>{0, 1, 254, 255}));

  Tensor back = Tensor::from_vector(std::vector<int64_t>{-7, 0, 123456789}).to(DType::Float32);
  EXPECT_EQ(back.to_vector<float>(), (std::vector<float>{-7.0f, 0.0f, 123456789.0f}));
  Tensor ub = Tensor::from_vector(std::vector<uint8_t>{0, 200, 255}).to(DType::Int64);
  EXPECT_EQ(ub.to_vector<int64_t>(), (std::vector<int64_t>{0, 200, 255}));

  // to() always makes a new tensor, even to the same dtype.
  Tensor same = f.to(DType::Float32);
  EXPECT_NE(same.raw_data(), f.raw_data());
  same.data<float>()[0] = 99.0f;
  EXPECT_EQ(f.to_vector<float>()[0], -2.75f);

  // to() of a non-contiguous view converts the logical elements.
  Tensor m = Tensor::arange(0, 6).to(DType::Float32);
  Tensor mt = kernel::transpose(kernel::reshape(m, {2, 3}), 0, 1);
  EXPECT_EQ(mt.to(DType::Int64).to_vector<int64_t>(), (std::vector<int64_t>{0, 3, 1, 4, 2, 5}));
  // to_vector<T>() converts as well.
  EXPECT_EQ(mt.to_vector<int64_t>(), (std::vector<int64_t>{0, 3, 1, 4, 2, 5}));
  EXPECT_EQ(Tensor::from_vector(std::vector<uint8_t>{3, 4}).to_vector<float>(), (std::vector<float>{3, 4}));
}

TEST(TensorBasics, CloneDetachCopyFrom) {
  Tensor a = tt::rand_tensor({3, 4}, 1);
  Tensor c = a.clone();
  EXPECT_EQ(c.to_vector<float>(), a.to_vector<float>());
  EXPECT_NE(c.raw_data(), a.raw_data());
  c.data<float>()[0] = 123.0f;
  EXPECT_NE(a.to_vector<float>()[0], 123.0f);

  Tensor d = a.detach();
  EXPECT_FALSE(d.same(a));
  EXPECT_EQ(d.raw_data(), a.raw_data());  // shares storage
  d.data<float>()[5] = -9.0f;
  EXPECT_EQ(a.to_vector<float>()[5], -9.0f);

  // copy_from broadcasts the source and converts dtypes.
  Tensor dst = Tensor::zeros({3, 4});
  dst.copy_from(Tensor::from_vector(std::vector<int64_t>{1, 2, 3, 4}));
  const auto dv = dst.to_vector<float>();
  for (int r = 0; r < 3; ++r)
    for (int k = 0; k < 4; ++k) EXPECT_EQ(dv[r * 4 + k], static_cast<float>(k + 1));
  EXPECT_EQ(tt::error_message<ShapeError>([&] {
              dst.copy_from(Tensor::zeros({2, 4}));
            }),
            "copy: shapes [3,4] and [2,4] cannot be broadcast");
  EXPECT_THROW(Tensor::zeros({4}).copy_from(Tensor::zeros({3, 4})), ShapeError);

  // Copy into a strided view writes only the view's elements.
  Tensor base = Tensor::zeros({4, 4});
  Tensor col = kernel::slice(base, 1, 1, 2);  // column 1, shape [4,1]
  col.copy_from(Tensor::from_vector(std::vector<float>{1, 2, 3, 4}, {4, 1}));
  const auto bv = base.to_vector<float>();
  for (int r = 0; r < 4; ++r)
    for (int k = 0; k < 4; ++k) EXPECT_EQ(bv[r * 4 + k], k == 1 ? static_cast<float>(r + 1) : 0.0f);
}

TEST(TensorBasics, FillOnViews) {
  Tensor base = Tensor::zeros({4, 6});
  Tensor v = kernel::slice(kernel::slice(base, 0, 1, 3), 1, 0, 6, 2);  // rows 1-2, even columns
  EXPECT_FALSE(v.is_contiguous());
  v.fill(5.0);
  const auto bv = base.to_vector<float>();
  for (int r = 0; r < 4; ++r)
    for (int k = 0; k < 6; ++k)
      EXPECT_EQ(bv[r * 6 + k], (r == 1 || r == 2) && k % 2 == 0 ? 5.0f : 0.0f) << r << "," << k;
  Tensor iv = Tensor::zeros({3, 3}, DType::Int64);
  kernel::transpose(iv, 0, 1).fill(-4);
  for (int64_t x : iv.to_vector<int64_t>()) EXPECT_EQ(x, -4);
}

TEST(TensorBasics, PrintsDtypeShapeAndValues) {
  std::ostringstream os;
  os << Tensor::arange(0, 3);
  EXPECT_EQ(os.str(), "Tensor(float32, [3], [0, 1, 2])");
  std::ostringstream os2;
  os2 << Tensor::zeros({20}, DType::Int64);
  EXPECT_NE(os2.str().find("..."), std::string::npos);
}

TEST(TensorBasics, AllocatorReusesMemorySafely) {
  // Freed blocks are recycled; a recycled block must not leak old contents into zeros().
  for (int round = 0; round < 3; ++round) {
    { Tensor t = Tensor::full({4096}, 7.0); }
    Tensor z = Tensor::zeros({4096});
    for (float v : z.to_vector<float>()) ASSERT_EQ(v, 0.0f);
  }
  empty_allocator_cache();
  Tensor after = Tensor::ones({10000});
  EXPECT_EQ(after.to_vector<float>()[9999], 1.0f);
  // Storage is 64-byte aligned.
  for (int64_t n : {1, 3, 1000, 5000, 1 << 21})
    EXPECT_EQ(reinterpret_cast<uintptr_t>(Tensor::empty({n}).raw_data()) % 64, 0u) << n;
}

TEST(TensorBasics, FromEmptyVector) {
  // An empty std::vector may hand out a null data(); creating an empty tensor from it is fine.
  Tensor e = Tensor::from_vector(std::vector<float>{});
  EXPECT_EQ(e.shape(), (Shape{0}));
  EXPECT_EQ(Tensor::from_vector(std::vector<int64_t>{}, {2, 0}).shape(), (Shape{2, 0}));
  EXPECT_EQ(Tensor::from_buffer(nullptr, {0, 3}, DType::UInt8).numel(), 0);
}
