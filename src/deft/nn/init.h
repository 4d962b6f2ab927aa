// Weight initialisers, by the names Keras uses:
//
//   "glorot_uniform" (xavier_uniform)  U(-l, l), l = sqrt(6 / (fan_in + fan_out))
//   "glorot_normal"  (xavier_normal)   N(0, 2 / (fan_in + fan_out))
//   "he_uniform"     (kaiming_uniform) U(-l, l), l = sqrt(6 / fan_in)
//   "he_normal"      (kaiming_normal)  N(0, 2 / fan_in)
//   "lecun_uniform" / "lecun_normal"   the same with 3 / fan_in and 1 / fan_in
//   "torch"                            PyTorch's Linear default: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
//   "zeros", "ones", "uniform_A" (U(-A, A)), "normal_S" (N(0, S²))
//
//   Tensor w = initialise("he_normal", {784, 128}, /*fan_in=*/784, /*fan_out=*/128, gen);
#pragma once
#include <string>
#include <vector>
#include "deft/tensor/random.h"
#include "deft/tensor/tensor.h"

namespace deft::nn {

Tensor initialise(const std::string& scheme, const Shape& shape, int64_t fan_in, int64_t fan_out,
                  Generator& gen);
// InputError naming `scheme` and the valid names unless it is one of them.
void check_initialiser(const std::string& scheme);
std::vector<std::string> initialiser_names();

}  // namespace deft::nn
