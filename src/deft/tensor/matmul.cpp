// Matrix multiply through oneDNN. Measured here (bench/bench_kernels.cpp,
// bench/README.md) against OpenBLAS (core type forced to SkylakeX) and BLIS
// (forced to its AVX-512 kernels): oneDNN was fastest at every shape, and it
// runs on the same OpenMP pool as deft's kernels. Within oneDNN, dnnl_sgemm
// wins on one thread and on large matrices; on several threads its matmul
// primitive (brgemm) is 8-13% faster on the MLP's shapes, so those use a
// cached primitive.
#include <dnnl.h>

#include <cstring>
#include <dnnl.hpp>
#include <map>
#include <tuple>

#include "deft/tensor/kernels.h"
#include "deft/tensor/loops.h"
#include "deft/tensor/parallel.h"

namespace deft::kernel {
namespace {

// Below this M*N*K a product runs on one thread whatever the pool size. Measured in
// the seed-MLP training loop (deft train, 2 threads, batch 64/256): 2^18 gave 189K/275K
// samples/s, 2^22 242K/394K, 2^24 279K/424K, one thread 285K/359K. Splitting products
// of a few million multiply-adds costs more in a training step (wake-up, cold caches,
// the loader thread on the other core) than the isolated GEMM benchmark suggests.
constexpr double kSerialVolume = 1 << 24;

struct MatOperand {
  char trans = 'N';
  int64_t ld = 0;
  bool ok = false;
};

// How a [rows, cols] slice with strides (rs, cs) can be handed to row-major GEMM.
MatOperand classify(int64_t rows, int64_t cols, int64_t rs, int64_t cs) {
  if (rows == 1) rs = cols;  // a stride on a size-1 axis is never used
  if (cols == 1) cs = 1;
  if (cs == 1 && rs >= std::max<int64_t>(cols, 1)) return {'N', rs, true};
  if (rows == 1 && cols == 1) return {'N', 1, true};
  if (cols == 1 && rows > 1 && rs == 1) return {'T', std::max<int64_t>(rows, 1), true};
  if (rs == 1 && cs >= std::max<int64_t>(rows, 1)) return {'T', cs, true};
  return {};
}

// oneDNN matmul primitives with their memory objects, created once per
// (shape, layout, threads) and per calling thread, then reused: a call only
// swaps the data pointers (creating them each time costs ~2 us, 6% of an MLP GEMM).
struct CachedMatmul {
  dnnl::matmul prim;
  dnnl::memory a, b, c;
};
struct PrimitiveCache {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
  std::map<std::tuple<int64_t, int64_t, int64_t, char, char, int64_t, int64_t, int>, CachedMatmul> entries;
};

dnnl::memory::desc operand_desc(int64_t rows, int64_t cols, const MatOperand& op) {
  const dnnl::memory::dims strides = op.trans == 'N' ? dnnl::memory::dims{op.ld, 1} : dnnl::memory::dims{1, op.ld};
  return dnnl::memory::desc({rows, cols}, dnnl::memory::data_type::f32, strides);
}

void gemm_primitive(const MatOperand& A, const MatOperand& B, int64_t M, int64_t N, int64_t K, const float* a,
                    const float* b, float* c, int threads) {
  thread_local PrimitiveCache cache;
  const auto key = std::make_tuple(M, N, K, A.trans, B.trans, A.ld, B.ld, threads);
  auto it = cache.entries.find(key);
  if (it == cache.entries.end()) {
    const auto da = operand_desc(M, K, A), db = operand_desc(K, N, B);
    const dnnl::memory::desc dc({M, N}, dnnl::memory::data_type::f32, dnnl::memory::dims{N, 1});
    CachedMatmul m{dnnl::matmul(dnnl::matmul::primitive_desc(dnnl::matmul::desc(da, db, dc), cache.engine)),
                   dnnl::memory(da, cache.engine, DNNL_MEMORY_NONE), dnnl::memory(db, cache.engine, DNNL_MEMORY_NONE),
                   dnnl::memory(dc, cache.engine, DNNL_MEMORY_NONE)};
    it = cache.entries.emplace(key, std::move(m)).first;
  }
  CachedMatmul& m = it->second;
  m.a.set_data_handle(const_cast<float*>(a));
  m.b.set_data_handle(const_cast<float*>(b));
  m.c.set_data_handle(c);
  m.prim.execute(cache.stream, {{DNNL_ARG_SRC, m.a}, {DNNL_ARG_WEIGHTS, m.b}, {DNNL_ARG_DST, m.c}});
  cache.stream.wait();
}

void gemm(const MatOperand& A, const MatOperand& B, int64_t M, int64_t N, int64_t K, const float* a,
          const float* b, float* c) {
  const int threads = detail::thread_is_serial() || omp_in_parallel() ? 1 : num_threads();
  const double volume = static_cast<double>(M) * N * K;
  if (threads > 1 && volume >= kSerialVolume && volume < 1e8) {
    gemm_primitive(A, B, M, N, K, a, b, c, threads);
    return;
  }
  // Tiny products (an MLP's output layer) run on one thread: waking a second
  // costs more than the multiply (measured 6-8 us vs ~1 us per call on this VM).
  const bool single = threads > 1 && volume < kSerialVolume;
  if (single) omp_set_num_threads(1);
  const dnnl_status_t st = dnnl_sgemm(A.trans, B.trans, M, N, K, 1.0f, a, A.ld, b, B.ld, 0.0f, c, N);
  if (single) omp_set_num_threads(threads);
  DEFT_INTERNAL_CHECK(st == dnnl_success, "matmul: oneDNN sgemm failed with status {} (M={}, N={}, K={})",
                      static_cast<int>(st), M, N, K);
}

}  // namespace

Tensor matmul(const Tensor& a_in, const Tensor& b_in) {
  DEFT_CHECK(a_in.dtype() == DType::Float32 && b_in.dtype() == DType::Float32,
             "matmul: expects float32 operands, got {} and {}", dtype_name(a_in.dtype()),
             dtype_name(b_in.dtype()));
  DEFT_CHECK_SHAPE(a_in.dim() >= 1 && b_in.dim() >= 1, "matmul: shapes {} and {} do not match",
                   shape_str(a_in.shape()), shape_str(b_in.shape()));
  Tensor a = a_in.dim() == 1 ? unsqueeze(a_in, 0) : a_in;
  Tensor b = b_in.dim() == 1 ? unsqueeze(b_in, 1) : b_in;
  const int64_t M = a.size(-2), K = a.size(-1), N = b.size(-1);
  DEFT_CHECK_SHAPE(b.size(-2) == K, "matmul: shapes {} and {} do not match", shape_str(a_in.shape()),
                   shape_str(b_in.shape()));
  const Shape ba(a.shape().begin(), a.shape().end() - 2);
  const Shape bb(b.shape().begin(), b.shape().end() - 2);
  for (size_t i = 1; i <= std::min(ba.size(), bb.size()); ++i) {  // name the full shapes, not the batch parts
    const int64_t da = ba[ba.size() - i], db = bb[bb.size() - i];
    DEFT_CHECK_SHAPE(da == db || da == 1 || db == 1, "matmul: batch dimensions of shapes {} and {} cannot be broadcast",
                     shape_str(a_in.shape()), shape_str(b_in.shape()));
  }
  const Shape batch = broadcast_shapes(ba, bb, "matmul");
  Shape out_shape = batch;
  out_shape.push_back(M);
  out_shape.push_back(N);
  Tensor out = Tensor::empty(out_shape, DType::Float32);
  auto final_shape = [&](Tensor t) {
    Shape s = batch;
    if (a_in.dim() > 1) s.push_back(M);
    if (b_in.dim() > 1) s.push_back(N);
    return s == t.shape() ? t : reshape(t, s);
  };
  if (out.numel() == 0) return final_shape(out);
  if (K == 0) {
    out.fill(0.0);
    return final_shape(out);
  }
  detail::sync_thread_count();

  // Batched A against one B: a single GEMM over all rows of A.
  if (shape_numel(bb) == 1 && a.is_contiguous() && !ba.empty()) {
    const int64_t rows = a.numel() / K;
    MatOperand A{'N', K, true};
    MatOperand B = classify(K, N, b.strides()[b.dim() - 2], b.strides()[b.dim() - 1]);
    if (!B.ok) {
      b = b.clone();
      B = {'N', N, true};
    }
    gemm(A, B, rows, N, K, a.data<float>(), b.data<float>(), out.data<float>());
    return final_shape(out);
  }

  MatOperand A = classify(M, K, a.strides()[a.dim() - 2], a.strides()[a.dim() - 1]);
  if (!A.ok) {
    a = a.clone();
    A = {'N', K, true};
  }
  MatOperand B = classify(K, N, b.strides()[b.dim() - 2], b.strides()[b.dim() - 1]);
  if (!B.ok) {
    b = b.clone();
    B = {'N', N, true};
  }
  const int64_t nbatch = shape_numel(batch);
  const Shape sa = detail::broadcast_strides(make_view(a, ba, Shape(a.strides().begin(), a.strides().end() - 2), 0), batch);
  const Shape sb = detail::broadcast_strides(make_view(b, bb, Shape(b.strides().begin(), b.strides().end() - 2), 0), batch);
  const float* pa = a.data<float>();
  const float* pb = b.data<float>();
  float* pc = out.data<float>();
  auto batch_offsets = [&](int64_t i, int64_t& oa, int64_t& ob) {
    oa = ob = 0;
    for (int64_t d = static_cast<int64_t>(batch.size()) - 1; d >= 0; --d) {
      const int64_t idx = i % batch[d];
      i /= batch[d];
      oa += idx * sa[d];
      ob += idx * sb[d];
    }
  };
  const double flops_each = 2.0 * static_cast<double>(M) * N * K;
  if (nbatch > 1 && flops_each < 4e6) {
    // Small matrices: one GEMM per thread at a time (oneDNN runs serially inside the region).
    parallel_for(0, nbatch, 1, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) {
        int64_t oa, ob;
        batch_offsets(i, oa, ob);
        gemm(A, B, M, N, K, pa + oa, pb + ob, pc + i * M * N);
      }
    });
  } else {
    for (int64_t i = 0; i < nbatch; ++i) {
      int64_t oa, ob;
      batch_offsets(i, oa, ob);
      gemm(A, B, M, N, K, pa + oa, pb + ob, pc + i * M * N);
    }
  }
  return final_shape(out);
}

}  // namespace deft::kernel
