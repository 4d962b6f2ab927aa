// matmul: 2-D, 1-D operands, batched with broadcast batch dims, transposed,
// sliced and expanded views as operands, empty shapes, and error messages.
// Every result is checked against a naive double-precision triple loop.
#include <gtest/gtest.h>

#include <cmath>

#include "test_util.h"

using namespace deft;
namespace k = deft::kernel;

namespace {

struct Ref {
  Shape shape;
  std::vector<double> v;
};

// NumPy matmul semantics written out: 1-D operands promoted and the added dim
// dropped again, batch dims broadcast.
Ref naive_matmul(const Tensor& a, const Tensor& b) {
  Shape as = a.shape(), bs = b.shape();
  const bool a1 = as.size() == 1, b1 = bs.size() == 1;
  if (a1) as.insert(as.begin(), 1);
  if (b1) bs.push_back(1);
  const int64_t M = as[as.size() - 2], K = as.back(), N = bs.back();
  EXPECT_EQ(bs[bs.size() - 2], K);
  const Shape ba(as.begin(), as.end() - 2), bb(bs.begin(), bs.end() - 2);
  const Shape batch = tt::bshape(ba, bb);
  Ref r;
  r.shape = batch;
  if (!a1) r.shape.push_back(M);
  if (!b1) r.shape.push_back(N);
  const auto av = a.to_vector<float>(), bv = b.to_vector<float>();
  for (int64_t bi = 0; bi < tt::numel(batch); ++bi) {
    const auto bidx = tt::unravel(bi, batch);
    const int64_t fa = tt::bcast_flat(bidx, ba), fb = tt::bcast_flat(bidx, bb);
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        double acc = 0;
        for (int64_t q = 0; q < K; ++q)
          acc += static_cast<double>(av[static_cast<size_t>((fa * M + i) * K + q)]) *
                 bv[static_cast<size_t>((fb * K + q) * N + j)];
        r.v.push_back(acc);
      }
  }
  return r;
}

void check_matmul(const Tensor& a, const Tensor& b) {
  SCOPED_TRACE(shape_str(a.shape()) + " @ " + shape_str(b.shape()) +
               (a.is_contiguous() ? "" : " (a strided)") + (b.is_contiguous() ? "" : " (b strided)"));
  const Tensor got = k::matmul(a, b);
  const Ref want = naive_matmul(a, b);
  ASSERT_EQ(got.shape(), want.shape);
  ASSERT_EQ(got.dtype(), DType::Float32);
  const int64_t K = a.shape().back();
  ASSERT_TRUE(tt::all_close(got.to_vector<float>(), want.v, 2e-6 * static_cast<double>(K + 1), 1e-5));
}

uint32_t g_seed = 1;
Tensor r(const Shape& s) { return tt::rand_tensor(s, g_seed++); }

}  // namespace

TEST(Matmul, TwoDimensional) {
  for (const auto& [m, kk, n] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{{1, 1, 1},
                                                                                   {3, 4, 5},
                                                                                   {17, 33, 9},
                                                                                   {64, 784, 10},
                                                                                   {1, 5, 7},
                                                                                   {6, 5, 1},
                                                                                   {128, 64, 96},
                                                                                   {2, 300, 3}})
    check_matmul(r({m, kk}), r({kk, n}));
}

TEST(Matmul, OneDimensionalOperands) {
  check_matmul(r({7}), r({7, 4}));     // [K] @ [K,N] -> [N]
  check_matmul(r({5, 7}), r({7}));     // [M,K] @ [K] -> [M]
  check_matmul(r({7}), r({7}));        // [K] @ [K] -> []
  check_matmul(r({3, 5, 7}), r({7}));  // batched @ vector -> [3,5]
  check_matmul(r({7}), r({2, 7, 4}));  // vector @ batched -> [2,4]
  check_matmul(r({1}), r({1}));
  EXPECT_EQ(k::matmul(r({4}), r({4})).dim(), 0);
  // A strided vector.
  check_matmul(k::slice(r({20}), 0, 1, 20, 3), r({7, 3}));               // 7 elements, stride 3
  check_matmul(r({3, 6}), k::slice(r({6, 2}), 1, 1, 2));                 // [6,1] column
  check_matmul(r({3, 6}), k::squeeze(k::slice(r({6, 2}), 1, 1, 2), 1));  // strided [6]
}

TEST(Matmul, BatchedWithBroadcastBatchDims) {
  check_matmul(r({4, 3, 5}), r({4, 5, 2}));        // same batch
  check_matmul(r({4, 3, 5}), r({5, 2}));           // one B for every A: single-GEMM path
  check_matmul(r({2, 4, 3, 5}), r({1, 5, 2}));     // B batch of 1
  check_matmul(r({3, 5}), r({4, 5, 2}));           // one A for every B
  check_matmul(r({2, 1, 3, 5}), r({6, 5, 2}));     // [2,1] x [6] -> [2,6]
  check_matmul(r({1, 4, 3, 5}), r({2, 1, 5, 2}));  // [1,4] x [2,1] -> [2,4]
  check_matmul(r({2, 3, 1, 5}), r({1, 5, 4}));
  // Large per-batch products take the serial-over-batch path.
  check_matmul(r({2, 130, 128}), r({2, 128, 130}));
  // Many small products: parallel over the batch.
  check_matmul(r({64, 4, 6}), r({64, 6, 3}));
}

