// Helpers for the optim tests: deterministic test data (std::mt19937, not deft's
// generator), setting a parameter's gradient directly, bitwise comparison and
// the check that a call throws an InputError naming what was wrong.
#pragma once

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "deft/autograd/graph.h"
#include "deft/tensor/parallel.h"
#include "deft/tensor/tensor.h"

namespace deft::optim_test {

inline std::vector<float> random_floats(size_t n, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

inline Tensor param(const std::vector<float>& values, const Shape& shape) {
  return Tensor::from_vector(values, shape).set_requires_grad();
}

// Gives `p` the gradient `g` as backward() would leave it (an owned, contiguous tensor).
inline void set_grad(const Tensor& p, const std::vector<float>& g) {
  p.impl()->autograd->grad = Tensor::from_vector(g, p.shape());
}

inline bool bitwise_equal(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape()) return false;
  const std::vector<float> x = a.to_vector<float>(), y = b.to_vector<float>();
  return std::memcmp(x.data(), y.data(), x.size() * sizeof(float)) == 0;
}

template <class F>
void expect_input_error(F&& f, const std::vector<std::string>& parts) {
  try {
    f();
    ADD_FAILURE() << "no InputError thrown (expected one mentioning '" << (parts.empty() ? "" : parts[0])
                  << "')";
  } catch (const InputError& e) {
    const std::string msg = e.what();
    for (const std::string& p : parts)
      EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong exception type: " << e.what();
  }
}

// Restores the thread count a test changed.
class ThreadCountScope {
 public:
  explicit ThreadCountScope(int n) : previous_(num_threads()) { set_num_threads(n); }
  ~ThreadCountScope() { set_num_threads(previous_); }
  ThreadCountScope(const ThreadCountScope&) = delete;
  ThreadCountScope& operator=(const ThreadCountScope&) = delete;

 private:
  int previous_;
};

}  // namespace deft::optim_test
