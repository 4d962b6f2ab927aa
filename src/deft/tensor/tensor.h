// Tensors: a dtype, a shape, strides and an offset into shared storage.
//
// Views (reshape, permute, slice, expand, ...) share storage and copy nothing;
// contiguous() copies only when needed. Tensors are cheap handles: copying a
// Tensor copies a pointer, not the data.
//
//   Tensor x = Tensor::zeros({64, 784});
//   Tensor w = Tensor::randn({784, 128}, gen);
//   float* p = x.data<float>();
//
// Differentiable operations on tensors live in deft/autograd/ops.h; the raw
// kernels (no graph) in deft/tensor/kernels.h.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "deft/tensor/error.h"

namespace deft {

enum class DType : uint8_t { Float32, Int64, UInt8 };

size_t dtype_size(DType t);
const char* dtype_name(DType t);

template <class T>
constexpr DType dtype_of();
template <>
constexpr DType dtype_of<float>() { return DType::Float32; }
template <>
constexpr DType dtype_of<int64_t>() { return DType::Int64; }
template <>
constexpr DType dtype_of<uint8_t>() { return DType::UInt8; }

using Shape = std::vector<int64_t>;

std::string shape_str(const Shape& s);     // "[64,784]"
int64_t shape_numel(const Shape& s);
Shape contiguous_strides(const Shape& s);
// Wraps a possibly negative axis into [0, ndim); names the op in the error.
int64_t normalize_axis(int64_t axis, int64_t ndim, const char* op);

// A block of 64-byte aligned memory, recycled by a caching allocator.
class Storage {
 public:
  explicit Storage(size_t nbytes);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }

 private:
  void* data_ = nullptr;
  size_t nbytes_ = 0;
};

// Releases the blocks the allocator keeps for reuse.
void empty_allocator_cache();

struct AutogradMeta;  // deft/autograd/graph.h

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  Shape shape;
  Shape strides;  // in elements
  int64_t offset = 0;
  DType dtype = DType::Float32;
  std::shared_ptr<AutogradMeta> autograd;  // null unless it takes part in autodiff
};

class Generator;

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // --- creation -----------------------------------------------------------
  static Tensor empty(const Shape& shape, DType dtype = DType::Float32);
  static Tensor zeros(const Shape& shape, DType dtype = DType::Float32);
  static Tensor ones(const Shape& shape, DType dtype = DType::Float32);
  static Tensor full(const Shape& shape, double value, DType dtype = DType::Float32);
  static Tensor scalar(float value) { return full({}, value); }
  static Tensor arange(double start, double end, double step = 1.0, DType dtype = DType::Float32);
  // Copies `numel(shape)` elements from `data`.
  static Tensor from_buffer(const void* data, const Shape& shape, DType dtype);
  template <class T>
  static Tensor from_vector(const std::vector<T>& v, const Shape& shape) {
    DEFT_CHECK(static_cast<int64_t>(v.size()) == shape_numel(shape),
               "from_vector: {} values do not fill shape {}", v.size(), shape_str(shape));
    return from_buffer(v.data(), shape, dtype_of<T>());
  }
  template <class T>
  static Tensor from_vector(const std::vector<T>& v) {
    return from_vector(v, Shape{static_cast<int64_t>(v.size())});
  }
  // Seeded, counter-based: the same generator state gives the same numbers
  // whatever the thread count.
  static Tensor uniform(const Shape& shape, float low, float high, Generator& gen);
  static Tensor normal(const Shape& shape, float mean, float stddev, Generator& gen);
  static Tensor rand(const Shape& shape, Generator& gen) { return uniform(shape, 0.f, 1.f, gen); }
  static Tensor randn(const Shape& shape, Generator& gen) { return normal(shape, 0.f, 1.f, gen); }

  // --- metadata -----------------------------------------------------------
  bool defined() const { return impl_ != nullptr; }
  DType dtype() const { return impl_->dtype; }
  const Shape& shape() const { return impl_->shape; }
  const Shape& strides() const { return impl_->strides; }
  int64_t offset() const { return impl_->offset; }
  int64_t dim() const { return static_cast<int64_t>(impl_->shape.size()); }
  int64_t size(int64_t axis) const;
  int64_t numel() const { return shape_numel(impl_->shape); }
  bool is_contiguous() const;
  bool same(const Tensor& other) const { return impl_ == other.impl_; }
  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }

  // --- data access ----------------------------------------------------------
  template <class T>
  T* data() const {
    check_dtype(dtype_of<T>(), "data");
    return static_cast<T*>(impl_->storage->data()) + impl_->offset;
  }
  void* raw_data() const {
    return static_cast<char*>(impl_->storage->data()) + impl_->offset * dtype_size(impl_->dtype);
  }
  // Value of a one-element tensor, converted to T.
  template <class T = float>
  T item() const;
  // All elements in logical (row-major) order, converted to T.
  template <class T = float>
  std::vector<T> to_vector() const;

  // --- no-graph conversions and copies --------------------------------------
  Tensor to(DType dtype) const;      // explicit dtype conversion (always a new tensor)
  Tensor clone() const;              // contiguous copy, no graph
  Tensor contiguous_copy() const { return is_contiguous() ? *this : clone(); }
  Tensor detach() const;             // shares storage, drops autograd history
  void copy_from(const Tensor& src);  // element-wise copy, shapes must match (broadcast allowed)
  void fill(double value);

  // --- autograd (implemented in deft/autograd) -------------------------------
  bool requires_grad() const;
  Tensor& set_requires_grad(bool on = true);
  Tensor grad() const;          // undefined until backward() reached this leaf
  void zero_grad();             // drops the accumulated gradient
  void backward() const;        // for a one-element tensor
  void backward(const Tensor& grad_output) const;
  bool is_leaf() const;
  const char* grad_fn_name() const;  // the op that produced it, or nullptr

 private:
  void check_dtype(DType want, const char* what) const;
  std::shared_ptr<TensorImpl> impl_;
};

std::ostream& operator<<(std::ostream& os, const Tensor& t);

// Builds a view of `base`'s storage (no copy); the caller guarantees bounds.
Tensor make_view(const Tensor& base, Shape shape, Shape strides, int64_t offset);

}  // namespace deft
