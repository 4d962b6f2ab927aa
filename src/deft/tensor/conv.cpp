// oneDNN convolution primitives, cached per thread and configuration.
#include "deft/tensor/conv.h"

#include <cstdlib>
#include <cstring>
#include <dnnl.hpp>
#include <cstddef>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "deft/tensor/error.h"
#include "deft/tensor/kernels.h"
#include "deft/tensor/parallel.h"

namespace deft::kernel {
namespace {

using dnnl::memory;
using Tag = memory::format_tag;
constexpr auto kF32 = memory::data_type::f32;

enum class Pass : int64_t { ForwardTraining, ForwardInference, BackwardData, BackwardWeights, ForwardTrainingRelu,
                             ForwardInferenceRelu };

// One argument of a primitive: the caller's NCHW buffer (`user`, its pointer swapped
// in per call) and, when oneDNN wants another layout, its own buffer and the reorder.
struct Arg {
  int id = 0;  // DNNL_ARG_*
  bool output = false;
  memory user, inner;
  std::optional<dnnl::reorder> reorder;
};

struct Entry {
  dnnl::primitive prim;
  std::vector<Arg> args;
  std::string impl;
  bool relu_after = false;  // apply max(y, 0) in a pass of our own (see make_entry)
};

// Buffers for the arguments oneDNN wants in its own layout, shared by every cached
// primitive of the thread: calls are synchronous, so argument slot i of whichever
// primitive runs can use buffer i. Each grows to the largest size asked of it, so the
// cache holds a few activations' worth of memory however many shapes it has seen
// (one buffer per argument and entry had a VGG run peak at 1.5 GiB).
class ScratchBuffers {
 public:
  void* get(size_t slot, size_t bytes) {
    if (slot >= buffers_.size()) buffers_.resize(slot + 1);
    Buffer& b = buffers_[slot];
    if (b.bytes < bytes) {
      b.data.reset(static_cast<std::byte*>(std::aligned_alloc(64, (bytes + 63) / 64 * 64)));
      DEFT_INTERNAL_CHECK(b.data != nullptr, "conv2d: out of memory allocating {} bytes of scratch", bytes);
      b.bytes = bytes;
    }
    return b.data.get();
  }

