// ONNX export, structure: the bytes parse as a ModelProto with the contract's input and
// output, BatchNorm folding, and the errors (bad opset, unbuilt network, layers ONNX
// cannot express). Numerical agreement with deft (onnx.checker, OpenCV's DNN module, an
// independent NumPy evaluator) is the ctest `onnx_export` (tests/deploy/onnx_test.sh).
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "deft/deploy/onnx_export.h"
#include "deft/nn/conv.h"
#include "deft/nn/layers.h"
#include "deft/tensor/error.h"

namespace deft::deploy {
namespace {

// A minimal protobuf reader: the fields of one message, in order.
struct Field {
  int number = 0;
  int wire = 0;
  uint64_t value = 0;      // varint / fixed
  std::string_view bytes;  // length-delimited
};

uint64_t read_varint(std::string_view s, size_t& i) {
  uint64_t v = 0;
  for (int shift = 0; i < s.size(); shift += 7) {
    const auto b = static_cast<uint8_t>(s[i++]);
    v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) return v;
  }
  throw std::runtime_error("truncated varint");
}

std::vector<Field> parse(std::string_view s) {
  std::vector<Field> out;
  size_t i = 0;
  while (i < s.size()) {
    const uint64_t key = read_varint(s, i);
    Field f{static_cast<int>(key >> 3), static_cast<int>(key & 7)};
    if (f.wire == 0) {
      f.value = read_varint(s, i);
    } else if (f.wire == 2) {
      const uint64_t n = read_varint(s, i);
      if (i + n > s.size()) throw std::runtime_error("truncated bytes");
      f.bytes = s.substr(i, n);
      i += n;
    } else if (f.wire == 5 || f.wire == 1) {
      const size_t n = f.wire == 5 ? 4 : 8;
      if (i + n > s.size()) throw std::runtime_error("truncated fixed");
      i += n;
    } else {
      throw std::runtime_error("bad wire type");
    }
    out.push_back(f);
  }
  return out;
}

std::vector<Field> fields(std::string_view s, int number) {
  std::vector<Field> out;
  for (const Field& f : parse(s))
    if (f.number == number) out.push_back(f);
  return out;
}

std::string_view first_bytes(std::string_view s, int number) {
  auto f = fields(s, number);
  return f.empty() ? std::string_view() : f[0].bytes;
}

// What a test looks at in an exported model.
struct Summary {
  uint64_t ir_version = 0, opset = 0;
  std::vector<std::string> ops;  // op_type of each node, in order
  std::string input, output;
  std::string input_dim0;  // the batch dimension's dim_param
  std::map<std::string, std::string> metadata;
  size_t initializers = 0;
  int count(const std::string& op) const {
    int n = 0;
    for (const auto& o : ops) n += o == op;
    return n;
  }
};

Summary summarize(const std::string& bytes) {
  Summary s;
  for (const Field& f : parse(bytes)) {
    if (f.number == 1) s.ir_version = f.value;
    if (f.number == 8)
      for (const Field& g : parse(f.bytes))
        if (g.number == 2) s.opset = g.value;
    if (f.number == 14)
      s.metadata[std::string(first_bytes(f.bytes, 1))] = std::string(first_bytes(f.bytes, 2));
  }
  const std::string_view graph = first_bytes(bytes, 7);
  for (const Field& n : fields(graph, 1)) s.ops.emplace_back(first_bytes(n.bytes, 4));
  s.initializers = fields(graph, 5).size();
  const std::string_view in = first_bytes(graph, 11);
  s.input = first_bytes(in, 1);
  // ValueInfoProto.type.tensor_type.shape.dim[0].dim_param
  const std::string_view shape = first_bytes(first_bytes(first_bytes(in, 2), 1), 2);
  s.input_dim0 = first_bytes(first_bytes(shape, 1), 2);
  s.output = first_bytes(first_bytes(graph, 12), 1);
  return s;
}

OnnxSource source_for(const nn::Module& net, const Shape& raw) {
  OnnxSource s;
  s.net = &net;
  s.raw_input = raw;
  return s;
}

TEST(OnnxExport, MlpIsAModelProtoWithTheContractsInputAndOutput) {
  nn::Sequential net{nn::Flatten(), nn::Dense(8, "relu"), nn::Dropout(0.5), nn::Dense(3)};
  Generator gen(1);
  net.build({1, 4, 4}, gen);
  OnnxSource src = source_for(net, {1, 4, 4});
  src.class_names = {"a", "b", "c"};
  const Summary s = summarize(export_onnx(src, {.opset = 13}));
  EXPECT_EQ(s.ir_version, 8u);
  EXPECT_EQ(s.opset, 13u);
  EXPECT_EQ(s.input, "input");
  EXPECT_EQ(s.input_dim0, "N");
  EXPECT_EQ(s.output, "probabilities");
  EXPECT_EQ(s.ops, (std::vector<std::string>{"Flatten", "Gemm", "Relu", "Gemm", "Softmax", "Identity"}));
  EXPECT_EQ(s.initializers, 4u);  // two kernels, two biases
  EXPECT_EQ(s.metadata.at("class_names"), R"(["a","b","c"])");
  EXPECT_TRUE(s.metadata.count("deft_version"));
  EXPECT_TRUE(s.metadata.count("architecture"));
}

TEST(OnnxExport, BinarySigmoidOutputBecomesTwoColumnsAndRegressionIsPredictions) {
  nn::Sequential net{nn::Dense(1)};
  Generator gen(1);
  net.build({5}, gen);
  OnnxSource src = source_for(net, {5});
  src.binary = true;
  Summary s = summarize(export_onnx(src));
  EXPECT_EQ(s.output, "probabilities");
  EXPECT_EQ(s.ops, (std::vector<std::string>{"Gemm", "Sigmoid", "Sub", "Concat"}));
  src.binary = false;
  src.output = OnnxOutput::Values;
  s = summarize(export_onnx(src));
  EXPECT_EQ(s.output, "predictions");
  EXPECT_EQ(s.ops, (std::vector<std::string>{"Gemm", "Identity"}));
}

TEST(OnnxExport, BatchNormFoldsIntoTheConvBeforeItOrStaysBatchNormalization) {
  nn::Sequential net{nn::Conv2d(4, 3, {.padding = "same", .use_bias = false}),
                     nn::BatchNorm2d(),
                     nn::ReLU(),
                     nn::BatchNorm2d(),
                     nn::GlobalAvgPool2d(),
                     nn::Dense(2)};
  Generator gen(1);
  net.build({1, 6, 6}, gen);
  const OnnxSource src = source_for(net, {1, 6, 6});
  Summary folded = summarize(export_onnx(src));
  EXPECT_EQ(folded.count("Conv"), 1);
  EXPECT_EQ(folded.count("BatchNormalization"), 1);  // the one after ReLU cannot fold
  Summary kept = summarize(export_onnx(src, {.fold_batchnorm = false}));
  EXPECT_EQ(kept.count("BatchNormalization"), 2);
}

TEST(OnnxExport, LayerNormIsOneOpAtOpset17AndDecomposedBelow) {
  nn::Sequential net{nn::LayerNorm(), nn::Dense(2, "gelu")};
  Generator gen(1);
  net.build({6}, gen);
  const OnnxSource src = source_for(net, {6});
  EXPECT_EQ(summarize(export_onnx(src, {.opset = 17})).count("LayerNormalization"), 1);
  const Summary s13 = summarize(export_onnx(src, {.opset = 13}));
  EXPECT_EQ(s13.count("LayerNormalization"), 0);
  EXPECT_EQ(s13.count("ReduceMean"), 2);
  EXPECT_EQ(s13.count("Erf"), 1);
}

TEST(OnnxExport, OpsetOutsideThirteenToSeventeenIsAnInputError) {
  nn::Sequential net{nn::Dense(2)};
  Generator gen(1);
  net.build({3}, gen);
  const OnnxSource src = source_for(net, {3});
  for (int64_t bad : {12, 18}) {
    try {
      export_onnx(src, {.opset = bad});
      FAIL() << "opset " << bad << " accepted";
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find("opset must be 13 to 17"), std::string::npos) << e.what();
    }
  }
}

