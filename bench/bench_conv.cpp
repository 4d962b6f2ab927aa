// Convolution and pooling ops at the shapes of the benchmark CNN (bench/README.md):
// Conv 32 3x3 pad 1 on [N,1,28,28], Conv 64 3x3 pad 1 on [N,32,14,14], 2x2 max pooling,
// forward and forward+backward, through deft's autograd ops (what a training step
// calls). Reported as GFLOP/s (2 * MACs of the forward; x3 with backward).
//
//   build/bin/bench_conv --benchmark_min_time=0.2
//   DEFT_CONV_LAYOUT=plain build/bin/bench_conv     # oneDNN on NCHW, no reorders
// The oneDNN implementation chosen for each convolution is printed first.
#include <benchmark/benchmark.h>

#include <cstdio>

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
BENCHMARK(maxpool)->ArgNames({"C", "H", "threads"})->Args({32, 28, 1})->Args({32, 28, 2})->Args({64, 14, 2})
    ->UseRealTime()->Unit(benchmark::kMillisecond);

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
BENCHMARK(batchnorm)->ArgNames({"C", "H", "threads"})->Args({32, 28, 1})->Args({32, 28, 2})->Args({64, 14, 2})
    ->UseRealTime()->Unit(benchmark::kMillisecond);

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
