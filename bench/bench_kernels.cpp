// Kernel benchmarks: deft's matmul against direct library GEMM calls, and
// deft's elementwise kernels against a plain loop. See bench/README.md.
//
//   cmake -S . -B build-bench -G Ninja -DDEFT_BUILD_TESTS=OFF && ninja -C build-bench bench_kernels
//   build-bench/bin/bench_kernels --benchmark_min_time=0.05 --benchmark_repetitions=8
//                                 --benchmark_enable_random_interleaving=true
//
// Matmul (C = A·B, row-major, float32), 1 and 2 threads, reported as GFLOP/s
// (2·M·N·K per call) and as a fraction of threads × the single-core FP32 FMA
// peak that this program measures at startup:
//   matmul/deft            deft::kernel::matmul(A, B), output allocation included
//   matmul/dnnl_sgemm      dnnl_sgemm into a preallocated C
//   matmul/dnnl_primitive  a cached oneDNN matmul primitive (plain row-major layouts)
//   matmul/blis            BLIS cblas_sgemm (dlopen libblis.so.4)
//   matmul/openblas        OpenBLAS cblas_sgemm (dlopen libopenblas.so.0, core SkylakeX)
// OpenBLAS is registered last: its own pthread pool keeps spinning after a call
// and can slow down the OpenMP pool that every other benchmark runs on.
//
// Elementwise, 1M and 16M float32 elements, 1 and 2 threads, GB/s counting the
// bytes read plus the bytes written:
//   elementwise/deft_add       deft::kernel::binary(Binary::Add, a, b)   (12 bytes/element)
//   elementwise/deft_relu      deft::kernel::unary(Unary::Relu, x)       (8 bytes/element)
//   elementwise/loop_copy      o[i] = x[i] into a preallocated o          (8 bytes/element)
//   elementwise/loop_add       o[i] = a[i] + b[i] into a preallocated o   (12 bytes/element)
// The loops are split over the same OpenMP pool with `omp parallel for`.
//
// After the run a summary table is printed, with "deft vs best library: X%" for
// each matmul shape and thread count (best repetition when repeated).
#include <benchmark/benchmark.h>
#include <dlfcn.h>
#include <immintrin.h>
#include <omp.h>
#include <oneapi/dnnl/dnnl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <new>
#include <oneapi/dnnl/dnnl.hpp>
#include <regex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "deft/tensor/kernels.h"
#include "deft/tensor/parallel.h"
#include "deft/tensor/random.h"
#include "deft/tensor/tensor.h"

namespace {

using deft::Tensor;

// ---- single-core FP32 FMA peak ------------------------------------------------------

// noipa: the loop has no side effects, so without it GCC may move the call across the clock reads.
// 12 independent FMA chains: enough to cover latency × pipes on current x86 cores
// (4 cycles × 2 FMA units). x ← x·m + c converges to c/(1−m): no overflow, no denormals.
__attribute__((target("avx512f"), noipa)) double fma_loop_avx512(int64_t iters) {
  __m512 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm512_set1_ps(1.0f + 0.01f * static_cast<float>(i));
  const __m512 m = _mm512_set1_ps(0.9999f);
  const __m512 c = _mm512_set1_ps(0.001f);
  for (int64_t it = 0; it < iters; ++it) {
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) acc[i] = _mm512_fmadd_ps(acc[i], m, c);
  }
  __m512 s = acc[0];
  for (int i = 1; i < 12; ++i) s = _mm512_add_ps(s, acc[i]);
  alignas(64) float v[16];
  _mm512_store_ps(v, s);
  double r = 0;
  for (float x : v) r += x;
  return r;
}

__attribute__((target("avx2,fma"), noipa)) double fma_loop_avx2(int64_t iters) {
  __m256 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm256_set1_ps(1.0f + 0.01f * static_cast<float>(i));
  const __m256 m = _mm256_set1_ps(0.9999f);
  const __m256 c = _mm256_set1_ps(0.001f);
  for (int64_t it = 0; it < iters; ++it) {
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) acc[i] = _mm256_fmadd_ps(acc[i], m, c);
  }
  __m256 s = acc[0];
  for (int i = 1; i < 12; ++i) s = _mm256_add_ps(s, acc[i]);
  float v[8];
  _mm256_storeu_ps(v, s);
  double r = 0;
  for (float x : v) r += x;
  return r;
}

struct Peak {
  double flops = 0;  // FP32 FLOP/s of all threads together
  const char* isa = "";
};

