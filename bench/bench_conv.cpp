// Convolution and pooling ops at the shapes of the benchmark CNN (bench/README.md):
// Conv 32 3x3 pad 1 on [N,1,28,28], Conv 64 3x3 pad 1 on [N,32,14,14], 2x2 max pooling,
// forward and forward+backward, through deft's autograd ops (what a training step
// calls). Reported as GFLOP/s (2 * MACs of the forward; x3 with backward).
//
//   build/bin/bench_conv --benchmark_min_time=0.2
//   DEFT_CONV_LAYOUT=plain build/bin/bench_conv     # oneDNN on NCHW, no reorders
// The oneDNN implementation chosen for each convolution is printed first.
// dnnl_maxpool / dnnl_batchnorm run oneDNN's own primitives for the same work, the
// comparison behind deft's choice of its own pooling and batch-norm loops.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdio>
#include <dnnl.hpp>

#include "deft/autograd/ops.h"
#include "deft/autograd/ops_conv.h"
#include "deft/autograd/ops_nn.h"
#include "deft/tensor/conv.h"
#include "deft/tensor/parallel.h"

namespace {

using namespace deft;

struct ConvShape {
  int64_t C, H, O;
};
const ConvShape kShapes[] = {{1, 28, 32}, {32, 14, 64}};
const Conv2dParams kPad1{.padding = {1, 1, 1, 1}};

void conv(benchmark::State& state) {
  const ConvShape s = kShapes[state.range(0)];
  const int64_t N = state.range(1);
  const bool backward = state.range(2) != 0;
  set_num_threads(static_cast<int>(state.range(3)));
  Generator gen(0);
  Tensor x = Tensor::randn({N, s.C, s.H, s.H}, gen).set_requires_grad(backward && s.C > 1);
  Tensor w = Tensor::randn({s.O, s.C, 3, 3}, gen).set_requires_grad(backward);
  Tensor b = Tensor::randn({s.O}, gen).set_requires_grad(backward);
  const Tensor g = Tensor::randn({N, s.O, s.H, s.H}, gen);
  const bool relu = state.range(4) != 0;
  for (auto _ : state) {
    Tensor y = relu ? conv2d_relu(x, w, b, kPad1) : conv2d(x, w, b, kPad1);
    if (backward) y.backward(g);
    benchmark::DoNotOptimize(y.data<float>());
  }
  const double macs = static_cast<double>(N) * s.O * s.C * 9 * s.H * s.H;
  const double passes = backward ? (s.C > 1 ? 3.0 : 2.0) : 1.0;
  state.counters["GFLOP/s"] =
      benchmark::Counter(2 * macs * passes * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate,
                         benchmark::Counter::kIs1000);
}
BENCHMARK(conv)
    ->ArgNames({"shape", "batch", "backward", "threads", "relu"})
    ->ArgsProduct({{0, 1}, {128}, {0, 1}, {1, 2}, {0, 1}})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

// The activations of the benchmark CNN's pooling and normalisation layers, 1 and 2 threads.
void activation_shapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"C", "H", "threads"})->Args({32, 28, 1})->Args({32, 28, 2})->Args({64, 14, 2});
  b->UseRealTime()->Unit(benchmark::kMillisecond);
}

// Fills a oneDNN buffer of `shape` floats with normal values (seed 0).
void fill_randn(const dnnl::memory& m, const Shape& shape) {
  Generator gen(0);
  const Tensor r = Tensor::randn(shape, gen);
  std::copy(r.data<float>(), r.data<float>() + r.numel(), static_cast<float*>(m.get_data_handle()));
}

void maxpool(benchmark::State& state) {
  const int64_t C = state.range(0), H = state.range(1);
  set_num_threads(static_cast<int>(state.range(2)));
  Generator gen(0);
  Tensor x = Tensor::randn({128, C, H, H}, gen).set_requires_grad(true);
  const Tensor g = Tensor::randn({128, C, H / 2, H / 2}, gen);
  for (auto _ : state) {
    Tensor y = max_pool2d(x);
    y.backward(g);
    x.zero_grad();
    benchmark::DoNotOptimize(y.data<float>());
  }
  state.counters["GB/s"] = benchmark::Counter(
      4.0 * 128 * C * H * H * 2.5 * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate,
      benchmark::Counter::kIs1024);
}
BENCHMARK(maxpool)->Apply(activation_shapes);

void batchnorm(benchmark::State& state) {
  const int64_t C = state.range(0), H = state.range(1);
  set_num_threads(static_cast<int>(state.range(2)));
  Generator gen(0);
  Tensor x = Tensor::randn({128, C, H, H}, gen).set_requires_grad(true);
  Tensor w = Tensor::ones({C}).set_requires_grad(true), b = Tensor::zeros({C}).set_requires_grad(true);
  Tensor rm = Tensor::zeros({C}), rv = Tensor::ones({C});
  const Tensor g = Tensor::randn({128, C, H, H}, gen);
  for (auto _ : state) {
    Tensor y = batch_norm(x, w, b, rm, rv, true);
    y.backward(g);
    x.zero_grad();
    benchmark::DoNotOptimize(y.data<float>());
  }
  state.counters["GB/s"] = benchmark::Counter(4.0 * 128 * C * H * H * 6 * static_cast<double>(state.iterations()),
                                              benchmark::Counter::kIsRate, benchmark::Counter::kIs1024);
}
BENCHMARK(batchnorm)->Apply(activation_shapes);

