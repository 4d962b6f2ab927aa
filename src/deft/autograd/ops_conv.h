// Differentiable ops for convolutional networks, on NCHW tensors (PyTorch's layout):
// 2-D convolution (stride, padding, dilation, groups), max / average / adaptive
// average pooling, and channel dropout.
//
//   Conv2dParams p{.padding = {1, 1, 1, 1}};
//   Tensor h = relu(conv2d(x, w, b, p));      // x [N,C,H,W], w [O, C/groups, kh, kw], b [O]
//   h = max_pool2d(h, {.kernel = {2, 2}, .stride = {2, 2}});
//   h = adaptive_avg_pool2d(h, {1, 1});        // [N, O, 1, 1]
//
// Convolutions run on oneDNN (the library PyTorch uses on CPU): forward, backward-data
// and backward-weights primitives are created once per shape and configuration and
// cached per thread; the layouts oneDNN prefers internally (blocked channels) are
// reordered to and from NCHW at the op boundary. Pooling runs on deft's own loops
// (memory-bound; one pass over each plane). Every op here has gradcheck cases.
#pragma once

#include <array>
#include <cstdint>

#include "deft/autograd/graph.h"
#include "deft/tensor/conv.h"
#include "deft/tensor/random.h"
#include "deft/tensor/tensor.h"

namespace deft {

// Output size along one axis: floor((in + pad_total - dilation*(k-1) - 1) / stride) + 1.
int64_t conv_output_size(int64_t in, int64_t kernel, int64_t stride, int64_t pad_total, int64_t dilation = 1);
// TensorFlow's "same" padding along one axis: {before, after} so that the output is
// ceil(in / stride); the odd pixel goes after, as in TensorFlow and PyTorch.
std::array<int64_t, 2> same_padding(int64_t in, int64_t kernel, int64_t stride, int64_t dilation = 1);

// x [N,C,H,W] float32, w [O, C/groups, kh, kw], b [O] or undefined -> [N,O,Ho,Wo].
// ShapeError names both shapes and the parameters when they do not fit.
Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dParams& p = {});
// relu(conv2d(x, w, b, p)) in one oneDNN call (the activation is a post-op), with the
// ReLU's gradient mask taken from the output in backward.
Tensor conv2d_relu(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dParams& p = {});

struct Pool2dParams {
  std::array<int64_t, 2> kernel{2, 2};
  std::array<int64_t, 2> stride{2, 2};
  std::array<int64_t, 4> padding{0, 0, 0, 0};  // top, bottom, left, right
  bool ceil_mode = false;          // PyTorch: the last window may start inside the padding-free input
  bool count_include_pad = true;   // average pooling: divide by the full window (PyTorch's default)
};
// Each window must overlap the input (PyTorch's rule: padding <= kernel / 2).
Tensor max_pool2d(const Tensor& x, const Pool2dParams& p = {});
Tensor avg_pool2d(const Tensor& x, const Pool2dParams& p = {});
// PyTorch's adaptive bins: output cell i covers [floor(i*H/oh), ceil((i+1)*H/oh)).
Tensor adaptive_avg_pool2d(const Tensor& x, std::array<int64_t, 2> output_size);

// Zeroes whole channels of x [N,C,...] with probability p and scales the kept ones by
// 1/(1-p) (PyTorch's Dropout2d). p == 0 returns x; the mask comes from gen's Philox stream.
Tensor dropout2d(const Tensor& x, float p, Generator& gen);

}  // namespace deft
