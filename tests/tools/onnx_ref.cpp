// The deft side of the ONNX agreement test (tests/deploy/onnx_test.sh):
//
//   onnx_ref MODEL INPUT OUT.npy [RAW.npy]
//     What deft predicts for the raw examples in INPUT (.npy, or a .csv table read with
//     the model's schema, whose coded raw columns go to RAW.npy), at full float32
//     precision: probabilities [N, classes] (a one-sigmoid binary model as [1-p, p], as
//     the ONNX graph gives it) or, for regression, the predictions.
//   onnx_ref layers OUT_DIR
//     Networks that use every layer type and configuration the exporter handles (conv
//     groups, dilation, "same" with stride 2, unfolded and folded BatchNorm, ceil_mode
//     pooling, LayerNorm, GELU/SiLU/ELU/..., Add, Concat, Reshape, Embedding), with
//     non-trivial normalisation statistics, exported at opsets 13 and 17 (BatchNorm
//     folded and kept), and a table (clipping, min-max scaling, ordinal categories,
//     NaN/inf/unknown/fractional codes) next to the raw inputs and deft's outputs:
//     OUT_DIR/<name>_opset{13,17}[_bn].onnx, <name>.input.npy, <name>.ref.npy.
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

#include "deft/autograd/graph.h"
#include "deft/autograd/ops.h"
#include "deft/data/csv.h"
#include "deft/data/npy.h"
#include "deft/deploy/onnx_export.h"
#include "deft/nn/conv.h"
#include "deft/nn/layers.h"
#include "deft/tensor/error.h"
#include "deft/tensor/file_io.h"
#include "deft/train/model.h"
#include "deft/train/run.h"

