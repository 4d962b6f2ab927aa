#include "deft/nn/conv.h"

#include <fmt/format.h>

#include <algorithm>

#include "deft/autograd/ops.h"
#include "deft/autograd/ops_conv.h"
#include "deft/autograd/ops_nn.h"
#include "deft/tensor/error.h"

namespace deft::nn {

namespace {

bool positive(Size2 s) { return s.h > 0 && s.w > 0; }
std::string size_str(Size2 s) { return fmt::format("{}x{}", s.h, s.w); }

// PyTorch's pooling output size, with the padding before and after given apart.
int64_t pool_output_size(int64_t in, int64_t kernel, int64_t stride, int64_t before, int64_t after,
                         bool ceil_mode) {
  const int64_t span = in + before + after - kernel;
  int64_t out = (ceil_mode ? (span + stride - 1) / stride : span / stride) + 1;
  // The last window must start inside the input or its leading padding.
  if (ceil_mode && (out - 1) * stride >= in + before) --out;
  return out;
}

void check_image_input(const char* layer, const Shape& input) {
  DEFT_CHECK_SHAPE(input.size() == 3, "{}: expects per-example images [C,H,W], got {}", layer,
                   shape_str(input));
}

}  // namespace

// ---- Padding -------------------------------------------------------------------------------

Padding::Padding(const char* mode) : Padding(std::string(mode)) {}

Padding::Padding(const std::string& mode) {
  DEFT_CHECK(mode == "valid" || mode == "same", "padding must be \"valid\", \"same\" or sizes, got \"{}\"",
             mode);
  same_ = mode == "same";
}

Padding::Padding(int64_t top, int64_t bottom, int64_t left, int64_t right) : pads_{top, bottom, left, right} {
  for (int64_t p : pads_) DEFT_CHECK(p >= 0, "padding must be >= 0, got {}", str());
}

std::array<int64_t, 4> Padding::resolve(int64_t h, int64_t w, Size2 kernel, Size2 stride,
                                        Size2 dilation) const {
  if (!same_) return pads_;
  const auto ph = same_padding(h, kernel.h, stride.h, dilation.h);
  const auto pw = same_padding(w, kernel.w, stride.w, dilation.w);
  return {ph[0], ph[1], pw[0], pw[1]};
}

nlohmann::json Padding::to_json() const {
  const auto [t, b, l, r] = pads_;
  if (same_) return "same";
  if (t == 0 && b == 0 && l == 0 && r == 0) return "valid";
  if (t == b && l == r) return t == l ? nlohmann::json(t) : nlohmann::json::array({t, l});
  return nlohmann::json::array({t, b, l, r});
}

Padding Padding::from_json(const nlohmann::json& j, const std::string& owner) {
  auto is_int = [](const nlohmann::json& v) { return v.is_number_integer() && v.get<int64_t>() >= 0; };
  if (j.is_string()) {
    const std::string s = j.get<std::string>();
    DEFT_CHECK(s == "valid" || s == "same",
               "{}: padding must be \"valid\", \"same\", an int, [h, w] or "
               "[top, bottom, left, right], got {}",
               owner, j.dump());
    return Padding(s);
  }
  if (is_int(j)) return Padding(j.get<int64_t>());
  if (j.is_array() && (j.size() == 1 || j.size() == 2 || j.size() == 4) &&
      std::all_of(j.begin(), j.end(), is_int)) {
    const auto v = j.get<std::vector<int64_t>>();
    if (v.size() == 1) return Padding(v[0]);
    if (v.size() == 2) return Padding(v[0], v[1]);
    return Padding(v[0], v[1], v[2], v[3]);
  }
  fail("{}: padding must be \"valid\", \"same\", an int >= 0, [h, w] or [top, bottom, left, right], got {}",
       owner, j.dump());
}

std::string Padding::str() const {
  if (same_) return "same";
  return fmt::format("[{},{},{},{}]", pads_[0], pads_[1], pads_[2], pads_[3]);
}

nlohmann::json size2_to_json(Size2 s) {
  return s.h == s.w ? nlohmann::json(s.h) : nlohmann::json::array({s.h, s.w});
}

Size2 size2_from_json(const nlohmann::json& j, const std::string& owner) {
  if (j.is_number_integer()) return Size2(j.get<int64_t>());
  if (j.is_array() && (j.size() == 1 || j.size() == 2) &&
      std::all_of(j.begin(), j.end(), [](const nlohmann::json& v) { return v.is_number_integer(); })) {
    const auto v = j.get<std::vector<int64_t>>();
    return v.size() == 1 ? Size2(v[0]) : Size2(v[0], v[1]);
  }
  fail("{}: expected an int or [h, w], got {}", owner, j.dump());
}

// ---- Conv2d -------------------------------------------------------------------------------

Conv2d::Conv2d(int64_t filters, Size2 kernel_size, Conv2dOptions options)
    : filters_(filters), kernel_size_(kernel_size), opt_(std::move(options)) {
  DEFT_CHECK(filters_ > 0, "Conv2d: filters must be positive, got {}", filters_);
  DEFT_CHECK(positive(kernel_size_), "Conv2d: kernel_size must be positive, got {}", size_str(kernel_size_));
  DEFT_CHECK(positive(opt_.stride), "Conv2d: stride must be positive, got {}", size_str(opt_.stride));
  DEFT_CHECK(positive(opt_.dilation), "Conv2d: dilation must be positive, got {}", size_str(opt_.dilation));
  DEFT_CHECK(opt_.groups > 0 && filters_ % opt_.groups == 0,
             "Conv2d: groups ({}) must be positive and divide filters ({})", opt_.groups, filters_);
  DEFT_CHECK(is_activation_name(opt_.activation), "Conv2d: unknown activation '{}'", opt_.activation);
  check_initialiser(opt_.kernel_init);
  check_initialiser(opt_.bias_init);
}

Shape Conv2d::build_impl(const Shape& input, Generator& gen) {
  check_image_input("Conv2d", input);
  const int64_t c = input[0], h = input[1], w = input[2];
  const Size2 k = kernel_size_, s = opt_.stride, d = opt_.dilation;
  DEFT_CHECK_SHAPE(c % opt_.groups == 0, "Conv2d: input channels ({}, input {}) do not divide by groups ({})",
                   c, shape_str(input), opt_.groups);
  const auto pad = opt_.padding.resolve(h, w, k, s, d);
  const int64_t span_h = d.h * (k.h - 1) + 1, span_w = d.w * (k.w - 1) + 1;
  DEFT_CHECK_SHAPE(
      h + pad[0] + pad[1] >= span_h && w + pad[2] + pad[3] >= span_w,
      "Conv2d: kernel {} (dilation {}) spans {}x{}, larger than the padded input (input {}, padding {})",
      size_str(k), size_str(d), span_h, span_w, shape_str(input), opt_.padding.str());
  const int64_t in_per_group = c / opt_.groups;
  const int64_t fan_in = in_per_group * k.h * k.w, fan_out = filters_ * k.h * k.w;
  kernel_ = parameter(initialise(opt_.kernel_init, {filters_, in_per_group, k.h, k.w}, fan_in, fan_out, gen));
  if (opt_.use_bias) bias_ = parameter(initialise(opt_.bias_init, {filters_}, fan_in, fan_out, gen));
  return {filters_, conv_output_size(h, k.h, s.h, pad[0] + pad[1], d.h),
          conv_output_size(w, k.w, s.w, pad[2] + pad[3], d.w)};
}

Tensor Conv2d::forward(const Tensor& x) {
  const int64_t c = kernel_.size(1) * opt_.groups;
  DEFT_CHECK_SHAPE(x.dim() == 4 && x.size(1) == c, "Conv2d: expects inputs [N,{},H,W], got {}", c,
                   shape_str(x.shape()));
  Conv2dParams p;
  p.stride = {opt_.stride.h, opt_.stride.w};
  p.padding = opt_.padding.resolve(x.size(2), x.size(3), kernel_size_, opt_.stride, opt_.dilation);
  p.dilation = {opt_.dilation.h, opt_.dilation.w};
  p.groups = opt_.groups;
  // ReLU runs as a oneDNN post-op of the convolution, saving a pass over the output.
  if (opt_.activation == "relu") return conv2d_relu(x, kernel_, bias_, p);
  return activate(opt_.activation, conv2d(x, kernel_, bias_, p));
}

nlohmann::json Conv2d::config() const {
  return {{"filters", filters_},
          {"kernel_size", size2_to_json(kernel_size_)},
          {"stride", size2_to_json(opt_.stride)},
          {"padding", opt_.padding.to_json()},
          {"dilation", size2_to_json(opt_.dilation)},
          {"groups", opt_.groups},
          {"use_bias", opt_.use_bias},
          {"activation", opt_.activation},
          {"kernel_init", opt_.kernel_init},
          {"bias_init", opt_.bias_init}};
}

// ---- pooling ------------------------------------------------------------------------------

Pool2d::Pool2d(const char* name, bool average, Size2 kernel, Pool2dOptions options)
    : name_(name), average_(average), kernel_(kernel), opt_(options) {
  DEFT_CHECK(positive(kernel_), "{}: kernel_size must be positive, got {}", name_, size_str(kernel_));
  if (opt_.stride == Size2(0)) opt_.stride = kernel_;
  DEFT_CHECK(positive(opt_.stride), "{}: stride must be positive (or 0 for the kernel size), got {}", name_,
             size_str(opt_.stride));
  if (!opt_.padding.same()) {
    const auto p = opt_.padding.resolve(0, 0, kernel_, opt_.stride);
    DEFT_CHECK(
        p[0] <= kernel_.h / 2 && p[1] <= kernel_.h / 2 && p[2] <= kernel_.w / 2 && p[3] <= kernel_.w / 2,
        "{}: padding {} must be at most half the kernel {}", name_, opt_.padding.str(), size_str(kernel_));
  }
}

Shape Pool2d::build_impl(const Shape& input, Generator&) {
  check_image_input(name_, input);
  const int64_t h = input[1], w = input[2];
  const auto pad = opt_.padding.resolve(h, w, kernel_, opt_.stride);
  DEFT_CHECK_SHAPE(h + pad[0] + pad[1] >= kernel_.h && w + pad[2] + pad[3] >= kernel_.w,
                   "{}: kernel {} is larger than the padded input (input {}, padding {})", name_,
                   size_str(kernel_), shape_str(input), opt_.padding.str());
  return {input[0], pool_output_size(h, kernel_.h, opt_.stride.h, pad[0], pad[1], opt_.ceil_mode),
          pool_output_size(w, kernel_.w, opt_.stride.w, pad[2], pad[3], opt_.ceil_mode)};
}

Tensor Pool2d::forward(const Tensor& x) {
  DEFT_CHECK_SHAPE(x.dim() == 4, "{}: expects inputs [N,C,H,W], got {}", name_, shape_str(x.shape()));
  Pool2dParams p;
  p.kernel = {kernel_.h, kernel_.w};
  p.stride = {opt_.stride.h, opt_.stride.w};
  p.padding = opt_.padding.resolve(x.size(2), x.size(3), kernel_, opt_.stride);
  p.ceil_mode = opt_.ceil_mode;
  p.count_include_pad = opt_.count_include_pad;
  return average_ ? avg_pool2d(x, p) : max_pool2d(x, p);
}

nlohmann::json Pool2d::config() const {
  nlohmann::json j{{"kernel_size", size2_to_json(kernel_)},
                   {"stride", size2_to_json(opt_.stride)},
                   {"padding", opt_.padding.to_json()},
                   {"ceil_mode", opt_.ceil_mode}};
  if (average_) j["count_include_pad"] = opt_.count_include_pad;
  return j;
}

AdaptiveAvgPool2d::AdaptiveAvgPool2d(Size2 output_size) : output_size_(output_size) {
  DEFT_CHECK(positive(output_size_), "AdaptiveAvgPool2d: output_size must be positive, got {}",
             size_str(output_size_));
}

Shape AdaptiveAvgPool2d::build_impl(const Shape& input, Generator&) {
  check_image_input("AdaptiveAvgPool2d", input);
  return {input[0], output_size_.h, output_size_.w};
}

Tensor AdaptiveAvgPool2d::forward(const Tensor& x) {
  DEFT_CHECK_SHAPE(x.dim() == 4, "AdaptiveAvgPool2d: expects inputs [N,C,H,W], got {}", shape_str(x.shape()));
  return adaptive_avg_pool2d(x, {output_size_.h, output_size_.w});
}

nlohmann::json AdaptiveAvgPool2d::config() const { return {{"output_size", size2_to_json(output_size_)}}; }

Shape GlobalAvgPool2d::build_impl(const Shape& input, Generator&) {
  check_image_input("GlobalAvgPool2d", input);
  return {input[0]};
}

Tensor GlobalAvgPool2d::forward(const Tensor& x) {
  DEFT_CHECK_SHAPE(x.dim() == 4, "GlobalAvgPool2d: expects inputs [N,C,H,W], got {}", shape_str(x.shape()));
  return mean(x, {2, 3});
}

// ---- BatchNorm2d / Dropout2d --------------------------------------------------------------------

Shape Dropout2d::build_impl(const Shape& input, Generator& gen) {
  check_image_input("Dropout2d", input);
  return Dropout::build_impl(input, gen);
}

Tensor Dropout2d::drop(const Tensor& x, float p, Generator& gen) const { return dropout2d(x, p, gen); }

// ---- Add / Concat ---------------------------------------------------------------------------

namespace {
std::vector<std::shared_ptr<Module>> unwrap(std::initializer_list<Layer> layers) {
  std::vector<std::shared_ptr<Module>> out;
  for (const Layer& l : layers) out.push_back(l.get());
  return out;
}
}  // namespace

Branches::Branches(const char* name, std::vector<std::shared_ptr<Module>> branches)
    : name_(name), branches_(std::move(branches)) {
  DEFT_CHECK(branches_.size() >= 2, "{}: needs at least two branches, got {}", name_, branches_.size());
  for (auto& b : branches_) DEFT_CHECK(b != nullptr, "{}: null branch", name_);
}

std::vector<std::pair<std::string, Module*>> Branches::children() const {
  std::vector<std::pair<std::string, Module*>> out;
  for (size_t i = 0; i < branches_.size(); ++i) out.emplace_back(std::to_string(i), branches_[i].get());
  return out;
}

nlohmann::json Branches::config() const {
  nlohmann::json specs = nlohmann::json::array();
  for (auto& b : branches_) specs.push_back(module_spec(*b));
  return {{"branches", specs}};
}

std::vector<Shape> Branches::build_branches(const Shape& input, Generator& gen) {
  std::vector<Shape> shapes;
  for (size_t i = 0; i < branches_.size(); ++i) {
    try {
      shapes.push_back(branches_[i]->build(input, gen));
    } catch (const ShapeError& e) {
      fail<ShapeError>("{}: branch {} ({}): {}", name_, i, branches_[i]->type(), e.what());
    }
  }
  return shapes;
}

std::vector<Tensor> Branches::forward_branches(const Tensor& x) {
  std::vector<Tensor> outs;
  outs.reserve(branches_.size());
  for (auto& b : branches_) outs.push_back(b->forward(x));
  return outs;
}

std::string Branches::describe(const std::vector<Shape>& shapes) const {
  std::string out;
  for (size_t i = 0; i < shapes.size(); ++i)
    out += fmt::format("{}branch {} ({}) {}", i ? ", " : "", i, branches_[i]->type(), shape_str(shapes[i]));
  return out;
}

Add::Add(std::initializer_list<Layer> branches, std::string activation)
    : Add(unwrap(branches), std::move(activation)) {}

Add::Add(std::vector<std::shared_ptr<Module>> branches, std::string activation)
    : Branches("Add", std::move(branches)), activation_(std::move(activation)) {
  DEFT_CHECK(is_activation_name(activation_), "Add: unknown activation '{}'", activation_);
}

Shape Add::build_impl(const Shape& input, Generator& gen) {
  const std::vector<Shape> shapes = build_branches(input, gen);
  for (const Shape& s : shapes)
    DEFT_CHECK_SHAPE(s == shapes[0], "Add: the branches' outputs must have one shape, got {} (input {})",
                     describe(shapes), shape_str(input));
  return shapes[0];
}

Tensor Add::forward(const Tensor& x) {
  const std::vector<Tensor> outs = forward_branches(x);
  Tensor y = outs[0];
  for (size_t i = 1; i < outs.size(); ++i) y = add(y, outs[i]);
  return activate(activation_, y);
}

nlohmann::json Add::config() const {
  nlohmann::json j = Branches::config();
  j["activation"] = activation_;
  return j;
}

Concat::Concat(std::initializer_list<Layer> branches) : Concat(unwrap(branches)) {}

Concat::Concat(std::vector<std::shared_ptr<Module>> branches) : Branches("Concat", std::move(branches)) {}

Shape Concat::build_impl(const Shape& input, Generator& gen) {
  const std::vector<Shape> shapes = build_branches(input, gen);
  Shape out = shapes[0];
  DEFT_CHECK_SHAPE(!out.empty(), "Concat: the branches' outputs need a channel axis, got {}",
                   describe(shapes));
  for (size_t i = 1; i < shapes.size(); ++i) {
    const Shape& s = shapes[i];
    DEFT_CHECK_SHAPE(
        s.size() == out.size() && std::equal(s.begin() + 1, s.end(), shapes[0].begin() + 1),
        "Concat: the branches' outputs must match on every axis but the channels, got {} (input {})",
        describe(shapes), shape_str(input));
    out[0] += s[0];
  }
  return out;
}

Tensor Concat::forward(const Tensor& x) { return cat(forward_branches(x), 1); }

}  // namespace deft::nn
