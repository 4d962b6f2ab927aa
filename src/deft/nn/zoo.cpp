#include "deft/nn/zoo.h"

#include <fmt/format.h>

#include <cmath>

#include "deft/nn/conv.h"
#include "deft/nn/layers.h"
#include "deft/tensor/error.h"

namespace deft::nn {

namespace {

using json = nlohmann::json;

KnobSpec width_knob() {
  return {.name = "width",
          .kind = "float",
          .default_value = 1.0,
          .low = 0.25,
          .high = 2.0,
          .log = true,
          .help = "multiplies every channel and unit count"};
}
KnobSpec dropout_knob(double fallback, const char* where) {
  return {.name = "dropout",
          .kind = "float",
          .default_value = fallback,
          .low = 0.0,
          .high = 0.5,
          .help = fmt::format("dropout rate {}", where)};
}
KnobSpec depth_int_knob(int64_t fallback, int64_t low, int64_t high, const char* what) {
  return {.name = "depth",
          .kind = "int",
          .default_value = fallback,
          .low = static_cast<double>(low),
          .high = static_cast<double>(high),
          .help = what};
}
KnobSpec activation_knob() {
  return {.name = "activation",
          .kind = "choice",
          .default_value = "relu",
          .choices = json::array({"relu", "gelu", "silu", "elu", "tanh"}),
          .help = "hidden activation"};
}

const KnobSpec* find_knob(const ModelFamily& f, const std::string& name) {
  for (const KnobSpec& k : f.knobs)
    if (k.name == name) return &k;
  return nullptr;
}

int64_t scaled(int64_t n, double width) {
  return std::max<int64_t>(1, std::llround(static_cast<double>(n) * width));
}

void require_images(const std::string& family, const Shape& input, int64_t min_size) {
  DEFT_CHECK(input.size() == 3,
             "model {} needs images (per-example input [C,H,W]), got per-example shape {}; use mlp or linear "
             "for tables",
             family, shape_str(input));
  DEFT_CHECK_SHAPE(input[1] >= min_size && input[2] >= min_size,
                   "model {} needs images of at least {}x{}, got {}", family, min_size, min_size,
                   shape_str(input));
}

std::shared_ptr<Sequential> linear_net(int64_t outputs) {
  auto net = std::make_shared<Sequential>();
  net->add(Flatten());
  net->add(Dense(outputs));
  return net;
}

std::shared_ptr<Sequential> mlp_net(int64_t outputs, const ModelKnobs& k) {
  auto net = std::make_shared<Sequential>();
  net->add(Flatten());
  for (int64_t h : k.hidden) {
    net->add(Dense(scaled(h, k.width), k.activation));
    if (*k.dropout > 0) net->add(Dropout(*k.dropout));
  }
  net->add(Dense(outputs));
  return net;
}

std::shared_ptr<Sequential> lenet5_net(int64_t outputs, const ModelKnobs& k) {
  const double w = k.width;
  auto net = std::make_shared<Sequential>();
  net->add(Conv2d(scaled(6, w), 5, {.padding = "same", .activation = k.activation}));
  net->add(AvgPool2d(2));
  net->add(Conv2d(scaled(16, w), 5, {.activation = k.activation}));
  net->add(AvgPool2d(2));
  net->add(Flatten());
  for (int64_t units : {120, 84}) {
    net->add(Dense(scaled(units, w), k.activation));
    if (*k.dropout > 0) net->add(Dropout(*k.dropout));
  }
  net->add(Dense(outputs));
  return net;
}

std::shared_ptr<Sequential> simple_cnn_net(int64_t outputs, const ModelKnobs& k) {
  auto net = std::make_shared<Sequential>();
  for (int64_t b = 0; b < *k.depth; ++b) {
    net->add(Conv2d(scaled(32 << b, k.width), 3, {.padding = "same", .activation = k.activation}));
    net->add(MaxPool2d(2));
  }
  net->add(Flatten());
  net->add(Dense(scaled(128, k.width), k.activation));
  if (*k.dropout > 0) net->add(Dropout(*k.dropout));
  net->add(Dense(outputs));
  return net;
}

Conv2d conv_no_bias(int64_t filters, Size2 kernel, int64_t stride, Padding padding) {
  return Conv2d(filters, kernel,
                {.stride = stride, .padding = padding, .use_bias = false, .kernel_init = "he_normal"});
}

std::shared_ptr<Sequential> vgg_small_net(int64_t outputs, const ModelKnobs& k) {
  auto net = std::make_shared<Sequential>();
  for (int64_t b = 0; b < *k.depth; ++b) {
    const int64_t c = scaled(32 << b, k.width);
    for (int rep = 0; rep < 2; ++rep) {
      net->add(conv_no_bias(c, 3, 1, "same"));
      net->add(BatchNorm2d());
      net->add(ReLU());
    }
    net->add(MaxPool2d(2));
  }
  net->add(Flatten());
  net->add(Dense(scaled(128, k.width), "", {.use_bias = false}));
  net->add(BatchNorm1d());
  net->add(ReLU());
  if (*k.dropout > 0) net->add(Dropout(*k.dropout));
  net->add(Dense(outputs));
  return net;
}

// Conv 3x3 -> BN -> ReLU -> Conv 3x3 -> BN, plus the shortcut, then ReLU.
Add basic_block(int64_t in, int64_t out, int64_t stride) {
  auto residual = std::make_shared<Sequential>(Sequential{conv_no_bias(out, 3, stride, 1), BatchNorm2d(),
                                                          ReLU(), conv_no_bias(out, 3, 1, 1), BatchNorm2d()});
  std::shared_ptr<Module> shortcut;
  if (stride != 1 || in != out)
    shortcut = std::make_shared<Sequential>(Sequential{conv_no_bias(out, 1, stride, 0), BatchNorm2d()});
  else
    shortcut = std::make_shared<Identity>();
  return Add(std::vector<std::shared_ptr<Module>>{residual, shortcut}, "relu");
}

std::shared_ptr<Sequential> resnet_small_net(int64_t outputs, const ModelKnobs& k) {
  const int64_t blocks = (*k.depth - 2) / 6;
  auto net = std::make_shared<Sequential>();
  int64_t channels = scaled(16, k.width);
  net->add(conv_no_bias(channels, 3, 1, 1));
  net->add(BatchNorm2d());
  net->add(ReLU());
  for (int64_t stage = 0; stage < 3; ++stage) {
    const int64_t out = scaled(16 << stage, k.width);
    for (int64_t b = 0; b < blocks; ++b) {
      net->add(basic_block(channels, out, stage > 0 && b == 0 ? 2 : 1));
      channels = out;
    }
  }
  net->add(GlobalAvgPool2d());
  if (*k.dropout > 0) net->add(Dropout(*k.dropout));
  net->add(Dense(outputs));
  return net;
}

}  // namespace

const std::vector<ModelFamily>& model_families() {
  static const std::vector<ModelFamily> families{
      {.name = "linear", .description = "Flatten -> Dense(outputs): a linear / logistic baseline"},
      {.name = "mlp",
       .description = "Flatten -> [Dense(hidden, activation) -> Dropout] per hidden layer -> Dense(outputs)",
       .knobs = {{.name = "hidden",
                  .kind = "int_list",
                  .default_value = json::array({128}),
                  .low = 16,
                  .high = 1024,
                  .log = true,
                  .help = "hidden layer widths"},
                 width_knob(),
                 activation_knob(),
                 dropout_knob(0.2, "after each hidden layer")}},
      {.name = "lenet5",
       .description = "LeCun's LeNet-5 (ReLU, average pooling): 2 conv + pool, Dense 120, 84",
       .needs_images = true,
       .knobs = {width_knob(), activation_knob(), dropout_knob(0.0, "after each hidden Dense")}},
      {.name = "simple_cnn",
       .description =
           "blocks of Conv 3x3 + ReLU -> MaxPool 2, then Dense 128 -> Dropout (the TensorFlow tutorial CNN)",
       .needs_images = true,
       .knobs = {width_knob(), depth_int_knob(2, 1, 3, "conv blocks (channels 32, 64, 128, ...)"),
                 activation_knob(), dropout_knob(0.25, "before the output layer")}},
      {.name = "vgg_small",
       .description =
           "blocks of [Conv 3x3 -> BatchNorm -> ReLU] x 2 -> MaxPool 2, then Dense 128 + BatchNorm",
       .needs_images = true,
       .knobs = {width_knob(), depth_int_knob(3, 1, 4, "conv blocks (channels 32, 64, 128, ...)"),
                 dropout_knob(0.3, "before the output layer")}},
      {.name = "resnet_small",
       .description =
           "CIFAR-style ResNet (He et al. 2016): 3 stages of basic residual blocks, global average pool",
       .needs_images = true,
       .knobs = {width_knob(),
                 {.name = "depth",
                  .kind = "choice",
                  .default_value = 20,
                  .choices = json::array({8, 14, 20}),
                  .help = "layers: 6n + 2 for n blocks per stage"},
                 dropout_knob(0.0, "before the output layer")}},
  };
  return families;
}

std::vector<std::string> model_family_names() {
  std::vector<std::string> out;
  for (const ModelFamily& f : model_families()) out.push_back(f.name);
  return out;
}

bool is_model_family(const std::string& name) {
  for (const ModelFamily& f : model_families())
    if (f.name == name) return true;
  return false;
}

const ModelFamily& model_family(const std::string& name) {
  for (const ModelFamily& f : model_families())
    if (f.name == name) return f;
  fail("unknown model '{}' (valid: {})", name, fmt::join(model_family_names(), ", "));
}

ModelKnobs resolve_knobs(const std::string& family, ModelKnobs k) {
  const ModelFamily& f = model_family(family);
  DEFT_CHECK(std::isfinite(k.width) && k.width > 0 && k.width <= 64,
             "model {}: width must be in (0, 64], got {}", family, k.width);
  const KnobSpec* depth = find_knob(f, "depth");
  if (!depth) {
    DEFT_CHECK(!k.depth,
               "model {} has no depth knob (families with one: simple_cnn, vgg_small, resnet_small)", family);
  } else if (!k.depth) {
    k.depth = depth->default_value.get<int64_t>();
  } else if (depth->kind == "choice") {
    bool ok = false;
    for (const json& c : depth->choices) ok = ok || c.get<int64_t>() == *k.depth;
    DEFT_CHECK(ok, "model {}: depth must be one of {}, got {}", family, depth->choices.dump(), *k.depth);
  } else {
    // The search range is what suits 28x28 images; larger images take one more block.
    const auto high = static_cast<int64_t>(depth->high) + 1;
    DEFT_CHECK(*k.depth >= 1 && *k.depth <= high, "model {}: depth must be in [1, {}], got {}", family, high,
               *k.depth);
  }
  if (const KnobSpec* d = find_knob(f, "dropout")) {
    if (!k.dropout) k.dropout = d->default_value.get<double>();
    DEFT_CHECK(*k.dropout >= 0 && *k.dropout < 1, "model {}: dropout must be in [0, 1), got {}", family,
               *k.dropout);
  }
  if (find_knob(f, "activation"))
    DEFT_CHECK(is_activation_name(k.activation), "model {}: unknown activation '{}'", family, k.activation);
  if (find_knob(f, "hidden"))
    for (int64_t h : k.hidden)
      DEFT_CHECK(h > 0, "model {}: hidden widths must be positive, got {}", family, h);
  return k;
}

std::shared_ptr<Sequential> make_model(const std::string& family, const Shape& input, int64_t num_outputs,
                                       const ModelKnobs& knobs) {
  const ModelKnobs k = resolve_knobs(family, knobs);
  DEFT_CHECK(num_outputs > 0, "model {}: needs at least one output, got {}", family, num_outputs);
  if (family == "linear") return linear_net(num_outputs);
  if (family == "mlp") return mlp_net(num_outputs, k);
  if (family == "lenet5") {
    require_images(family, input, 12);
    return lenet5_net(num_outputs, k);
  }
  if (family == "simple_cnn") {
    require_images(family, input, int64_t{1} << *k.depth);
    return simple_cnn_net(num_outputs, k);
  }
  if (family == "vgg_small") {
    require_images(family, input, int64_t{1} << *k.depth);
    return vgg_small_net(num_outputs, k);
  }
  require_images(family, input, 1);
  return resnet_small_net(num_outputs, k);
}

}  // namespace deft::nn