// Runs the FMA loop on `threads` threads for about `seconds` and returns their
// total FLOP/s. The time is cut into ~2 ms slices and the fastest slice counts: on
// a shared VM a slice that got preempted is slow, and one that did not shows the
// cores' peak.
Peak measure_fma_peak(double seconds, int threads) {
  const bool avx512 = __builtin_cpu_supports("avx512f");
  const int lanes = avx512 ? 16 : 8;
  auto run = [&](int64_t iters) { return avx512 ? fma_loop_avx512(iters) : fma_loop_avx2(iters); };
  volatile double sink = 0;
  using clock = std::chrono::steady_clock;
  auto timed = [&](int64_t iters, int nt) {
    double s = 0;
    const auto t0 = clock::now();
    if (nt == 1) {
      s = run(iters);
    } else {
#pragma omp parallel num_threads(nt) reduction(+ : s)
      s += run(iters);
    }
    const double dt = std::chrono::duration<double>(clock::now() - t0).count();
    sink = sink + s;
    return dt;
  };
  // Warm up (clock ramp-up) and calibrate a ~2 ms slice on one thread.
  int64_t iters = 1 << 12;
  while (timed(iters, 1) < 0.002) iters *= 2;
  for (const auto t_start = clock::now(); std::chrono::duration<double>(clock::now() - t_start).count() < 0.02;)
    timed(iters, threads);
  double best = 0;
  for (const auto t_start = clock::now(); std::chrono::duration<double>(clock::now() - t_start).count() < seconds;)
    best = std::max(best, static_cast<double>(iters) * threads * 12 * lanes * 2 / timed(iters, threads));
  (void)sink;
  return {best, avx512 ? "AVX-512, 12 independent _mm512_fmadd_ps chains" : "AVX2, 12 independent FMA chains"};
}

Peak g_peak;  // one thread: the per-core peak every peak_frac is relative to

// ---- shapes, inputs, reference ---------------------------------------------------------

struct GemmShape {
  int64_t M, K, N;
  std::string str() const {
    return std::to_string(M) + "x" + std::to_string(K) + "x" + std::to_string(N);
  }
  double flops() const { return 2.0 * static_cast<double>(M) * static_cast<double>(N) * static_cast<double>(K); }
};

const std::vector<GemmShape> kShapes = {{64, 784, 128}, {256, 784, 128}, {1024, 1024, 1024}};
const std::vector<int> kThreads = {1, 2};
const std::vector<int64_t> kElementwiseSizes = {int64_t{1} << 20, int64_t{1} << 24};

struct GemmInputs {
  Tensor a, b;       // deft tensors, contiguous [M,K] and [K,N]
  std::vector<float> ref;  // C = A·B, computed in double
};

// Inputs per shape, built once and shared by all implementations.
GemmInputs& inputs(const GemmShape& s) {
  static std::map<std::string, std::unique_ptr<GemmInputs>> cache;
  auto& slot = cache[s.str()];
  if (!slot) {
    slot = std::make_unique<GemmInputs>();
    deft::Generator gen(1234);
    slot->a = Tensor::uniform({s.M, s.K}, -1.f, 1.f, gen);
    slot->b = Tensor::uniform({s.K, s.N}, -1.f, 1.f, gen);
    const float* a = slot->a.data<float>();
    const float* b = slot->b.data<float>();
    std::vector<double> acc(static_cast<size_t>(s.M * s.N), 0.0);
    for (int64_t i = 0; i < s.M; ++i)
      for (int64_t k = 0; k < s.K; ++k) {
        const double av = a[i * s.K + k];
        for (int64_t j = 0; j < s.N; ++j) acc[i * s.N + j] += av * b[k * s.N + j];
      }
    slot->ref.assign(acc.begin(), acc.end());
  }
  return *slot;
}

// Max absolute error against the double-precision reference; sets an error on mismatch.
bool check_result(benchmark::State& state, const GemmShape& s, const float* c) {
  const auto& ref = inputs(s).ref;
  double max_err = 0;
  for (size_t i = 0; i < ref.size(); ++i) max_err = std::max(max_err, std::fabs(static_cast<double>(c[i]) - ref[i]));
  // |a|,|b| <= 1: the error bound grows like K·eps.
  if (!(max_err < 1e-5 * static_cast<double>(s.K) + 1e-4)) {
    state.SkipWithError(("wrong result, max abs error " + std::to_string(max_err)).c_str());
    return false;
  }
  return true;
}

// A zeroed float buffer, 64-byte aligned like deft's tensors (std::vector's 16-byte
// alignment would split every AVX-512 store across two cache lines).
class AlignedFloats {
 public:
  explicit AlignedFloats(int64_t n) {
    const size_t bytes = (static_cast<size_t>(n) * sizeof(float) + 63) / 64 * 64;
    p_ = static_cast<float*>(std::aligned_alloc(64, bytes));
    if (!p_) throw std::bad_alloc();
    std::memset(p_, 0, bytes);
  }
  ~AlignedFloats() { std::free(p_); }
  AlignedFloats(const AlignedFloats&) = delete;
  AlignedFloats& operator=(const AlignedFloats&) = delete;
  float* data() const { return p_; }

