// Raw CPU kernels on tensors. No autograd graph is recorded here: these are the
// building blocks the differentiable ops in deft/autograd/ops.h call, forward
// and backward. Outputs are new contiguous tensors unless a function says it
// returns a view.
//
// Broadcasting follows NumPy; shape errors name the op and both shapes.
// Elementwise kernels vectorise on contiguous runs and go multi-threaded above
// a size threshold; reductions are deterministic for a given thread count
// (and in fact for any thread count: work is cut into fixed blocks).
#pragma once

#include <vector>

#include "deft/tensor/tensor.h"

namespace deft::kernel {

// ---- shapes and views (return views: no copy) -------------------------------
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);
Shape infer_shape(const Shape& shape, int64_t numel, const char* op);  // resolves one -1
Tensor view(const Tensor& x, const Shape& shape);     // error if strides don't allow a view
Tensor reshape(const Tensor& x, const Shape& shape);  // view when possible, copy otherwise
Tensor permute(const Tensor& x, const std::vector<int64_t>& dims);
Tensor transpose(const Tensor& x, int64_t a, int64_t b);
Tensor slice(const Tensor& x, int64_t axis, int64_t start, int64_t end, int64_t step = 1);
Tensor squeeze(const Tensor& x, int64_t axis);
Tensor squeeze_all(const Tensor& x);
Tensor unsqueeze(const Tensor& x, int64_t axis);
Tensor expand(const Tensor& x, const Shape& shape);
Tensor contiguous(const Tensor& x);

// ---- copies ------------------------------------------------------------------
void copy(const Tensor& dst, const Tensor& src);  // src broadcast to dst; dtypes convert
Tensor convert(const Tensor& x, DType dtype);

// ---- elementwise -------------------------------------------------------------
enum class Unary { Neg, Abs, Exp, Log, Sqrt, Rsqrt, Square, Reciprocal, Relu, Sigmoid, Tanh, Gelu, Silu, Sign };
enum class Binary { Add, Sub, Mul, Div, Maximum, Minimum, Pow, Eq, Ne, Lt, Le, Gt, Ge };
const char* unary_name(Unary op);
const char* binary_name(Binary op);

Tensor unary(Unary op, const Tensor& x);
Tensor binary(Binary op, const Tensor& a, const Tensor& b);  // comparisons give uint8
Tensor affine(const Tensor& x, float scale, float shift);    // x * scale + shift
Tensor pow_scalar(const Tensor& x, float exponent);
Tensor leaky_relu(const Tensor& x, float slope);
Tensor elu(const Tensor& x, float alpha);
Tensor clamp(const Tensor& x, float low, float high);
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
// In place: dst += src * alpha (src broadcast to dst's shape); used to accumulate gradients.
void add_inplace(const Tensor& dst, const Tensor& src, float alpha = 1.0f);

// Fused backward helpers (same shapes): grad_in = grad_out * f'(...)
Tensor relu_backward(const Tensor& g, const Tensor& x);
Tensor leaky_relu_backward(const Tensor& g, const Tensor& x, float slope);
Tensor elu_backward(const Tensor& g, const Tensor& x, float alpha);
Tensor sigmoid_backward(const Tensor& g, const Tensor& y);  // y = sigmoid(x)
Tensor tanh_backward(const Tensor& g, const Tensor& y);     // y = tanh(x)
Tensor gelu_backward(const Tensor& g, const Tensor& x);
Tensor silu_backward(const Tensor& g, const Tensor& x);
Tensor clamp_backward(const Tensor& g, const Tensor& x, float low, float high);

// ---- reductions ----------------------------------------------------------------
enum class Reduce { Sum, Mean, Max, Min };
// axes empty = all axes.
Tensor reduce(Reduce op, const Tensor& x, std::vector<int64_t> axes, bool keepdim);
Tensor logsumexp(const Tensor& x, std::vector<int64_t> axes, bool keepdim);
Tensor argmax(const Tensor& x, int64_t axis, bool keepdim);  // int64
Tensor argmin(const Tensor& x, int64_t axis, bool keepdim);  // int64
// Sums `g` down to `shape` (undoes broadcasting).
Tensor sum_to(const Tensor& g, const Shape& shape);
// Normalised, sorted, de-duplicated axes; empty input means all.
std::vector<int64_t> normalize_axes(std::vector<int64_t> axes, int64_t ndim, const char* op);

// ---- linear algebra ------------------------------------------------------------
// NumPy matmul semantics: 1-D operands, batch dims broadcast. Transposed views are
// passed to the GEMM as transposes, not copied.
Tensor matmul(const Tensor& a, const Tensor& b);

// ---- softmax -----------------------------------------------------------------------
Tensor softmax(const Tensor& x, int64_t axis);
Tensor log_softmax(const Tensor& x, int64_t axis);
Tensor softmax_backward(const Tensor& g, const Tensor& y, int64_t axis);      // y = softmax
Tensor log_softmax_backward(const Tensor& g, const Tensor& y, int64_t axis);  // y = log_softmax

// ---- joining and indexing ----------------------------------------------------------
Tensor cat(const std::vector<Tensor>& xs, int64_t axis);
Tensor stack(const std::vector<Tensor>& xs, int64_t axis);
Tensor index_select(const Tensor& x, int64_t axis, const Tensor& index);
// zeros(shape) with src's slices added at `index` along axis (backward of index_select).
Tensor index_add(const Shape& shape, int64_t axis, const Tensor& index, const Tensor& src);
Tensor gather(const Tensor& x, int64_t axis, const Tensor& index);
// zeros(shape) with src scattered (added) along axis (backward of gather).
Tensor scatter_add(const Shape& shape, int64_t axis, const Tensor& index, const Tensor& src);

}  // namespace deft::kernel