TEST(OnnxExport, UnbuiltNetworkIsAnInputError) {
  nn::Sequential net{nn::Dense(2)};
  EXPECT_THROW(export_onnx(source_for(net, {3})), InputError);
}

// A layer type the exporter does not know.
class Mystery : public nn::Module {
 public:
  Tensor forward(const Tensor& x) override { return x; }
  std::string type() const override { return "Mystery"; }

 protected:
  Shape build_impl(const Shape& input, Generator&) override { return input; }
};

TEST(OnnxExport, UnsupportedLayersAreInputErrorsNamingTheLayer) {
  {
    nn::Sequential net{nn::Dense(4), nn::Add({nn::Sequential{Mystery()}, nn::Identity()}), nn::Dense(2)};
    Generator gen(1);
    net.build({3}, gen);
    try {
      export_onnx(source_for(net, {3}));
      FAIL() << "Mystery exported";
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find("layer 1.0.0 (Mystery)"), std::string::npos) << e.what();
    }
  }
  {
    nn::Sequential net{nn::AdaptiveAvgPool2d({2, 2}), nn::Flatten(), nn::Dense(2)};
    Generator gen(1);
    net.build({1, 5, 5}, gen);
    try {
      export_onnx(source_for(net, {1, 5, 5}));
      FAIL() << "uneven adaptive pooling exported";
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find("layer 0 (AdaptiveAvgPool2d)"), std::string::npos) << e.what();
    }
  }
  {  // ceil_mode windows past the padding, averaged with the padding counted
    nn::Sequential net{nn::Conv2d(2, 1), nn::AvgPool2d(2, {.ceil_mode = true}), nn::Flatten(), nn::Dense(2)};
    Generator gen(1);
    net.build({1, 5, 5}, gen);
    try {
      export_onnx(source_for(net, {1, 5, 5}));
      FAIL() << "AvgPool2d ceil_mode with count_include_pad exported";
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find("layer 1 (AvgPool2d)"), std::string::npos) << e.what();
    }
    // Without counting the padding it is exact: the extra windows become trailing padding.
    nn::Sequential ok{nn::AvgPool2d(2, {.ceil_mode = true, .count_include_pad = false}), nn::Flatten(),
                      nn::Dense(2)};
    ok.build({1, 5, 5}, gen);
    EXPECT_EQ(summarize(export_onnx(source_for(ok, {1, 5, 5}))).count("AveragePool"), 1);
  }
}

}  // namespace
}  // namespace deft::deploy
