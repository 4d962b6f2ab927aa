#include "deft/tensor/tensor.h"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <unordered_map>

#include "deft/tensor/kernels.h"
#include "deft/tensor/parallel.h"

namespace deft {

size_t dtype_size(DType t) {
  switch (t) {
    case DType::Float32: return 4;
    case DType::Int64: return 8;
    case DType::UInt8: return 1;
  }
  return 0;
}

const char* dtype_name(DType t) {
  switch (t) {
    case DType::Float32: return "float32";
    case DType::Int64: return "int64";
    case DType::UInt8: return "uint8";
  }
  return "?";
}

std::string shape_str(const Shape& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i) out += ",";
    out += std::to_string(s[i]);
  }
  return out + "]";
}

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

Shape contiguous_strides(const Shape& s) {
  Shape st(s.size());
  int64_t acc = 1;
  for (int64_t i = static_cast<int64_t>(s.size()) - 1; i >= 0; --i) {
    st[i] = acc;
    acc *= s[i];
  }
  return st;
}

int64_t normalize_axis(int64_t axis, int64_t ndim, const char* op) {
  const int64_t n = ndim == 0 ? 1 : ndim;
  DEFT_CHECK_SHAPE(axis >= -n && axis < n, "{}: axis {} is out of range for a tensor with {} dims",
                   op, axis, ndim);
  return axis < 0 ? axis + n : axis;
}

// ---- caching allocator ---------------------------------------------------------
// Training allocates the same sizes every step; keeping freed blocks avoids
// page faults on large activations. Sanitized builds bypass the cache so that
// use-after-free is still caught.
namespace {

constexpr size_t kAlign = 64;
constexpr size_t kMinCached = 4096;
constexpr size_t kMaxCachedBytes = size_t{2} << 30;

struct BlockCache {
  std::mutex mu;
  std::unordered_map<size_t, std::vector<void*>> free_blocks;
  size_t cached_bytes = 0;

  ~BlockCache() { release(); }
  void release() {
    std::lock_guard<std::mutex> lock(mu);
    for (auto& [size, blocks] : free_blocks)
      for (void* p : blocks) std::free(p);
    free_blocks.clear();
    cached_bytes = 0;
  }
};

BlockCache& cache() {
  static BlockCache* c = new BlockCache();  // leaked on purpose: storages may die after main
  return *c;
}

size_t round_size(size_t n) {
  n = (n + kAlign - 1) / kAlign * kAlign;
  if (n > (size_t{1} << 20)) n = (n + 65535) / 65536 * 65536;  // coarser buckets for big blocks
  return n;
}

#if defined(DEFT_SANITIZED)
constexpr bool kUseCache = false;
#else
constexpr bool kUseCache = true;
#endif

void* allocate(size_t n) {
  if (kUseCache && n >= kMinCached) {
    BlockCache& c = cache();
    std::lock_guard<std::mutex> lock(c.mu);
    auto it = c.free_blocks.find(n);
    if (it != c.free_blocks.end() && !it->second.empty()) {
      void* p = it->second.back();
      it->second.pop_back();
      c.cached_bytes -= n;
      return p;
    }
  }
  void* p = std::aligned_alloc(kAlign, n);
  if (!p) fail<Error>("out of memory allocating {} bytes", n);
  return p;
}

void deallocate(void* p, size_t n) {
  if (kUseCache && n >= kMinCached) {
    BlockCache& c = cache();
    std::lock_guard<std::mutex> lock(c.mu);
    if (c.cached_bytes + n <= kMaxCachedBytes) {
      c.free_blocks[n].push_back(p);
      c.cached_bytes += n;
      return;
    }
  }
  std::free(p);
}

}  // namespace

Storage::Storage(size_t nbytes) : nbytes_(round_size(nbytes == 0 ? 1 : nbytes)) {
  data_ = allocate(nbytes_);
}
Storage::~Storage() { deallocate(data_, nbytes_); }

void empty_allocator_cache() { cache().release(); }

