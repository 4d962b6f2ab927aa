// Trains a two-layer MLP on two noisy spirals with the raw autodiff API
// (no nn layers): the smallest end-to-end use of the engine.
//
//   build/bin/spirals_mlp [--steps N] [--threads N]
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "deft/autograd/ops.h"
#include "deft/tensor/kernels.h"
#include "deft/tensor/parallel.h"
#include "deft/tensor/random.h"

using namespace deft;

int main(int argc, char** argv) {
  int steps = 3000;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--steps")) steps = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--threads")) set_num_threads(std::atoi(argv[i + 1]));
    else {
      std::fprintf(stderr, "deft: error: unknown flag %s (flags: --steps N, --threads N)\n", argv[i]);
      return 2;
    }
  }
  Generator gen(0);
  const int64_t per_class = 500;
  std::vector<float> xs;
  std::vector<int64_t> ys;
  const auto noise = Tensor::normal({2 * per_class, 2}, 0.0f, 0.05f, gen).to_vector<float>();
  for (int64_t cls = 0; cls < 2; ++cls)
    for (int64_t i = 0; i < per_class; ++i) {
      const float t = 0.25f + 3.0f * static_cast<float>(i) / per_class;
      const float a = t * 3.14159265f + static_cast<float>(cls) * 3.14159265f;
      const int64_t k = cls * per_class + i;
      xs.push_back(t * std::cos(a) + noise[2 * k]);
      xs.push_back(t * std::sin(a) + noise[2 * k + 1]);
      ys.push_back(cls);
    }
  const Tensor x = Tensor::from_vector(xs, {2 * per_class, 2});
  const Tensor y = Tensor::from_vector(ys, {2 * per_class, 1});

  Tensor w1 = Tensor::normal({2, 64}, 0.0f, 1.0f, gen).set_requires_grad();
  Tensor b1 = Tensor::zeros({64}).set_requires_grad();
  Tensor w2 = Tensor::normal({64, 2}, 0.0f, 0.125f, gen).set_requires_grad();
  Tensor b2 = Tensor::zeros({2}).set_requires_grad();
  auto forward = [&] { return matmul(tanh(matmul(x, w1) + b1), w2) + b2; };

  const auto t0 = std::chrono::steady_clock::now();
  for (int step = 1; step <= steps; ++step) {
    Tensor loss = -mean(gather(log_softmax(forward(), 1), 1, y));
    loss.backward();
    {
      NoGradGuard ng;
      for (Tensor* p : {&w1, &b1, &w2, &b2}) {
        kernel::add_inplace(*p, p->grad(), -0.3f);
        p->zero_grad();
      }
    }
    if (step % 500 == 0 || step == steps) {
      NoGradGuard ng;
      const auto pred = argmax(forward(), 1).to_vector<int64_t>();
      int correct = 0;
      for (size_t i = 0; i < pred.size(); ++i) correct += pred[i] == ys[i];
      std::printf("step %5d  loss %.4f  train accuracy %.3f\n", step, loss.item(),
                  static_cast<double>(correct) / static_cast<double>(pred.size()));
    }
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("%d steps in %.2f s (%.0f steps/s, %d threads)\n", steps, s, steps / s, num_threads());
  return 0;
}
