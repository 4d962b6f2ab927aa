// The inference runtime (deploy::Predictor) against train::Model::predict_proba on the
// same saved model, same input, same machine, same run: the MLP and the CNN of the
// Fashion-MNIST benchmarks (mlp: Flatten-Dense 128 relu-Dense 10; simple_cnn: two
// conv/pool blocks, 421,642 parameters), at batch 1 and 256, on 1 and 2 threads.
// Prints examples/s for both and the ratio (Predictor / Model; > 1: the runtime is faster).
//
//   build/bin/infer_bench [seconds per measurement, default 0.5]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "deft/deploy/infer.h"
#include "deft/nn/loss.h"
#include "deft/nn/zoo.h"
#include "deft/optim/optimizer.h"
#include "deft/tensor/kernels.h"
#include "deft/tensor/parallel.h"
#include "deft/tensor/random.h"
#include "deft/train/model.h"

namespace {

using namespace deft;

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Examples per second of f(), which handles `batch` examples, over about `seconds`.
template <class F>
double rate(double seconds, int64_t batch, F f) {
  f();  // warm-up: primitive creation, allocator
  int64_t calls = 0;
  const double t0 = now_s();
  double t = t0;
  while (t - t0 < seconds) {
    f();
    ++calls;
    t = now_s();
  }
  return static_cast<double>(calls * batch) / (t - t0);
}

}  // namespace

int main(int argc, char** argv) {
  const double seconds = argc > 1 ? std::atof(argv[1]) : 0.5;
  const std::string only = argc > 2 ? argv[2] : "";  // one family
  const auto dir = std::filesystem::temp_directory_path() / "deft-infer-bench";
  std::filesystem::create_directories(dir);
  std::printf("%-11s %6s %7s %14s %14s %8s\n", "model", "batch", "threads", "Model ex/s", "Predictor ex/s",
              "ratio");
  for (const std::string family : {"mlp", "simple_cnn"}) {
    if (!only.empty() && family != only) continue;
    train::Model model(nn::make_model(family, {1, 28, 28}, 10));
    model.compile(optim::make_optimizer("adam", {}), nn::make_loss("sparse_categorical_crossentropy", {}));
    // Fit one small batch so the model has its image preprocessing, as a trained one does.
    Generator gen(0);
    const Tensor x = Tensor::uniform({256, 1, 28, 28}, 0.f, 256.f, gen).to(DType::UInt8);
    Tensor y = Tensor::zeros({256}, DType::Int64);
    for (int64_t i = 0; i < 256; ++i) y.data<int64_t>()[i] = i % 10;
    model.fit(x, y, {.epochs = 1, .batch_size = 256, .verbose = 0});
    const std::string path = (dir / (family + ".deft")).string();
    model.save(path);
    for (const int64_t batch : {int64_t{1}, int64_t{256}}) {
      const Tensor xb = kernel::slice(x, 0, 0, batch).contiguous_copy();
      for (const int threads : {1, 2}) {
        set_num_threads(threads);
        auto p = deploy::Predictor::load(path, {.threads = threads, .max_batch = 256});
        // Interleaved rounds; the best of three for each (noise on a shared machine is one-sided).
        double m_best = 0, p_best = 0;
        for (int round = 0; round < 3; ++round) {
          m_best = std::max(m_best, rate(seconds, batch, [&] { (void)model.predict_proba(xb, 256); }));
          p_best = std::max(p_best, rate(seconds, batch, [&] { (void)p->predict(xb); }));
        }
        std::printf("%-11s %6lld %7d %14.0f %14.0f %8.2f\n", family.c_str(), static_cast<long long>(batch),
                    threads, m_best, p_best, p_best / m_best);
        std::fflush(stdout);
      }
    }
  }
  if (!std::getenv("DEFT_INFER_BENCH_KEEP"))
    std::filesystem::remove_all(dir);  // keep: for profiling the files
  return 0;
}