 private:
  struct Free {
    void operator()(std::byte* p) const { std::free(p); }
  };
  struct Buffer {
    std::unique_ptr<std::byte, Free> data;
    size_t bytes = 0;
  };
  std::vector<Buffer> buffers_;
};

struct Cache {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
  std::map<std::vector<int64_t>, Entry> entries;
  ScratchBuffers scratch;
};

Cache& cache() {
  thread_local Cache c;
  return c;
}

// DEFT_CONV_LAYOUT=plain makes oneDNN work on NCHW directly (a measurement knob:
// bench/README.md compares it with the default, oneDNN's choice plus reorders).
bool plain_layout() {
  static const bool plain = [] {
    const char* v = std::getenv("DEFT_CONV_LAYOUT");
    return v && std::strcmp(v, "plain") == 0;
  }();
  return plain;
}

struct Geometry {
  memory::dims src, wei, bias, dst, strides, dilates, pad_l, pad_r;
  Tag wei_tag;
};

Geometry geometry(const Shape& x, const Shape& w, const Conv2dParams& p) {
  const int64_t N = x[0], C = x[1], H = x[2], W = x[3], O = w[0], kh = w[2], kw = w[3], g = p.groups;
  const int64_t Ho = (H + p.padding[0] + p.padding[1] - p.dilation[0] * (kh - 1) - 1) / p.stride[0] + 1;
  const int64_t Wo = (W + p.padding[2] + p.padding[3] - p.dilation[1] * (kw - 1) - 1) / p.stride[1] + 1;
  Geometry geo;
  geo.src = {N, C, H, W};
  geo.dst = {N, O, Ho, Wo};
  geo.bias = {O};
  if (g > 1) {
    geo.wei = {g, O / g, C / g, kh, kw};
    geo.wei_tag = Tag::goihw;
  } else {
    geo.wei = {O, C, kh, kw};
    geo.wei_tag = Tag::oihw;
  }
  geo.strides = {p.stride[0], p.stride[1]};
  geo.dilates = {p.dilation[0] - 1, p.dilation[1] - 1};  // oneDNN counts the gaps
  geo.pad_l = {p.padding[0], p.padding[2]};
  geo.pad_r = {p.padding[1], p.padding[3]};
  return geo;
}

memory::desc plain(const memory::dims& d, Tag t) { return memory::desc(d, kF32, t); }
memory::desc chosen_or_any(const memory::dims& d, Tag t, bool force_plain = false) {
  return memory::desc(d, kF32, force_plain || plain_layout() ? t : Tag::any);
}

// A forward pass on an input with few channels (an image network's first layer) runs
// on NCHW directly: oneDNN then picks its GEMM-based convolution, and the wide output
// needs no reorder. Measured with bench/bench_conv (1 thread, [128,1,28,28] * [32,1,3,3]):
// 1.4 ms on NCHW against 3.4 ms blocked plus reorders. Wider inputs are faster blocked
// ([128,32,14,14] * [64,32,3,3]: 125 against 97 GFLOP/s forward, 151 against 82 with
// backward), and so are all backward passes.
bool plain_forward(const memory::dims& src) { return src[1] <= 4; }

Arg make_arg(int id, bool output, const memory::desc& user_md, const memory::desc& prim_md, const dnnl::engine& e) {
  Arg a;
  a.id = id;
  a.output = output;
  a.user = memory(user_md, e, DNNL_MEMORY_NONE);
  if (prim_md == user_md) {
    a.inner = a.user;
  } else {
    a.inner = memory(prim_md, e, DNNL_MEMORY_NONE);  // a scratch buffer is set per call
    a.reorder = output ? dnnl::reorder(a.inner, a.user) : dnnl::reorder(a.user, a.inner);
  }
  return a;
}

dnnl::convolution_forward::primitive_desc forward_pd(const Geometry& g, bool bias, dnnl::prop_kind prop,
                                                     const dnnl::engine& e, bool force_plain = false,
                                                     bool relu = false) {
  dnnl::primitive_attr attr;
  if (relu) {
    dnnl::post_ops ops;
    ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0.0f, 0.0f);
    attr.set_post_ops(ops);
  }
  const auto src = chosen_or_any(g.src, Tag::nchw, force_plain), wei = chosen_or_any(g.wei, g.wei_tag, force_plain),
             dst = chosen_or_any(g.dst, Tag::nchw, force_plain);
  if (bias) {
    return {dnnl::convolution_forward::desc(prop, dnnl::algorithm::convolution_direct, src, wei,
                                            plain(g.bias, Tag::x), dst, g.strides, g.dilates, g.pad_l, g.pad_r),
            attr, e};
  }
  return {dnnl::convolution_forward::desc(prop, dnnl::algorithm::convolution_direct, src, wei, dst, g.strides,
                                          g.dilates, g.pad_l, g.pad_r),
          attr, e};
}

std::vector<int64_t> key_of(Pass pass, const Shape& x, const Shape& w, bool bias, const Conv2dParams& p) {
  std::vector<int64_t> k{static_cast<int64_t>(pass), bias, omp_get_max_threads(), p.groups};
  k.insert(k.end(), x.begin(), x.end());
  k.insert(k.end(), w.begin(), w.end());
  k.insert(k.end(), p.stride.begin(), p.stride.end());
  k.insert(k.end(), p.padding.begin(), p.padding.end());
  k.insert(k.end(), p.dilation.begin(), p.dilation.end());
  return k;
}

Entry make_entry(Pass pass, const Shape& x, const Shape& w, bool bias, const Conv2dParams& p) {
  Cache& c = cache();
  const dnnl::engine& e = c.engine;
  const Geometry g = geometry(x, w, p);
  Entry en;
  if (pass != Pass::BackwardData && pass != Pass::BackwardWeights) {
    const bool train = pass == Pass::ForwardTraining || pass == Pass::ForwardTrainingRelu;
    const bool relu = pass == Pass::ForwardTrainingRelu || pass == Pass::ForwardInferenceRelu;
    // oneDNN's GEMM convolution applies post-ops in a slow generic pass (bench_conv,
    // [128,1,28,28] * [32,1,3,3] on one thread: 17.7 ms with the ReLU post-op, 1.1 ms
    // without), so there the ReLU runs afterwards, in place, in a vectorised loop.
    const bool plain_fwd = plain_forward(g.src);
    en.relu_after = relu && plain_fwd;
    const auto pd = forward_pd(g, bias, train ? dnnl::prop_kind::forward_training : dnnl::prop_kind::forward_inference,
                               e, plain_fwd, relu && !plain_fwd);
    en.prim = dnnl::convolution_forward(pd);
    en.impl = pd.impl_info_str();
    en.args.push_back(make_arg(DNNL_ARG_SRC, false, plain(g.src, Tag::nchw), pd.src_desc(), e));
    en.args.push_back(make_arg(DNNL_ARG_WEIGHTS, false, plain(g.wei, g.wei_tag), pd.weights_desc(), e));
    if (bias) en.args.push_back(make_arg(DNNL_ARG_BIAS, false, plain(g.bias, Tag::x), pd.bias_desc(), e));
    en.args.push_back(make_arg(DNNL_ARG_DST, true, plain(g.dst, Tag::nchw), pd.dst_desc(), e));
  } else if (pass == Pass::BackwardData) {
    const auto hint = forward_pd(g, false, dnnl::prop_kind::forward_training, e);
    const dnnl::convolution_backward_data::desc d(
        dnnl::algorithm::convolution_direct, chosen_or_any(g.src, Tag::nchw), chosen_or_any(g.wei, g.wei_tag),
        chosen_or_any(g.dst, Tag::nchw), g.strides, g.dilates, g.pad_l, g.pad_r);
    const dnnl::convolution_backward_data::primitive_desc pd(d, e, hint);
    en.prim = dnnl::convolution_backward_data(pd);
    en.impl = pd.impl_info_str();
    en.args.push_back(make_arg(DNNL_ARG_DIFF_DST, false, plain(g.dst, Tag::nchw), pd.diff_dst_desc(), e));
    en.args.push_back(make_arg(DNNL_ARG_WEIGHTS, false, plain(g.wei, g.wei_tag), pd.weights_desc(), e));
    en.args.push_back(make_arg(DNNL_ARG_DIFF_SRC, true, plain(g.src, Tag::nchw), pd.diff_src_desc(), e));
  } else {
    const auto hint = forward_pd(g, bias, dnnl::prop_kind::forward_training, e);
    const auto src = chosen_or_any(g.src, Tag::nchw), wei = chosen_or_any(g.wei, g.wei_tag),
               dst = chosen_or_any(g.dst, Tag::nchw);
    const auto d = bias ? dnnl::convolution_backward_weights::desc(dnnl::algorithm::convolution_direct, src, wei,
                                                                    plain(g.bias, Tag::x), dst, g.strides,
                                                                    g.dilates, g.pad_l, g.pad_r)
                        : dnnl::convolution_backward_weights::desc(dnnl::algorithm::convolution_direct, src, wei,
                                                                    dst, g.strides, g.dilates, g.pad_l, g.pad_r);
    const dnnl::convolution_backward_weights::primitive_desc pd(d, e, hint);
    en.prim = dnnl::convolution_backward_weights(pd);
    en.impl = pd.impl_info_str();
    en.args.push_back(make_arg(DNNL_ARG_SRC, false, plain(g.src, Tag::nchw), pd.src_desc(), e));
    en.args.push_back(make_arg(DNNL_ARG_DIFF_DST, false, plain(g.dst, Tag::nchw), pd.diff_dst_desc(), e));
    en.args.push_back(
        make_arg(DNNL_ARG_DIFF_WEIGHTS, true, plain(g.wei, g.wei_tag), pd.diff_weights_desc(), e));
    if (bias)
      en.args.push_back(make_arg(DNNL_ARG_DIFF_BIAS, true, plain(g.bias, Tag::x), pd.diff_bias_desc(), e));
  }
  return en;
}

Entry& entry(Pass pass, const Shape& x, const Shape& w, bool bias, const Conv2dParams& p) {
  detail::sync_thread_count();
  Cache& c = cache();
  auto key = key_of(pass, x, w, bias, p);
  auto it = c.entries.find(key);
  if (it == c.entries.end()) {
    try {
      it = c.entries.emplace(std::move(key), make_entry(pass, x, w, bias, p)).first;
    } catch (const dnnl::error& err) {
      DEFT_INTERNAL_CHECK(false, "conv2d: oneDNN could not create a primitive for input {} and weight {}: {}",
                          shape_str(x), shape_str(w), err.what());
    }
  }
  return it->second;
}

// Runs the entry with one pointer per argument, in the order of en.args.
void execute(Entry& en, const std::vector<void*>& ptrs) {
  Cache& c = cache();
  std::unordered_map<int, memory> args;
  for (size_t i = 0; i < en.args.size(); ++i) {
    Arg& a = en.args[i];
    a.user.set_data_handle(ptrs[i]);
    if (a.reorder) a.inner.set_data_handle(c.scratch.get(i, a.inner.get_desc().get_size()));
    if (a.reorder && !a.output) a.reorder->execute(c.stream, a.user, a.inner);
    args.emplace(a.id, a.inner);
  }
  en.prim.execute(c.stream, args);
  for (Arg& a : en.args)
    if (a.reorder && a.output) a.reorder->execute(c.stream, a.inner, a.user);
  c.stream.wait();
}

Shape output_shape(const Shape& x, const Shape& w, const Conv2dParams& p) {
  const Geometry g = geometry(x, w, p);
  return Shape(g.dst.begin(), g.dst.end());
}

void* ptr(const Tensor& t) { return const_cast<float*>(t.data<float>()); }

}  // namespace

