// Gradient checking: central finite differences against backward().
//
//   auto r = gradcheck([](const std::vector<Tensor>& in) { return tanh(in[0]); },
//                      {Tensor::randn({3, 4}, gen)});
//   EXPECT_TRUE(r.ok) << r.message;
//
// The function's output is projected to a scalar with fixed random weights,
// so every output element's gradient is checked at once. Inputs are copied
// into fresh contiguous leaves; to test non-contiguous inputs, build the view
// inside the function (e.g. transpose(in[0], 0, 1)).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "deft/tensor/tensor.h"

namespace deft {

struct GradcheckOptions {
  float eps = 1e-2f;   // finite-difference step
  double atol = 1e-3;  // allowed |analytic - numeric| <= atol + rtol * |numeric|
  double rtol = 1e-2;
  uint64_t seed = 1234;
};

struct GradcheckResult {
  bool ok = true;
  double max_abs_error = 0.0;
  std::string message;  // the first failing input and element, when not ok
};

GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                          const std::vector<Tensor>& inputs, const GradcheckOptions& options = {});

}  // namespace deft
