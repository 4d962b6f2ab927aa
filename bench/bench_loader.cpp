// Loader throughput against the training step rate of the seed MLP
// (784-128-10, ReLU, batch 64) on Fashion-MNIST, in the same process.
//
//   build/bin/bench_loader [--threads N] [--seconds S]
//
// Prints one JSON line: samples/s of the loader (0, 1 and 2 workers, with and
// without crop+flip augmentation) and of MLP training steps fed from memory.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "deft/autograd/ops.h"
#include "deft/data/augment.h"
#include "deft/data/loader.h"
#include "deft/data/registry.h"
#include "deft/tensor/kernels.h"
#include "deft/tensor/parallel.h"

using namespace deft;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Full epochs through the loader; returns samples/s.
double loader_rate(const data::Dataset& train, int workers, const char* augment) {
  data::LoaderOptions opt;
  opt.batch_size = 64;
  opt.seed = 1;
  opt.workers = workers;
  opt.transform = data::make_image_transform(augment ? data::parse_augmentation(augment) : nullptr);
  data::DataLoader loader(train, opt);
  int64_t samples = 0;
  const auto t0 = Clock::now();
  loader.start_epoch(0);
  while (auto b = loader.next()) samples += b->x.shape()[0];
  return static_cast<double>(samples) / seconds_since(t0);
}

double mlp_step_rate(const data::Dataset& train, double budget_s) {
  Generator gen(0);
  Tensor w1 = Tensor::normal({784, 128}, 0.f, 0.05f, gen).set_requires_grad();
  Tensor b1 = Tensor::zeros({128}).set_requires_grad();
  Tensor w2 = Tensor::normal({128, 10}, 0.f, 0.1f, gen).set_requires_grad();
  Tensor b2 = Tensor::zeros({10}).set_requires_grad();
  const Tensor x_all = kernel::affine(kernel::convert(reshape(train.features, {-1, 784}), DType::Float32), 1.f / 255, 0);
  const int64_t n = x_all.shape()[0];
  int64_t samples = 0, step = 0;
  const auto t0 = Clock::now();
  while (seconds_since(t0) < budget_s) {
    const int64_t begin = (step * 64) % (n - 64);
    const Tensor x = slice(x_all, 0, begin, begin + 64);
    const Tensor y = reshape(slice(train.labels, 0, begin, begin + 64), {-1, 1});
    Tensor loss = -mean(gather(log_softmax(matmul(relu(matmul(x, w1) + b1), w2) + b2, 1), 1, y));
    loss.backward();
    NoGradGuard ng;
    for (Tensor* p : {&w1, &b1, &w2, &b2}) {
      kernel::add_inplace(*p, p->grad(), -0.05f);
      p->zero_grad();
    }
    samples += 64;
    ++step;
  }
  return static_cast<double>(samples) / seconds_since(t0);
}

}  // namespace

int main(int argc, char** argv) {
  double budget = 3.0;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--threads")) set_num_threads(std::atoi(argv[i + 1]));
    else if (!std::strcmp(argv[i], "--seconds")) budget = std::atof(argv[i + 1]);
  }
  const data::DatasetSplits fm = data::load_dataset("fashion-mnist");
  const double mlp = mlp_step_rate(fm.train, budget);
  std::printf("{\"threads\": %d, \"mlp_train_samples_per_s\": %.0f", num_threads(), mlp);
  for (const char* aug : {static_cast<const char*>(nullptr), "crop:2,flip"})
    for (int workers : {0, 1, 2}) {
      const double r = loader_rate(fm.train, workers, aug);
      std::printf(", \"loader_%s_w%d_samples_per_s\": %.0f, \"loader_%s_w%d_vs_mlp\": %.2f", aug ? "augment" : "plain",
                  workers, r, aug ? "augment" : "plain", workers, r / mlp);
    }
  std::printf("}\n");
  return 0;
}