namespace {

using namespace deft;

int predict_reference(const std::string& model_path, const std::string& input, const std::string& out,
                      const std::string& raw_out) {
  auto model = train::Model::load(model_path);
  Tensor x;
  if (input.ends_with(".csv")) {
    auto table = train::read_table_for(model, input);
    DEFT_CHECK(table.has_value(), "{}: the model was not trained on a table", input);
    x = table->features;
    DEFT_CHECK(!raw_out.empty(), "a .csv input needs RAW.npy for its coded columns");
    data::write_npy(raw_out, x);
  } else {
    x = data::read_npy(input);
  }
  Tensor p = model.predict_proba(x).contiguous_copy();
  if (model.task() == data::Task::Classification && p.dim() == 2 && p.size(1) == 1) {
    const int64_t n = p.size(0);
    std::vector<float> two(static_cast<size_t>(2 * n));
    for (int64_t i = 0; i < n; ++i) {
      two[static_cast<size_t>(2 * i)] = 1.0f - p.data<float>()[i];
      two[static_cast<size_t>(2 * i + 1)] = p.data<float>()[i];
    }
    p = Tensor::from_vector(two, {n, 2});
  }
  data::write_npy(out, p);
  return 0;
}

// Gives every BatchNorm running statistics and affine parameters away from 0/1.
void perturb_norms(nn::Module& net, Generator& gen) {
  for (auto& [name, t] : net.state()) {
    const bool var = name.ends_with("running_var"), gamma = name.ends_with("gamma");
    const bool shift = name.ends_with("running_mean") || name.ends_with("beta");
    if (!var && !gamma && !shift) continue;
    const Tensor r = Tensor::uniform(t.shape(), var || gamma ? 0.5f : -0.5f, var || gamma ? 1.5f : 0.5f, gen);
    float* d = t.data<float>();
    for (int64_t i = 0; i < t.numel(); ++i) d[i] = r.data<float>()[i];
  }
}

void write_case(const std::string& dir, const std::string& name, nn::Module& net,
                const data::Preprocessor* pre, const Tensor& raw) {
  net.eval();
  NoGradGuard no_grad;
  const Tensor features = pre ? pre->transform_features(raw) : raw;
  data::write_npy(dir + "/" + name + ".input.npy", raw);
  data::write_npy(dir + "/" + name + ".ref.npy", softmax(net(features), -1).contiguous_copy());
  Shape per(raw.shape().begin() + 1, raw.shape().end());
  deploy::OnnxSource src{.net = &net, .preprocessor = pre, .raw_input = per};
  for (int64_t opset : {13, 17})
    for (bool fold : {true, false})
      deploy::write_onnx(dir + "/" + name + "_opset" + std::to_string(opset) + (fold ? "" : "_bn") + ".onnx",
                         src, {.opset = opset, .fold_batchnorm = fold});
}

int layer_cases(const std::string& dir) {
  Generator gen(7);
  // An image network over raw pixels [3,12,12], with fitted image preprocessing.
  const int64_t n = 16;
  Tensor pixels = Tensor::uniform({n, 3, 12, 12}, 0.f, 255.f, gen);
  float* px = pixels.data<float>();
  for (int64_t i = 0; i < pixels.numel(); ++i)
    px[i] = static_cast<float>(static_cast<int>(px[i]));  // whole pixels
  data::Dataset images;
  images.features = pixels;
  images.labels = Tensor::zeros({n}, DType::Int64);
  images.class_names = {"0"};
  data::Preprocessor pre;
  pre.fit(images);
  nn::Sequential image_net{
      nn::Conv2d(6, 3, {.stride = 2, .padding = "same", .activation = "elu"}),  // [6,6,6]
      nn::BatchNorm2d(),  // after an activation: BatchNormalization
      nn::Conv2d(6, 3, {.padding = 2, .dilation = 2, .groups = 3, .activation = "leaky_relu"}),
      nn::Add({nn::Sequential{nn::Conv2d(6, 1, {.use_bias = false}), nn::BatchNorm2d()}, nn::Identity()},
              "silu"),
      nn::Concat({nn::Identity(), nn::Sequential{nn::Conv2d(2, 1, {.activation = "tanh"})}}),  // [8,6,6]
      nn::MaxPool2d(3, {.stride = 2, .ceil_mode = true}),                                      // [8,3,3]
      nn::AvgPool2d(2, {.stride = 1, .padding = 1, .count_include_pad = false}),               // [8,4,4]
      nn::AdaptiveAvgPool2d({2, 2}),                                                           // [8,2,2]
      nn::Dropout2d(0.3),
      nn::Flatten(),
      nn::Dense(16),
      nn::BatchNorm1d(),  // folds into the Dense
      nn::Sigmoid(),
      nn::Dense(12, "relu"),
      nn::GELU(),
      nn::Dense(4),
  };
  image_net.build({3, 12, 12}, gen);
  perturb_norms(image_net, gen);
  write_case(dir, "layers_image", image_net, &pre, pixels);

  // Vectors [12] -> Reshape [3,4] -> LayerNorm -> Dense on [3,4] (MatMul + Add) -> ...
  nn::Sequential seq_net{nn::Reshape({3, 4}), nn::LayerNorm(),      nn::Dense(5, "gelu"),
                         nn::Flatten(),       nn::Dense(6, "silu"), nn::Dense(3)};
  seq_net.build({12}, gen);
  write_case(dir, "layers_sequence", seq_net, nullptr, Tensor::uniform({n, 12}, -3.f, 3.f, gen));

  // Token ids as floats [5] -> Embedding -> [5,4] -> Dense on [5,4] -> Flatten -> Dense.
  nn::Sequential embed_net{nn::Embedding(10, 4), nn::Dense(3, "tanh"), nn::Flatten(), nn::LeakyReLU(0.2),
                           nn::Dense(3)};
  embed_net.build({5}, gen);
  Tensor ids = Tensor::uniform({n, 5}, 0.f, 9.99f, gen);
  float* ip = ids.data<float>();
  for (int64_t i = 0; i < ids.numel(); ++i) ip[i] = static_cast<float>(static_cast<int>(ip[i]));
  write_case(dir, "layers_embedding", embed_net, nullptr, ids);

  // A table: numeric columns with missing values and an outlier, two categorical ones.
  std::string csv = "age,income,colour,size,label\n";
  const char* colours[] = {"red", "green", "blue", "grey"};
  const char* sizes[] = {"S", "M", "L"};
  for (int i = 0; i < 60; ++i) {
    const std::string age = i % 7 == 3 ? "" : std::to_string(20 + (i * 13) % 50);
    const std::string income =
        i % 11 == 5 ? "" : std::to_string(i == 17 ? 900000 : 20000 + (i * 7919) % 60000);
    const std::string colour = i % 9 == 4 ? "" : colours[(i * 5) % 4];
    csv += fmt::format("{},{},{},{},{}\n", age, income, colour, sizes[(i * 7) % 3], i % 3);
  }
  write_file_atomically(dir + "/layers_table.csv", csv);
  data::TableSchema schema;
  data::Dataset table = data::csv_to_dataset(data::read_csv(dir + "/layers_table.csv"), "label", {}, &schema);
  data::Preprocessor tpre({.clip_outliers = true,
                           .clip_low = 0.05,
                           .clip_high = 0.95,
                           .scaling = data::Scaling::MinMax,
                           .encoding = data::Encoding::Ordinal,
                           .max_categories = 2},
                          schema);
  tpre.fit(table);
  nn::Sequential table_net{nn::Dense(8, "relu"), nn::Dense(3)};
  table_net.build({tpre.num_outputs()}, gen);
  // Rows the training data did not have: unknown, negative and fractional codes, inf.
  Tensor raw = table.features.contiguous_copy();
  const int64_t f = raw.size(1);
  std::vector<float> rows(raw.data<float>(), raw.data<float>() + raw.numel());
  const float inf = std::numeric_limits<float>::infinity();
  for (const std::vector<float>& r : std::vector<std::vector<float>>{
           {inf, -inf, 7, 1}, {-5, 1e9f, -1, 2.5f}, {30, 40000, 1.5f, 99}, {NAN, NAN, NAN, NAN}})
    rows.insert(rows.end(), r.begin(), r.end());
  raw = Tensor::from_vector(rows, {static_cast<int64_t>(rows.size()) / f, f});
  write_case(dir, "layers_table", table_net, &tpre, raw);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc == 3 && std::string(argv[1]) == "layers") return layer_cases(argv[2]);
    if (argc == 4 || argc == 5) return predict_reference(argv[1], argv[2], argv[3], argc == 5 ? argv[4] : "");
  } catch (const deft::InputError& e) {
    std::fprintf(stderr, "onnx_ref: error: %s\n", e.what());
    return 2;
  }
  std::fprintf(stderr, "usage: onnx_ref MODEL INPUT.npy OUT.npy | onnx_ref layers OUT_DIR\n");
  return 2;
}