 private:
  float* p_ = nullptr;
};

// ---- optional: wait for an idle machine ------------------------------------------------
//
// On a shared machine, any other runnable process halves a 2-thread run (an OpenMP
// region lasts until its slowest thread got its slice). DEFT_BENCH_WAIT_IDLE=<ms>
// makes every benchmark run wait, before its timed loop, until all CPUs have been
// idle for <ms> ms (from /proc/stat), at most 2 s per run and 120 s in total.
// Combine with repetitions and random interleaving; the summary takes the best one.

bool read_cpu_ticks(uint64_t& idle, uint64_t& total) {
  std::FILE* f = std::fopen("/proc/stat", "r");
  if (!f) return false;
  unsigned long long v[8] = {};
  const int n = std::fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4],
                            &v[5], &v[6], &v[7]);
  std::fclose(f);
  if (n < 5) return false;
  idle = v[3] + v[4];
  total = 0;
  for (auto x : v) total += x;
  return true;
}

int wait_idle_ms() {
  static const int ms = [] {
    const char* e = std::getenv("DEFT_BENCH_WAIT_IDLE");
    return e ? std::max(0, std::atoi(e)) : 0;
  }();
  return ms;
}

double g_waited_s = 0;  // total time spent waiting

void wait_for_idle() {
  const int ms = wait_idle_ms();
  if (ms <= 0 || g_waited_s > 120) return;
  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  while (std::chrono::duration<double>(clock::now() - start).count() < 2.0) {
    uint64_t i0, t0, i1, t1;
    if (!read_cpu_ticks(i0, t0)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    if (!read_cpu_ticks(i1, t1)) break;
    if (t1 > t0 && (i1 - i0) * 100 >= (t1 - t0) * 95) break;
  }
  g_waited_s += std::chrono::duration<double>(clock::now() - start).count();
}

void set_threads(int t) {
  deft::set_num_threads(t);
  omp_set_num_threads(t);  // for the direct oneDNN calls made from this thread
}

void set_gemm_counters(benchmark::State& state, const GemmShape& s, int threads) {
  const double flops = s.flops() * static_cast<double>(state.iterations());
  state.counters["GFLOPS"] = benchmark::Counter(flops, benchmark::Counter::kIsRate);
  // Dimensionless (the console still prints it with an SI prefix and "/s").
  state.counters["peak_frac"] =
      benchmark::Counter(flops / (threads * g_peak.flops), benchmark::Counter::kIsRate);
}

// ---- dlopen'd libraries ----------------------------------------------------------------

// CBLAS enum values (identical in OpenBLAS and BLIS).
constexpr int kCblasRowMajor = 101;
constexpr int kCblasNoTrans = 111;
using cblas_sgemm_fn = void (*)(int, int, int, int, int, int, float, const float*, int, const float*, int, float,
                                float*, int);

struct Blas {
  bool ok = false;
  std::string error;
  std::string label;
  cblas_sgemm_fn sgemm = nullptr;
  void (*set_threads)(int) = nullptr;  // openblas_set_num_threads / bli_thread_set_num_threads
};

void* open_lib(const char* name, Blas& out) {
  void* h = dlopen(name, RTLD_NOW | RTLD_LOCAL);
  if (!h) out.error = std::string("dlopen ") + name + ": " + dlerror();
  return h;
}

template <class F>
F sym(void* h, const char* name) {
  return reinterpret_cast<F>(dlsym(h, name));
}

// Loaded on first use, so that OpenBLAS's thread pool does not exist before its benchmarks.
Blas& openblas() {
  static Blas lib = [] {
    Blas l;
    // Debian's DYNAMIC_ARCH OpenBLAS 0.3.21 does not recognise every AVX-512 CPU; force
    // the AVX-512 kernels. Must be set before the library initialises.
    setenv("OPENBLAS_CORETYPE", "SkylakeX", 1);
    void* h = open_lib("libopenblas.so.0", l);
    if (!h) return l;
    l.sgemm = sym<cblas_sgemm_fn>(h, "cblas_sgemm");
    l.set_threads = sym<void (*)(int)>(h, "openblas_set_num_threads");
    auto corename = sym<char* (*)()>(h, "openblas_get_corename");
    if (!l.sgemm || !l.set_threads) {
      l.error = "libopenblas.so.0 lacks cblas_sgemm or openblas_set_num_threads";
      return l;
    }
    l.label = std::string("core=") + (corename ? corename() : "?");
    l.ok = true;
    return l;
  }();
  return lib;
}

// BLIS 0.9.0 selects its 'generic' (reference, unvectorised) sub-configuration on
// CPUs its cpuid table does not know, e.g. AMD family 1Ah. Like OPENBLAS_CORETYPE
// for OpenBLAS, BLIS_ARCH_TYPE (a numeric arch id) forces one; we pick the id of
// DEFT_BENCH_BLIS_ARCH (default "skx", the AVX-512 kernels) unless BLIS_ARCH_TYPE
// is already set.
Blas& blis() {
  static Blas lib = [] {
    Blas l;
    void* h = open_lib("libblis.so.4", l);
    if (!h) return l;
    l.sgemm = sym<cblas_sgemm_fn>(h, "cblas_sgemm");
    l.set_threads = sym<void (*)(int)>(h, "bli_thread_set_num_threads");
    auto arch_string = sym<const char* (*)(int)>(h, "bli_arch_string");
    auto arch_query = sym<int (*)()>(h, "bli_arch_query_id");
    auto init = sym<void (*)()>(h, "bli_init");
    if (!l.sgemm || !l.set_threads) {
      l.error = "libblis.so.4 lacks cblas_sgemm or bli_thread_set_num_threads";
      return l;
    }
    if (arch_string && !std::getenv("BLIS_ARCH_TYPE")) {
      const char* want = std::getenv("DEFT_BENCH_BLIS_ARCH");
      if (!want) want = "skx";
      for (int id = 0; id < 64; ++id) {
        const char* name = arch_string(id);
        if (!name) break;
        if (std::strcmp(name, want) == 0) {
          setenv("BLIS_ARCH_TYPE", std::to_string(id).c_str(), 1);
          break;
        }
        if (std::strcmp(name, "generic") == 0) break;  // the last entry
      }
    }
    if (init) init();
    l.label = std::string("arch=") + (arch_query && arch_string ? arch_string(arch_query()) : "?");
    l.ok = true;
    return l;
  }();
  return lib;
}

// ---- matmul benchmarks -------------------------------------------------------------------

void BM_matmul_deft(benchmark::State& state, GemmShape s, int threads) {
  GemmInputs& in = inputs(s);
  set_threads(threads);
  {
    Tensor c = deft::kernel::matmul(in.a, in.b);
    if (!check_result(state, s, c.data<float>())) return;
  }
  wait_for_idle();
  for (auto _ : state) {
    Tensor c = deft::kernel::matmul(in.a, in.b);  // allocates its output, as users call it
    benchmark::DoNotOptimize(c.data<float>());
  }
  set_gemm_counters(state, s, threads);
}

void BM_matmul_dnnl_sgemm(benchmark::State& state, GemmShape s, int threads) {
  GemmInputs& in = inputs(s);
  set_threads(threads);
  AlignedFloats c(s.M * s.N);
  const float* a = in.a.data<float>();
  const float* b = in.b.data<float>();
  auto call = [&] {
    return dnnl_sgemm('N', 'N', s.M, s.N, s.K, 1.0f, a, s.K, b, s.N, 0.0f, c.data(), s.N);
  };
  if (call() != dnnl_success) {
    state.SkipWithError("dnnl_sgemm failed");
    return;
  }
  if (!check_result(state, s, c.data())) return;
  wait_for_idle();
  for (auto _ : state) {
    call();
    benchmark::ClobberMemory();
  }
  set_gemm_counters(state, s, threads);
}

void BM_matmul_dnnl_primitive(benchmark::State& state, GemmShape s, int threads) {
  GemmInputs& in = inputs(s);
  set_threads(threads);
  using dnnl::memory;
  AlignedFloats c(s.M * s.N);
  try {
    dnnl::engine eng(dnnl::engine::kind::cpu, 0);
    dnnl::stream strm(eng);
    const memory::desc a_md({s.M, s.K}, memory::data_type::f32, memory::format_tag::ab);
    const memory::desc b_md({s.K, s.N}, memory::data_type::f32, memory::format_tag::ab);
    const memory::desc c_md({s.M, s.N}, memory::data_type::f32, memory::format_tag::ab);
    const dnnl::matmul::desc desc(a_md, b_md, c_md);
    const dnnl::matmul::primitive_desc pd(desc, eng);
    const dnnl::matmul prim(pd);
    memory a_mem(a_md, eng, in.a.data<float>());
    memory b_mem(b_md, eng, in.b.data<float>());
    memory c_mem(c_md, eng, c.data());
    const std::unordered_map<int, memory> args = {
        {DNNL_ARG_SRC, a_mem}, {DNNL_ARG_WEIGHTS, b_mem}, {DNNL_ARG_DST, c_mem}};
    prim.execute(strm, args);
    strm.wait();
    if (!check_result(state, s, c.data())) return;
    state.SetLabel(std::string("impl=") + pd.impl_info_str());
    wait_for_idle();
    for (auto _ : state) {
      prim.execute(strm, args);
      strm.wait();
    }
  } catch (const dnnl::error& e) {
    state.SkipWithError((std::string("oneDNN: ") + e.what()).c_str());
    return;
  }
  set_gemm_counters(state, s, threads);
}

void BM_matmul_cblas(benchmark::State& state, GemmShape s, int threads, Blas& (*get)()) {
  GemmInputs& in = inputs(s);
  set_threads(threads);
  Blas& lib = get();
  if (!lib.ok) {
    state.SkipWithError(lib.error.c_str());
    return;
  }
  lib.set_threads(threads);
  AlignedFloats c(s.M * s.N);
  const float* a = in.a.data<float>();
  const float* b = in.b.data<float>();
  const int M = static_cast<int>(s.M), N = static_cast<int>(s.N), K = static_cast<int>(s.K);
  auto call = [&] { lib.sgemm(kCblasRowMajor, kCblasNoTrans, kCblasNoTrans, M, N, K, 1.0f, a, K, b, N, 0.0f, c.data(), N); };
  call();
  if (!check_result(state, s, c.data())) return;
  state.SetLabel(lib.label);
  wait_for_idle();
  for (auto _ : state) {
    call();
    benchmark::ClobberMemory();
  }
  set_gemm_counters(state, s, threads);
}

// ---- elementwise benchmarks ---------------------------------------------------------------

void set_bandwidth(benchmark::State& state, double bytes_per_iter) {
  state.counters["bandwidth"] =
      benchmark::Counter(bytes_per_iter * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

Tensor random_tensor(int64_t n, uint64_t seed) {
  deft::Generator gen(seed);
  return Tensor::uniform({n}, -1.f, 1.f, gen);
}

void BM_deft_add(benchmark::State& state, int64_t n, int threads) {
  set_threads(threads);
  const Tensor a = random_tensor(n, 1), b = random_tensor(n, 2);
  // Warm-up call: the allocator cache then holds a faulted-in output block, as in any
  // steady-state loop. (A fresh 64 MiB block page-faults on first touch: ~30x slower.)
  deft::kernel::binary(deft::kernel::Binary::Add, a, b);
  wait_for_idle();
  for (auto _ : state) {
    Tensor c = deft::kernel::binary(deft::kernel::Binary::Add, a, b);
    benchmark::DoNotOptimize(c.data<float>());
  }
  set_bandwidth(state, 12.0 * static_cast<double>(n));
}

void BM_deft_relu(benchmark::State& state, int64_t n, int threads) {
  set_threads(threads);
  const Tensor x = random_tensor(n, 1);
  deft::kernel::unary(deft::kernel::Unary::Relu, x);  // warm-up, see BM_deft_add
  wait_for_idle();
  for (auto _ : state) {
    Tensor y = deft::kernel::unary(deft::kernel::Unary::Relu, x);
    benchmark::DoNotOptimize(y.data<float>());
  }
  set_bandwidth(state, 8.0 * static_cast<double>(n));
}

void BM_loop_copy(benchmark::State& state, int64_t n, int threads) {
  set_threads(threads);
  const Tensor x = random_tensor(n, 1);
  AlignedFloats out(n);
  const float* __restrict p = x.data<float>();
  float* __restrict o = out.data();
  wait_for_idle();
  for (auto _ : state) {
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t i = 0; i < n; ++i) o[i] = p[i];
    benchmark::ClobberMemory();
  }
  set_bandwidth(state, 8.0 * static_cast<double>(n));
}

void BM_loop_add(benchmark::State& state, int64_t n, int threads) {
  set_threads(threads);
  const Tensor a = random_tensor(n, 1), b = random_tensor(n, 2);
  AlignedFloats out(n);
  const float* __restrict pa = a.data<float>();
  const float* __restrict pb = b.data<float>();
  float* __restrict o = out.data();
  wait_for_idle();
  for (auto _ : state) {
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t i = 0; i < n; ++i) o[i] = pa[i] + pb[i];
    benchmark::ClobberMemory();
  }
  set_bandwidth(state, 12.0 * static_cast<double>(n));
}

// ---- registration and summary ----------------------------------------------------------

std::string bench_name(const std::string& group, const std::string& impl, const std::string& size, int threads) {
  return group + "/" + impl + "/" + size + "/threads:" + std::to_string(threads);
}

std::vector<std::string> g_registered;  // names registered for the current pass

template <class Fn, class... Args>
void add(const std::string& group, const std::string& impl, const std::string& size, int threads, Fn fn,
         Args... args) {
  g_registered.push_back(bench_name(group, impl, size, threads));
  benchmark::RegisterBenchmark(g_registered.back().c_str(), fn, args...)
      ->UseRealTime()  // the work runs on OpenMP/BLAS threads: CPU time of this thread means little
      ->Unit(benchmark::kMicrosecond);
}

std::string size_str(int64_t n) { return std::to_string(n >> 20) + "M"; }

// Everything but OpenBLAS.
void register_main() {
  const std::vector<std::pair<std::string, void (*)(benchmark::State&, GemmShape, int)>> gemms = {
      {"deft", BM_matmul_deft}, {"dnnl_sgemm", BM_matmul_dnnl_sgemm}, {"dnnl_primitive", BM_matmul_dnnl_primitive}};
  for (const auto& s : kShapes)
    for (int t : kThreads) {
      for (const auto& [impl, fn] : gemms) add("matmul", impl, s.str(), t, fn, s, t);
      add("matmul", "blis", s.str(), t, BM_matmul_cblas, s, t, &blis);
    }
  for (int64_t n : kElementwiseSizes)
    for (int t : kThreads) {
      add("elementwise", "deft_add", size_str(n), t, BM_deft_add, n, t);
      add("elementwise", "loop_add", size_str(n), t, BM_loop_add, n, t);
      add("elementwise", "deft_relu", size_str(n), t, BM_deft_relu, n, t);
      add("elementwise", "loop_copy", size_str(n), t, BM_loop_copy, n, t);
    }
}

// Registered and run after everything else (a second pass, so that
// --benchmark_enable_random_interleaving cannot mix them in): OpenBLAS's pthread
// pool keeps spinning after each call and competes with the OpenMP pool.
void register_openblas() {
  for (const auto& s : kShapes)
    for (int t : kThreads) add("matmul", "openblas", s.str(), t, BM_matmul_cblas, s, t, &openblas);
}

// Whether --benchmark_filter selects any of the registered names (approximately as
// the library does: a regex search, "-regex" negates, "all" matches all), so that a
// pass with nothing to run is skipped instead of printing "Failed to match".
bool filter_selects_any(const std::vector<std::string>& names) {
  std::string f = benchmark::GetBenchmarkFilter();
  if (f.empty() || f == "all" || f == ".") return true;
  const bool negate = f[0] == '-';
  if (negate) f = f.substr(1);
  try {
    const std::regex re(f, std::regex::extended);
    for (const auto& n : names)
      if (std::regex_search(n, re) != negate) return true;
    return false;
  } catch (const std::regex_error&) {
    return true;  // let the library report it
  }
}

void run_pass(benchmark::BenchmarkReporter& reporter) {
  if (filter_selects_any(g_registered)) benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::ClearRegisteredBenchmarks();
  g_registered.clear();
}

// Console output, plus the counters of every run kept for the summary.
//
// With --benchmark_repetitions=N the console shows only the aggregates (mean,
// median, stddev, cv), and the summary takes the BEST of the N repetitions: on a
// shared machine other work only ever slows a repetition down, so the best one is
// the closest to what the code can do (use --benchmark_enable_random_interleaving
// so that the repetitions of every benchmark are spread over the whole run).
// If the iteration rows never arrive (--benchmark_display_aggregates_only), the
// summary falls back to the median.
class CollectingReporter : public benchmark::ConsoleReporter {
 public:
  struct Result {
    double value = 0;          // GFLOP/s (matmul) or GB/s (elementwise)
    double cpu_over_real = 1;  // of the benchmark thread in that run; well below 1: it was descheduled
    int reps = 0;              // repetitions seen (0: value is the median aggregate)
    bool error = false;
    std::string message;
  };
  using ConsoleReporter::ConsoleReporter;
  std::map<std::string, Result> results;  // by registered name
  int max_reps = 0;

  // --benchmark_out is handled here rather than by the library, which would reopen
  // (truncate) the file in the second pass.
  void set_file_reporter(benchmark::BenchmarkReporter* file) { file_ = file; }

  bool ReportContext(const Context& context) override {  // print the header once, not once per pass
    if (context_done_) return true;
    context_done_ = true;
    if (file_) file_->ReportContext(context);
    return ConsoleReporter::ReportContext(context);
  }

  // The library calls Finalize() after each pass; the file is finished once, here.
  void finish() {
    if (file_) file_->Finalize();
  }

  void ReportRuns(const std::vector<Run>& runs) override {
    std::vector<Run> shown;
    for (const Run& r : runs) {
      const bool aggregate = r.run_type == Run::RT_Aggregate;
      if (aggregate || r.repetitions <= 1) shown.push_back(r);
      if (aggregate && r.aggregate_name != "median") continue;
      const std::string& name = r.run_name.function_name;
      Result& res = results[name];
      if (aggregate && res.reps > 0) continue;  // the best repetition is already there
      if (r.error_occurred) {
        res.error = true;
        res.message = r.error_message;
        continue;
      }
      double value = 0;
      if (auto it = r.counters.find("GFLOPS"); it != r.counters.end()) value = it->second.value * 1e-9;
      if (auto it = r.counters.find("bandwidth"); it != r.counters.end()) value = it->second.value * 1e-9;
      if (!aggregate) {
        ++res.reps;
        max_reps = std::max(max_reps, res.reps);
        if (value <= res.value) continue;
      }
      res.value = value;
      res.cpu_over_real = r.real_accumulated_time > 0 ? r.cpu_accumulated_time / r.real_accumulated_time : 1;
    }
    if (!shown.empty()) ConsoleReporter::ReportRuns(shown);
    if (file_) file_->ReportRuns(runs);
  }

 private:
  bool context_done_ = false;
  benchmark::BenchmarkReporter* file_ = nullptr;
};

constexpr double kPreemptedBelow = 0.8;

void print_summary(const CollectingReporter& rep) {
  auto find = [&](const std::string& group, const std::string& impl, const std::string& shape, int t)
      -> const CollectingReporter::Result* {
    const auto it = rep.results.find(bench_name(group, impl, shape, t));
    return it == rep.results.end() || it->second.error ? nullptr : &it->second;
  };
  std::printf("\n==== Summary (single-core FP32 FMA peak %.1f GFLOP/s, measured at startup) ====\n",
              g_peak.flops * 1e-9);
  std::printf("OpenBLAS ran last: its own pthread pool competes with the OpenMP pool used by everything else.\n\n");
  const std::vector<std::string> libs = {"dnnl_sgemm", "dnnl_primitive", "blis", "openblas"};
  const std::string basis = rep.max_reps > 1 ? "best of " + std::to_string(rep.max_reps) + " repetitions"
                            : rep.results.empty() || rep.results.begin()->second.reps == 1 ? "single run"
                                                                                        : "median of the repetitions";
  std::printf("Matmul GFLOP/s (%% of threads x single-core peak); %s\n", basis.c_str());
  std::printf("%-16s %3s | %-15s | %-15s %-15s %-15s %-15s | %s\n", "M x K x N", "thr", "deft", "dnnl_sgemm",
              "dnnl_primitive", "blis", "openblas", "deft vs best library");
  auto cell = [&](const CollectingReporter::Result* r, int t) {
    char buf[64];
    if (!r) return std::string("-");
    std::snprintf(buf, sizeof buf, "%.1f (%.0f%%)%s", r->value, 100.0 * r->value * 1e9 / (t * g_peak.flops),
                  r->cpu_over_real < kPreemptedBelow ? "!" : "");
    return std::string(buf);
  };
  for (const auto& s : kShapes)
    for (int t : kThreads) {
      const auto* d = find("matmul", "deft", s.str(), t);
      std::string best_name;
      double best = 0;
      std::string cells;
      for (const auto& lib : libs) {
        const auto* r = find("matmul", lib, s.str(), t);
        char buf[80];
        std::snprintf(buf, sizeof buf, "%-15s ", cell(r, t).c_str());
        cells += buf;
        if (r && r->value > best) {
          best = r->value;
          best_name = lib;
        }
      }
      char verdict[200] = "-";
      if (d && best > 0) {
        const double pct = 100.0 * d->value / best;
        std::snprintf(verdict, sizeof verdict, "deft vs best library: %.1f%% (best: %s)%s", pct, best_name.c_str(),
                      pct >= 95.0 ? "  within 5%" : "  ** NOT within 5% **");
      }
      std::printf("%-16s %3d | %-15s | %s| %s\n", s.str().c_str(), t, cell(d, t).c_str(), cells.c_str(), verdict);
    }
  std::printf("(!: the benchmark thread got less than %.0f%% CPU time over the wall time: it was descheduled,\n"
              "    the machine was busy, the figure is unreliable. 2-thread runs need both cores free.)\n",
              100 * kPreemptedBelow);
  std::printf("\nElementwise GB/s (bytes read + written); %s\n", basis.c_str());
  std::printf("%-6s %3s | %-10s %-10s | %-10s %-10s\n", "n", "thr", "deft_add", "loop_add", "deft_relu", "loop_copy");
  for (int64_t n : kElementwiseSizes)
    for (int t : kThreads) {
      const std::string ns = size_str(n);
      auto bw = [&](const char* impl) {
        const auto* r = find("elementwise", impl, ns, t);
        char buf[32];
        if (!r) return std::string("-");
        std::snprintf(buf, sizeof buf, "%.1f%s", r->value, r->cpu_over_real < kPreemptedBelow ? "!" : "");
        return std::string(buf);
      };
      std::printf("%-6s %3d | %-10s %-10s | %-10s %-10s\n", ns.c_str(), t, bw("deft_add").c_str(), bw("loop_add").c_str(),
                  bw("deft_relu").c_str(), bw("loop_copy").c_str());
    }
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  // Our reporter replaces the default one, so honour --benchmark_color ourselves, and
  // take --benchmark_out[_format] away from the library (see set_file_reporter).
  bool color = isatty(STDOUT_FILENO) != 0;
  std::string out_path, out_format = "json";
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind("--benchmark_color=", 0) == 0) {
      const std::string v = arg.substr(18);
      if (v == "false" || v == "no" || v == "0") color = false;
      if (v == "true" || v == "yes" || v == "1" || v == "always") color = true;
    }
    if (arg.rfind("--benchmark_out=", 0) == 0) {
      out_path = arg.substr(16);
      continue;
    }
    if (arg.rfind("--benchmark_out_format=", 0) == 0) {
      out_format = arg.substr(23);
      continue;
    }
    argv[kept++] = argv[i];
  }
  argc = kept;
  argv[argc] = nullptr;
  if (!out_path.empty() && out_format != "json" && out_format != "console") {
    std::fprintf(stderr, "--benchmark_out_format=%s: only json and console are supported here\n", out_format.c_str());
    return 1;
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;

  g_peak = measure_fma_peak(0.2, 1);
  std::printf("Single-core FP32 FMA peak: %.1f GFLOP/s (%s; 1 thread, 0.2 s, fastest 2 ms slice)\n",
              g_peak.flops * 1e-9, g_peak.isa);
  // The same loop on 2 threads: close to 2x when both cores are free. On a shared
  // machine with the other core busy it collapses, and so will every 2-thread figure.
  const Peak two = measure_fma_peak(0.1, 2);
  std::printf("Same loop on 2 threads: %.1f GFLOP/s = %.2fx one core%s\n", two.flops * 1e-9, two.flops / g_peak.flops,
              two.flops < 1.8 * g_peak.flops ? "  ** WARNING: the cores are not both free; 2-thread figures are unreliable **"
                                              : "");
  const dnnl_version_t* v = dnnl_version();
  std::printf("oneDNN %d.%d.%d (cpu runtime %s), OpenMP max threads %d\n", v->major, v->minor, v->patch,
              v->cpu_runtime == DNNL_RUNTIME_OMP ? "OpenMP" : "other", omp_get_max_threads());
  std::printf("Note: the OpenBLAS benchmarks are registered and run LAST (own pthread pool).\n");
  if (wait_idle_ms() > 0)
    std::printf("DEFT_BENCH_WAIT_IDLE=%d: each run first waits for %d ms of idle CPUs (<= 2 s per run, 120 s total).\n",
                wait_idle_ms(), wait_idle_ms());
  std::printf("\n");
  std::fflush(stdout);

  CollectingReporter reporter(color ? benchmark::ConsoleReporter::OO_ColorTabular
                                    : benchmark::ConsoleReporter::OO_Tabular);
  std::ofstream out_file;
  std::unique_ptr<benchmark::BenchmarkReporter> file_reporter;
  if (!out_path.empty()) {
    if (out_format == "json") {
      file_reporter = std::make_unique<benchmark::JSONReporter>();
    } else {  // "console", checked above
      file_reporter = std::make_unique<benchmark::ConsoleReporter>(benchmark::ConsoleReporter::OO_Tabular);
    }
    out_file.open(out_path);
    if (!out_file) {
      std::fprintf(stderr, "cannot open %s for writing\n", out_path.c_str());
      return 1;
    }
    file_reporter->SetOutputStream(&out_file);
    file_reporter->SetErrorStream(&out_file);
    reporter.set_file_reporter(file_reporter.get());
  }
  register_main();
  run_pass(reporter);
  register_openblas();  // last, see register_openblas()
  run_pass(reporter);
  reporter.finish();
  print_summary(reporter);
  if (wait_idle_ms() > 0) std::printf("Waited %.1f s in total for an idle machine.\n", g_waited_s);
  benchmark::Shutdown();
  return 0;
}
