// Helpers for the optim tests: parameters, and setting a parameter's gradient
// directly. Test data, bitwise comparison, error checks and the thread-count
// guard are the shared ones from tests/tensor/test_util.h.
#pragma once

#include <gtest/gtest.h>

#include <vector>

#include "../tensor/test_util.h"
#include "deft/autograd/graph.h"
#include "deft/tensor/tensor.h"

namespace deft::optim_test {

using tt::bitwise_equal;
using tt::expect_input_error;
using tt::random_floats;
using tt::ThreadCountGuard;

inline Tensor param(const std::vector<float>& values, const Shape& shape) {
  return Tensor::from_vector(values, shape).set_requires_grad();
}

// Gives `p` the gradient `g` as backward() would leave it (an owned, contiguous tensor).
inline void set_grad(const Tensor& p, const std::vector<float>& g) {
  p.impl()->autograd->grad = Tensor::from_vector(g, p.shape());
}

}  // namespace deft::optim_test