TEST(Matmul, TransposedAndStridedViewsAsOperands) {
  const Tensor a = r({40, 30}), b = r({30, 50});
  check_matmul(k::transpose(a, 0, 1), r({40, 20}));                                // A^T (passed as 'T')
  check_matmul(r({20, 50}), k::transpose(b, 0, 1));                                // B^T
  check_matmul(k::transpose(r({50, 20}), 0, 1), k::transpose(b, 0, 1));            // both transposed
  check_matmul(k::slice(r({20, 60}), 1, 5, 45), r({40, 7}));                       // row stride > cols
  check_matmul(k::slice(r({20, 60}), 1, 0, 60, 2), r({30, 7}));                    // column stride 2: copied
  check_matmul(k::expand(r({1, 9}), {5, 9}), r({9, 4}));                           // stride-0 rows
  check_matmul(r({5, 9}), k::expand(r({9, 1}), {9, 4}));                           // stride-0 columns
  check_matmul(k::transpose(k::slice(r({60, 20}), 0, 10, 50), 0, 1), r({40, 3}));  // sliced then transposed
  // Batched transposes and permutes.
  check_matmul(k::transpose(r({3, 5, 4}), 1, 2), r({3, 5, 6}));  // [3,4,5] @ [3,5,6]
  check_matmul(r({3, 4, 5}), k::transpose(r({3, 6, 5}), 1, 2));
  check_matmul(k::permute(r({4, 3, 5}), {1, 0, 2}), r({3, 5, 2}));  // batch stride not outermost
  check_matmul(k::permute(r({5, 3, 4}), {1, 2, 0}), k::transpose(r({3, 2, 5}), 1, 2));
  check_matmul(k::expand(r({1, 4, 5}), {3, 4, 5}), r({3, 5, 2}));  // stride-0 batch
  check_matmul(k::transpose(r({4, 5}), 0, 1), r({3, 4, 2}));       // transposed A broadcast over batch
  // The transposed operand's storage is read in place, and is not modified.
  const auto before = a.to_vector<float>();
  (void)k::matmul(k::transpose(a, 0, 1), r({40, 2}));
  EXPECT_EQ(a.to_vector<float>(), before);
}

TEST(Matmul, EmptyDims) {
  Tensor z = k::matmul(r({3, 0}), r({0, 4}));  // K = 0: zeros
  EXPECT_EQ(z.shape(), (Shape{3, 4}));
  for (float v : z.to_vector<float>()) EXPECT_EQ(v, 0.0f);
  EXPECT_EQ(k::matmul(r({0, 5}), r({5, 4})).shape(), (Shape{0, 4}));
  EXPECT_EQ(k::matmul(r({2, 0, 5}), r({5, 4})).shape(), (Shape{2, 0, 4}));
  EXPECT_EQ(k::matmul(r({0}), r({0})).item<float>(), 0.0f);
}

TEST(Matmul, ErrorMessages) {
  EXPECT_EQ(tt::error_message<ShapeError>([] {
              k::matmul(Tensor::zeros({64, 784}), Tensor::zeros({128, 10}));
            }),
            "matmul: shapes [64,784] and [128,10] do not match");
  EXPECT_EQ(tt::error_message<ShapeError>([] { k::matmul(Tensor::zeros({3}), Tensor::zeros({4})); }),
            "matmul: shapes [3] and [4] do not match");
  EXPECT_EQ(tt::error_message<ShapeError>([] {
              k::matmul(Tensor::zeros({2, 3}), Tensor::zeros({2, 4, 5}));
            }),
            "matmul: shapes [2,3] and [2,4,5] do not match");
  EXPECT_EQ(tt::error_message<ShapeError>([] {
              k::matmul(Tensor::scalar(1), Tensor::zeros({1, 2}));
            }),
            "matmul: shapes [] and [1,2] do not match");
  EXPECT_EQ(tt::error_message<InputError>([] {
              k::matmul(Tensor::zeros({2, 2}, DType::Int64), Tensor::zeros({2, 2}));
            }),
            "matmul: expects float32 operands, got int64 and float32");
  // Incompatible batch dims: the message names both operands' full shapes.
  EXPECT_EQ(tt::error_message<ShapeError>([] {
              k::matmul(Tensor::zeros({2, 3, 4}), Tensor::zeros({3, 4, 5}));
            }),
            "matmul: batch dimensions of shapes [2,3,4] and [3,4,5] cannot be broadcast");
  EXPECT_EQ(tt::error_message<ShapeError>([] {
              k::matmul(Tensor::zeros({2, 5, 3, 4}), Tensor::zeros({3, 4, 5}));
            }),
            "matmul: batch dimensions of shapes [2,5,3,4] and [3,4,5] cannot be broadcast");
}