Tensor conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dParams& p, bool training,
                      bool relu) {
  const Pass pass = relu ? (training ? Pass::ForwardTrainingRelu : Pass::ForwardInferenceRelu)
                         : (training ? Pass::ForwardTraining : Pass::ForwardInference);
  Entry& en = entry(pass, x.shape(), w.shape(), b.defined(), p);
  Tensor y = Tensor::empty(output_shape(x.shape(), w.shape(), p));
  if (y.numel() == 0) return y;
  std::vector<void*> ptrs{ptr(x), ptr(w)};
  if (b.defined()) ptrs.push_back(ptr(b));
  ptrs.push_back(ptr(y));
  execute(en, ptrs);
  if (en.relu_after) {
    float* __restrict py = y.data<float>();
    parallel_for(0, y.numel(), 1 << 16, [=](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) py[i] = py[i] > 0.0f ? py[i] : 0.0f;
    });
  }
  return y;
}

Tensor conv2d_backward_data(const Tensor& g, const Tensor& w, const Shape& x_shape, const Conv2dParams& p) {
  Entry& en = entry(Pass::BackwardData, x_shape, w.shape(), false, p);
  Tensor gx = Tensor::empty(x_shape);
  if (gx.numel() == 0) return gx;
  execute(en, {ptr(g), ptr(w), ptr(gx)});
  return gx;
}

void conv2d_backward_weights(const Tensor& x, const Tensor& g, const Shape& w_shape, const Conv2dParams& p,
                             Tensor* gw, Tensor* gb) {
  Entry& en = entry(Pass::BackwardWeights, x.shape(), w_shape, gb != nullptr, p);
  *gw = Tensor::empty(w_shape);
  if (gb) *gb = Tensor::empty({w_shape[0]});
  if (x.numel() == 0 || g.numel() == 0) {
    gw->fill(0.0);
    if (gb) gb->fill(0.0);
    return;
  }
  std::vector<void*> ptrs{ptr(x), ptr(g), ptr(*gw)};
  if (gb) ptrs.push_back(ptr(*gb));
  execute(en, ptrs);
}

std::string conv2d_implementation(const Shape& x_shape, const Shape& w_shape, bool bias, const Conv2dParams& p) {
  return entry(Pass::ForwardTraining, x_shape, w_shape, bias, p).impl;
}

}  // namespace deft::kernel
