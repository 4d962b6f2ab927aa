// A two-layer MLP written directly with the autodiff ops (no nn layer), trained
// with plain gradient descent written here: learns XOR and two noisy spirals.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <string>

#include "deft/autograd/ops.h"
#include "deft/tensor/kernels.h"
#include "deft/tensor/random.h"

namespace deft {
namespace {

struct Mlp {
  Tensor w1, b1, w2, b2;
  Mlp(int64_t in, int64_t hidden, int64_t out, Generator& gen) {
    const float s1 = std::sqrt(2.0f / static_cast<float>(in));
    const float s2 = std::sqrt(1.0f / static_cast<float>(hidden));
    w1 = Tensor::normal({in, hidden}, 0.0f, s1, gen).set_requires_grad();
    b1 = Tensor::zeros({hidden}).set_requires_grad();
    w2 = Tensor::normal({hidden, out}, 0.0f, s2, gen).set_requires_grad();
    b2 = Tensor::zeros({out}).set_requires_grad();
  }
  Tensor forward(const Tensor& x) const { return matmul(tanh(matmul(x, w1) + b1), w2) + b2; }
  std::vector<Tensor*> params() { return {&w1, &b1, &w2, &b2}; }
};

// Mean cross-entropy of logits [N,C] against int64 labels [N].
Tensor cross_entropy(const Tensor& logits, const Tensor& labels) {
  const Tensor picked = gather(log_softmax(logits, 1), 1, reshape(labels, {-1, 1}));
  return -mean(picked);
}

float sgd_step(Mlp& m, const Tensor& x, const Tensor& y, float lr) {
  Tensor loss = cross_entropy(m.forward(x), y);
  loss.backward();
  NoGradGuard ng;
  for (Tensor* p : m.params()) {
    kernel::add_inplace(*p, p->grad(), -lr);
    p->zero_grad();
  }
  return loss.item();
}

float accuracy(const Mlp& m, const Tensor& x, const Tensor& y) {
  NoGradGuard ng;
  const Tensor pred = argmax(m.forward(x), 1);
  const auto p = pred.to_vector<int64_t>();
  const auto t = y.to_vector<int64_t>();
  int correct = 0;
  for (size_t i = 0; i < p.size(); ++i) correct += p[i] == t[i];
  return static_cast<float>(correct) / static_cast<float>(p.size());
}

TEST(Mlp, LearnsXor) {
  Generator gen(0);
  const Tensor x = Tensor::from_vector<float>({0, 0, 0, 1, 1, 0, 1, 1}, {4, 2});
  const Tensor y = Tensor::from_vector<int64_t>({0, 1, 1, 0});
  Mlp m(2, 8, 2, gen);
  EXPECT_LT(accuracy(m, x, y), 1.0f + 1e-6f);
  float loss = 0;
  for (int step = 0; step < 2000; ++step) loss = sgd_step(m, x, y, 0.5f);
  EXPECT_EQ(accuracy(m, x, y), 1.0f);
  EXPECT_LT(loss, 0.05f);
}

// Two interleaved spirals with Gaussian noise, 2 classes.
void make_spirals(int64_t per_class, float noise, Generator& gen, Tensor& x, Tensor& y) {
  std::vector<float> xs;
  std::vector<int64_t> ys;
  const Tensor eps = Tensor::normal({2 * per_class, 2}, 0.0f, noise, gen);
  const auto e = eps.to_vector<float>();
  for (int64_t cls = 0; cls < 2; ++cls)
    for (int64_t i = 0; i < per_class; ++i) {
      const float t = 0.25f + 3.0f * static_cast<float>(i) / static_cast<float>(per_class);  // 1.5 turns
      const float angle = t * 3.14159265f + static_cast<float>(cls) * 3.14159265f;
      const int64_t k = cls * per_class + i;
      xs.push_back(t * std::cos(angle) + e[2 * k]);
      xs.push_back(t * std::sin(angle) + e[2 * k + 1]);
      ys.push_back(cls);
    }
  x = Tensor::from_vector(xs, {2 * per_class, 2});
  y = Tensor::from_vector(ys);
}

TEST(Mlp, LearnsNoisySpirals) {
  Generator gen(1);
  Tensor x, y;
  make_spirals(200, 0.05f, gen, x, y);
  Mlp m(2, 64, 2, gen);
  const float before = accuracy(m, x, y);
  for (int step = 0; step < 3000; ++step) sgd_step(m, x, y, 0.3f);
  const float after = accuracy(m, x, y);
  EXPECT_LT(before, 0.8f);
  EXPECT_GE(after, 0.99f) << "training accuracy on two spirals";
}

long rss_kib() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  return -1;
}

// 10,000 forward/backward steps: the graph is freed every step, memory stays flat.
// Under AddressSanitizer this also runs under LeakSanitizer (a leaked or cyclic graph is reported at exit).
TEST(Mlp, TenThousandStepsKeepMemoryFlat) {
  Generator gen(2);
  Tensor x, y;
  make_spirals(32, 0.05f, gen, x, y);
  Mlp m(2, 32, 2, gen);
  [[maybe_unused]] long rss_at_1000 = 0;
  for (int step = 0; step < 10000; ++step) {
    sgd_step(m, x, y, 0.1f);
    if (step == 999) rss_at_1000 = rss_kib();
  }
  const long rss_end = rss_kib();
#if !defined(DEFT_SANITIZED)
  EXPECT_LT(rss_end - rss_at_1000, 2048) << "RSS grew from " << rss_at_1000 << " KiB to " << rss_end << " KiB";
#else
  (void)rss_end;
#endif
  // Leaves own their gradient; non-leaves keep no graph after backward.
  Tensor loss = cross_entropy(m.forward(x), y);
  ASSERT_NE(loss.grad_fn_name(), nullptr);
  loss.backward();
  EXPECT_THROW(loss.backward(), InputError);  // graph already freed
}

}  // namespace
}  // namespace deft
