// Model families: whole networks by name, for a per-example input shape, a number of
// outputs and a few knobs. `deft train --model NAME` builds these, and the tuner turns
// their knobs (model_families() lists them with search ranges).
//
//   auto net = nn::make_model("resnet_small", {1, 28, 28}, 10, {.width = 1.0, .depth = 20});
//   Model model(net);
//
// Families (knobs: width multiplies every channel and unit count, rounded, at least 1):
//   linear        Flatten -> Dense(out)                                     (no knobs)
//   mlp           Flatten -> [Dense(h, activation) -> Dropout] per hidden width -> Dense(out)
//                 hidden [128], activation relu, dropout 0.2   (the Keras Fashion-MNIST example)
//   lenet5        LeCun et al. 1998, modernised: Conv 6 5x5 same + act -> AvgPool 2 -> Conv 16
//                 5x5 + act -> AvgPool 2 -> Dense 120 -> Dense 84 -> Dense(out); activation
//                 relu, dropout 0 (after each hidden Dense). Images of at least 12x12.
//   simple_cnn    depth blocks of Conv(32*2^b, 3x3 same, relu) -> MaxPool 2, then Dense 128 +
//                 relu -> Dropout -> Dense(out); depth 2 (1-4), dropout 0.25. At width 1 and
//                 depth 2: the TensorFlow tutorial CNN and bench/ CNN (421,642 parameters for
//                 1x28x28 and 10 outputs).
//   vgg_small     depth blocks of [Conv(32*2^b, 3x3 same, no bias) -> BatchNorm2d -> ReLU] x 2
//                 -> MaxPool 2, then Flatten -> Dense 128 (no bias) -> BatchNorm1d -> ReLU ->
//                 Dropout -> Dense(out); depth 3 (1-5), dropout 0.3.
//   resnet_small  He et al. 2016 section 4.2 (the CIFAR ResNets): Conv 16 3x3 + BN + ReLU, three
//                 stages of n basic blocks (16, 32, 64 channels; stride 2 first in stages 2
//                 and 3), depth = 6n + 2 in {8, 14, 20} (default 20); a block is Add{Sequential
//                 {Conv 3x3, BN, ReLU, Conv 3x3, BN}, shortcut} then ReLU, the shortcut an
//                 Identity or, where the shape changes, Conv 1x1 stride 2 + BN (option B).
//                 Then GlobalAvgPool2d -> Dropout (dropout 0: none) -> Dense(out). Convs
//                 have no bias and he_normal kernels. ResNet-20 for 3x32x32 and 10 outputs
//                 has 272,474 parameters.
// Image families need per-example inputs [C,H,W]; anything else is an InputError.
#pragma once
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "deft/nn/module.h"

namespace deft::nn {

struct ModelKnobs {
  double width = 1.0;                // channel / unit multiplier, > 0
  std::optional<int64_t> depth;      // the family's default when empty; only for families with depth
  std::optional<double> dropout;     // the family's default when empty; in [0, 1)
  std::vector<int64_t> hidden{128};  // mlp: hidden widths (before width)
  std::string activation = "relu";   // mlp, lenet5, simple_cnn
};

// A knob as the tuner sees it.
struct KnobSpec {
  std::string name;  // the ModelKnobs field and config key: width, depth, dropout, hidden, activation
  std::string kind;  // "float", "int", "choice" (one of `choices`) or "int_list" (hidden widths)
  nlohmann::json default_value;
  nlohmann::json choices;    // "choice": the values; otherwise null
  double low = 0, high = 0;  // "float" / "int" / "int_list": a sensible search range
  bool log = false;          // search the range on a log scale
  std::string help;
};

struct ModelFamily {
  std::string name;
  std::string description;
  bool needs_images = false;    // per-example input [C,H,W]
  std::vector<KnobSpec> knobs;  // the knobs this family reads; others are ignored (depth: an error)
};

// Every family, in the order of the comment above.
const std::vector<ModelFamily>& model_families();
std::vector<std::string> model_family_names();
bool is_model_family(const std::string& name);
// InputError naming `name` and the valid names when it is not a family.
const ModelFamily& model_family(const std::string& name);

// `knobs` with the family's defaults filled in (depth, dropout). InputError for an
// unknown family, a depth given to a family without one, or a value out of range.
ModelKnobs resolve_knobs(const std::string& family, ModelKnobs knobs);

// The network of `family` for per-example `input` and `num_outputs` outputs (unbuilt;
// Model::fit or build() creates the weights).
std::shared_ptr<Sequential> make_model(const std::string& family, const Shape& input, int64_t num_outputs,
                                       const ModelKnobs& knobs = {});

}  // namespace deft::nn