// The same pooling and batch norm through oneDNN's own primitives on NCHW (created
// once, executed per iteration, outputs preallocated), to decide which to use.
void dnnl_maxpool(benchmark::State& state) {
  const int64_t C = state.range(0), H = state.range(1);
  set_num_threads(static_cast<int>(state.range(2)));
  detail::sync_thread_count();
  using namespace dnnl;
  engine eng(engine::kind::cpu, 0);
  stream st(eng);
  const memory::desc src({128, C, H, H}, memory::data_type::f32, memory::format_tag::nchw);
  const memory::desc dst({128, C, H / 2, H / 2}, memory::data_type::f32, memory::format_tag::nchw);
  const pooling_forward::primitive_desc fpd(
      pooling_forward::desc(prop_kind::forward_training, algorithm::pooling_max, src, dst, {2, 2}, {2, 2}, {0, 0},
                            {0, 0}),
      eng);
  const pooling_backward::primitive_desc bpd(
      pooling_backward::desc(algorithm::pooling_max, src, dst, {2, 2}, {2, 2}, {0, 0}, {0, 0}), eng, fpd);
  memory x(src, eng), y(dst, eng), ws(fpd.workspace_desc(), eng), gy(dst, eng), gx(src, eng);
  fill_randn(x, {128, C, H, H});
  pooling_forward f(fpd);
  pooling_backward b(bpd);
  for (auto _ : state) {
    f.execute(st, {{DNNL_ARG_SRC, x}, {DNNL_ARG_DST, y}, {DNNL_ARG_WORKSPACE, ws}});
    b.execute(st, {{DNNL_ARG_DIFF_DST, gy}, {DNNL_ARG_DIFF_SRC, gx}, {DNNL_ARG_WORKSPACE, ws}});
    st.wait();
  }
}
BENCHMARK(dnnl_maxpool)->Apply(activation_shapes);

void dnnl_batchnorm(benchmark::State& state) {
  const int64_t C = state.range(0), H = state.range(1);
  set_num_threads(static_cast<int>(state.range(2)));
  detail::sync_thread_count();
  using namespace dnnl;
  engine eng(engine::kind::cpu, 0);
  stream st(eng);
  const memory::desc md({128, C, H, H}, memory::data_type::f32, memory::format_tag::nchw);
  const auto flags = normalization_flags::use_scale | normalization_flags::use_shift;
  const batch_normalization_forward::primitive_desc fpd(
      batch_normalization_forward::desc(prop_kind::forward_training, md, 1e-5f, flags), eng);
  const batch_normalization_backward::primitive_desc bpd(
      batch_normalization_backward::desc(prop_kind::backward, md, md, 1e-5f, flags), eng, fpd);
  memory x(md, eng), y(md, eng), gy(md, eng), gx(md, eng), mean(fpd.mean_desc(), eng), var(fpd.variance_desc(), eng);
  const memory::desc cd({C}, memory::data_type::f32, memory::format_tag::x);
  memory scale(cd, eng), shift(cd, eng), gscale(cd, eng), gshift(cd, eng);
  std::fill_n(static_cast<float*>(scale.get_data_handle()), C, 1.0f);
  std::fill_n(static_cast<float*>(shift.get_data_handle()), C, 0.0f);
  fill_randn(x, {128, C, H, H});
  fill_randn(gy, {128, C, H, H});
  batch_normalization_forward f(fpd);
  batch_normalization_backward b(bpd);
  for (auto _ : state) {
    f.execute(st, {{DNNL_ARG_SRC, x}, {DNNL_ARG_DST, y}, {DNNL_ARG_MEAN, mean}, {DNNL_ARG_VARIANCE, var},
                   {DNNL_ARG_SCALE, scale}, {DNNL_ARG_SHIFT, shift}});
    b.execute(st, {{DNNL_ARG_SRC, x}, {DNNL_ARG_DIFF_DST, gy}, {DNNL_ARG_MEAN, mean}, {DNNL_ARG_VARIANCE, var},
                   {DNNL_ARG_SCALE, scale}, {DNNL_ARG_SHIFT, shift}, {DNNL_ARG_DIFF_SRC, gx}, {DNNL_ARG_DIFF_SCALE, gscale},
                   {DNNL_ARG_DIFF_SHIFT, gshift}});
    st.wait();
  }
}
BENCHMARK(dnnl_batchnorm)->Apply(activation_shapes);

}  // namespace

int main(int argc, char** argv) {
  for (const ConvShape& s : kShapes)
    std::printf("conv [128,%ld,%ld,%ld] * [%ld,%ld,3,3]: %s\n", static_cast<long>(s.C), static_cast<long>(s.H),
                static_cast<long>(s.H), static_cast<long>(s.O), static_cast<long>(s.C),
                kernel::conv2d_implementation({128, s.C, s.H, s.H}, {s.O, s.C, 3, 3}, true, kPad1).c_str());
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
