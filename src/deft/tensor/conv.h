// 2-D convolution kernels on oneDNN (no autograd; autograd/ops_conv.h wraps them).
//
// Tensors are NCHW float32 (contiguous); weights [O, C/groups, kh, kw]. Each call
// looks up a primitive cached per thread for its exact configuration (shapes,
// parameters, thread count) and creates it on first use, so a training loop pays the
// primitive creation once per layer shape. oneDNN chooses its own internal layouts
// (blocked channels on AVX-512); reorders to and from NCHW are cached with the
// primitive and skipped when oneDNN takes plain NCHW directly.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "deft/tensor/tensor.h"

namespace deft {

struct Conv2dParams {
  std::array<int64_t, 2> stride{1, 1};         // (h, w)
  std::array<int64_t, 4> padding{0, 0, 0, 0};  // top, bottom, left, right (zeros)
  std::array<int64_t, 2> dilation{1, 1};       // 1 = dense kernel (PyTorch's convention)
  int64_t groups = 1;                          // C and O must both divide by it
};

namespace kernel {

// x [N,C,H,W], w [O,C/g,kh,kw], b [O] or undefined -> y [N,O,Ho,Wo]. `training` picks
// oneDNN's forward_training (same numbers; the backward primitives hint on it).
// `relu` applies max(y, 0) inside the primitive (a oneDNN post-op: no second pass).
Tensor conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dParams& p, bool training,
                      bool relu = false);
// dL/dx for output gradient g [N,O,Ho,Wo]; x_shape is the input's shape.
Tensor conv2d_backward_data(const Tensor& g, const Tensor& w, const Shape& x_shape, const Conv2dParams& p);
// dL/dw (and dL/db when gb is non-null; gb gets shape [O]).
void conv2d_backward_weights(const Tensor& x, const Tensor& g, const Shape& w_shape, const Conv2dParams& p,
                             Tensor* gw, Tensor* gb);
// The oneDNN implementation chosen for the forward pass of this configuration (for
// benchmarks and DNNL_VERBOSE-free diagnostics), e.g. "brgconv:avx512_core".
std::string conv2d_implementation(const Shape& x_shape, const Shape& w_shape, bool bias, const Conv2dParams& p);

}  // namespace kernel
}  // namespace deft
