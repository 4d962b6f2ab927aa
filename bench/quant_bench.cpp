// Int8 (deploy/quant.h, oneDNN u8 x s8) against float32 (deft's tensor kernels: the
// GEMM behind kernel::matmul plus a bias+ReLU pass, and kernel::conv2d_forward with
// its fused ReLU) for the inference layers of the benchmark models at batch 256:
//   mlp        Dense 784->128 ReLU, Dense 128->10
//   simple_cnn Conv 32 3x3 same ReLU on [256,1,28,28], Conv 64 3x3 same ReLU on
//              [256,32,14,14] (after the 2x2 pool), Dense 3136->128 ReLU, Dense 128->10
// Both paths take float input and give float output (the int8 time includes
// quantising the input and dequantising the output). After the runs a table gives,
// per model and thread count, float time / int8 time (the speed-up), per layer and
// summed over the model's layers (pooling, flatten and softmax are the same in both):
// "all int8" quantises every layer, "int8 if pays" only those int8_pays_off() picks
// (simple_cnn's first conv stays float).
//
//   build/bin/quant_bench --benchmark_min_time=0.2 --benchmark_repetitions=5
// (the table takes each benchmark's fastest repetition)
#include <benchmark/benchmark.h>

#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "deft/deploy/quant.h"
#include "deft/tensor/conv.h"
#include "deft/tensor/kernels.h"
#include "deft/tensor/parallel.h"
#include "deft/tensor/random.h"

namespace {

using namespace deft;
using namespace deft::deploy;

constexpr int64_t kBatch = 256;

struct Layer {
  const char* model;
  const char* name;
  bool conv;
  Shape x, w;  // Dense: x [N, in], w [in, out]; Conv: x NCHW, w OIHW
  bool relu;
};

const Layer kLayers[] = {
    {"mlp", "fc1 784x128", false, {kBatch, 784}, {784, 128}, true},
    {"mlp", "fc2 128x10", false, {kBatch, 128}, {128, 10}, false},
    {"simple_cnn", "conv1 1->32", true, {kBatch, 1, 28, 28}, {32, 1, 3, 3}, true},
    {"simple_cnn", "conv2 32->64", true, {kBatch, 32, 14, 14}, {64, 32, 3, 3}, true},
    {"simple_cnn", "fc1 3136x128", false, {kBatch, 3136}, {3136, 128}, true},
    {"simple_cnn", "fc2 128x10", false, {kBatch, 128}, {128, 10}, false},
};

const Conv2dParams kSame{.padding = {1, 1, 1, 1}};

// Inputs like a trained net's: non-negative (pixels, post-ReLU), weights ~ He-normal.
Tensor input(const Layer& l, Generator& gen) { return Tensor::uniform(l.x, 0.0f, 1.0f, gen); }
Tensor weight(const Layer& l, Generator& gen) {
  const int64_t fan_in = l.conv ? l.w[1] * l.w[2] * l.w[3] : l.w[0];
  return Tensor::normal(l.w, 0.0f, std::sqrt(2.0f / static_cast<float>(fan_in)), gen);
}

void float32(benchmark::State& state) {
  const Layer& l = kLayers[state.range(0)];
  set_num_threads(static_cast<int>(state.range(1)));
  Generator gen(1);
  const Tensor x = input(l, gen), w = weight(l, gen),
               b = Tensor::uniform({l.conv ? l.w[0] : l.w[1]}, -0.1f, 0.1f, gen);
  for (auto _ : state) {
    Tensor y;
    if (l.conv) {
      y = kernel::conv2d_forward(x, w, b, kSame, false, l.relu);
    } else {
      y = kernel::matmul(x, w);
      float* __restrict py = y.data<float>();
      const float* pb = b.data<float>();
      const int64_t out = l.w[1], relu = l.relu;
      parallel_for(0, l.x[0], 16, [=](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r)
          for (int64_t c = 0; c < out; ++c) {
            const float v = py[r * out + c] + pb[c];
            py[r * out + c] = relu && v < 0.0f ? 0.0f : v;
          }
      });
    }
    benchmark::DoNotOptimize(y.data<float>());
  }
}