// ---- creation -------------------------------------------------------------------
Tensor Tensor::empty(const Shape& shape, DType dtype) {
  for (int64_t d : shape)
    DEFT_CHECK_SHAPE(d >= 0, "empty: negative dimension in shape {}", shape_str(shape));
  DEFT_CHECK_SHAPE(shape.size() <= 12, "tensors have at most 12 dims, got shape {}", shape_str(shape));
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(static_cast<size_t>(shape_numel(shape)) * dtype_size(dtype));
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

Tensor Tensor::zeros(const Shape& shape, DType dtype) {
  Tensor t = empty(shape, dtype);
  std::memset(t.raw_data(), 0, static_cast<size_t>(t.numel()) * dtype_size(dtype));
  return t;
}

Tensor Tensor::ones(const Shape& shape, DType dtype) { return full(shape, 1.0, dtype); }

Tensor Tensor::full(const Shape& shape, double value, DType dtype) {
  Tensor t = empty(shape, dtype);
  t.fill(value);
  return t;
}

Tensor Tensor::arange(double start, double end, double step, DType dtype) {
  DEFT_CHECK(step != 0.0, "arange: step must not be zero");
  const double span = (end - start) / step;
  const int64_t n = span <= 0 ? 0 : static_cast<int64_t>(std::ceil(span - 1e-12));
  Tensor t = empty({n}, dtype);
  for (int64_t i = 0; i < n; ++i) {
    const double v = start + step * static_cast<double>(i);
    switch (dtype) {
      case DType::Float32: t.data<float>()[i] = static_cast<float>(v); break;
      case DType::Int64: t.data<int64_t>()[i] = static_cast<int64_t>(v); break;
      case DType::UInt8: t.data<uint8_t>()[i] = static_cast<uint8_t>(v); break;
    }
  }
  return t;
}

Tensor Tensor::from_buffer(const void* data, const Shape& shape, DType dtype) {
  Tensor t = empty(shape, dtype);
  if (t.numel() > 0)  // an empty std::vector's data() may be null, which memcpy must not get
    std::memcpy(t.raw_data(), data, static_cast<size_t>(t.numel()) * dtype_size(dtype));
  return t;
}

Tensor make_view(const Tensor& base, Shape shape, Shape strides, int64_t offset) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = base.impl()->storage;
  impl->shape = std::move(shape);
  impl->strides = std::move(strides);
  impl->offset = offset;
  impl->dtype = base.dtype();
  return Tensor(std::move(impl));
}

// ---- metadata ----------------------------------------------------------------------
int64_t Tensor::size(int64_t axis) const { return shape()[normalize_axis(axis, dim(), "size")]; }

bool Tensor::is_contiguous() const {
  int64_t expected = 1;
  for (int64_t i = dim() - 1; i >= 0; --i) {
    if (shape()[i] == 1) continue;
    if (strides()[i] != expected) return false;
    expected *= shape()[i];
  }
  return true;
}

void Tensor::check_dtype(DType want, const char* what) const {
  DEFT_CHECK(defined(), "{}: tensor is undefined", what);
  DEFT_CHECK(dtype() == want, "{}: tensor has dtype {}, expected {}", what, dtype_name(dtype()),
             dtype_name(want));
}

template <class T>
T Tensor::item() const {
  DEFT_CHECK_SHAPE(numel() == 1, "item: tensor of shape {} has {} elements, expected 1",
                   shape_str(shape()), numel());
  switch (dtype()) {
    case DType::Float32: return static_cast<T>(*data<float>());
    case DType::Int64: return static_cast<T>(*data<int64_t>());
    case DType::UInt8: return static_cast<T>(*data<uint8_t>());
  }
  return T{};
}

template <class T>
std::vector<T> Tensor::to_vector() const {
  Tensor c = dtype() == dtype_of<T>() ? contiguous_copy() : to(dtype_of<T>());
  const T* p = c.data<T>();
  return std::vector<T>(p, p + c.numel());
}

template float Tensor::item<float>() const;
template int64_t Tensor::item<int64_t>() const;
template uint8_t Tensor::item<uint8_t>() const;
template double Tensor::item<double>() const;
template int Tensor::item<int>() const;
template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<int64_t> Tensor::to_vector<int64_t>() const;
template std::vector<uint8_t> Tensor::to_vector<uint8_t>() const;

// ---- conversions and copies -------------------------------------------------------------
Tensor Tensor::to(DType t) const { return kernel::convert(*this, t); }

Tensor Tensor::clone() const {
  Tensor out = empty(shape(), dtype());
  kernel::copy(out, *this);
  return out;
}

Tensor Tensor::detach() const { return make_view(*this, shape(), strides(), offset()); }

void Tensor::copy_from(const Tensor& src) { kernel::copy(*this, src); }

void Tensor::fill(double value) {
  const int64_t n = numel();
  auto run = [&](auto* p, auto v) {
    if (is_contiguous()) {
      parallel_for(0, n, 1 << 16, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) p[i] = v;
      });
    } else {
      kernel::copy(*this, Tensor::full({}, value, dtype()));
    }
  };
  switch (dtype()) {
    case DType::Float32: run(data<float>(), static_cast<float>(value)); break;
    case DType::Int64: run(data<int64_t>(), static_cast<int64_t>(value)); break;
    case DType::UInt8: run(data<uint8_t>(), static_cast<uint8_t>(value)); break;
  }
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) {
  if (!t.defined()) return os << "Tensor(undefined)";
  os << "Tensor(" << dtype_name(t.dtype()) << ", " << shape_str(t.shape()) << ", [";
  const auto v = t.to_vector<float>();
  const size_t show = std::min<size_t>(v.size(), 16);
  for (size_t i = 0; i < show; ++i) os << (i ? ", " : "") << v[i];
  if (v.size() > show) os << ", ...";
  return os << "])";
}

}  // namespace deft