void int8(benchmark::State& state) {
  const Layer& l = kLayers[state.range(0)];
  set_num_threads(static_cast<int>(state.range(1)));
  Generator gen(1);
  const Tensor x = input(l, gen), w = weight(l, gen),
               b = Tensor::uniform({l.conv ? l.w[0] : l.w[1]}, -0.1f, 0.1f, gen);
  RangeObserver obs;
  obs.observe(x);
  Tensor y = Tensor::empty(l.conv ? Shape{kBatch, l.w[0], l.x[2], l.x[3]} : Shape{kBatch, l.w[1]});
  if (l.conv) {
    QuantizedConv2d op(quantize_weights(w, WeightLayout::ConvOIHW), b, obs.params(), kSame, l.relu);
    state.SetLabel(op.implementation(l.x));
    for (auto _ : state) {
      op.forward(x.data<float>(), l.x, y.data<float>());
      benchmark::DoNotOptimize(y.data<float>());
    }
  } else {
    QuantizedDense op(quantize_weights(w, WeightLayout::DenseInOut), b, obs.params(), l.relu);
    state.SetLabel(op.implementation(kBatch));
    for (auto _ : state) {
      op.forward(x.data<float>(), kBatch, y.data<float>());
      benchmark::DoNotOptimize(y.data<float>());
    }
  }
}

constexpr int kNumLayers = static_cast<int>(std::size(kLayers));

// Keeps each benchmark's fastest repetition (by name) for the table printed after the
// console output: on a shared machine the minimum is the least disturbed figure.
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& r : runs) {
      if (r.run_type != Run::RT_Iteration || r.error_occurred) continue;
      const std::string name = r.run_name.function_name;  // as registered, without the args
      const double t = r.GetAdjustedRealTime();
      auto it = times.find(name);
      if (it == times.end() || t < it->second) times[name] = t;
    }
    ConsoleReporter::ReportRuns(runs);
  }
  std::map<std::string, double> times;  // microseconds
};

std::string run_name(const char* impl, int layer, int threads) {
  return std::string(impl) + "/layer:" + std::to_string(layer) + "/threads:" + std::to_string(threads);
}

}  // namespace

int main(int argc, char** argv) {
  // Float and int8 of each layer side by side, so load on a shared machine hits both alike.
  for (int threads : {1, 2})
    for (int i = 0; i < kNumLayers; ++i)
      for (const auto& [impl, fn] : {std::pair{"float32", &float32}, std::pair{"int8", &int8}})
        benchmark::RegisterBenchmark(run_name(impl, i, threads).c_str(), fn)
            ->Args({i, threads})
            ->UseRealTime()
            ->Unit(benchmark::kMicrosecond);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  std::printf("\nfloat32 / int8 time (speed-up of int8), batch %ld, same run:\n", static_cast<long>(kBatch));
  std::printf("%-11s %-14s %8s %12s %12s %9s\n", "model", "layer", "threads", "float32 us", "int8 us",
              "speed-up");
  for (const char* model : {"mlp", "simple_cnn"})
    for (int threads : {1, 2}) {
      // tq: every layer int8; tmix: int8 only where int8_pays_off (what export does).
      double tf = 0, tq = 0, tmix = 0;
      bool complete = true;
      for (int i = 0; i < kNumLayers; ++i) {
        if (std::string(kLayers[i].model) != model) continue;
        const auto f = reporter.times.find(run_name("float32", i, threads)),
                   q = reporter.times.find(run_name("int8", i, threads));
        if (f == reporter.times.end() || q == reporter.times.end()) {
          complete = false;
          continue;
        }
        tf += f->second;
        tq += q->second;
        const Layer& l = kLayers[i];
        tmix += int8_pays_off(l.w, l.conv ? WeightLayout::ConvOIHW : WeightLayout::DenseInOut) ? q->second
                                                                                               : f->second;
        std::printf("%-11s %-14s %8d %12.1f %12.1f %8.2fx\n", model, l.name, threads, f->second, q->second,
                    f->second / q->second);
      }
      if (complete && tq > 0) {
        std::printf("%-11s %-14s %8d %12.1f %12.1f %8.2fx\n", model, "all int8", threads, tf, tq, tf / tq);
        std::printf("%-11s %-14s %8d %12.1f %12.1f %8.2fx\n", model, "int8 if pays", threads, tf, tmix,
                    tf / tmix);
      }
    }
  benchmark::Shutdown();
  return 0;
}
