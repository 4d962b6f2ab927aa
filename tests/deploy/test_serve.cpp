// deft serve: the wire formats (KServe v2, TF-Serving), the dynamic batcher, and the HTTP
// server on loopback (routes, errors, overload, hot reload, graceful stop, a bounded fuzz).
// The model is a small stand-in Predictor whose outputs are computed here independently,
// so every answer is checked number by number.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "../data/data_test_util.h"
#include "deft/data/image.h"
#include "deft/deploy/serve.h"
#include "deft/deploy/serve_batcher.h"
#include "deft/deploy/serve_protocol.h"

namespace deft::deploy {
namespace {

using json = nlohmann::json;
using test_util::TempDir;

// What the stand-in model saw: the size of every batch.
struct Calls {
  std::mutex mu;
  std::vector<int64_t> batch_sizes;
};

// Image model [1,2,2] (or table model [3]) -> probabilities of 3 classes from
// logit_k = scale * sum_j (k+1)(j+1)/10 x_j / 100 + k (NaN counts as 0): p_k proportional
// to 1 + logit_k^2. Row-independent.
class FakePredictor : public Predictor {
 public:
  FakePredictor(bool image, float scale, std::shared_ptr<Calls> calls = nullptr, int delay_ms = 0)
      : scale_(scale), calls_(std::move(calls)), delay_ms_(delay_ms) {
    info_.image = image;
    info_.input_shape = image ? Shape{1, 2, 2} : Shape{3};
    if (!image) info_.feature_names = {"f0", "f1", "f2"};
    info_.num_outputs = 3;
    info_.class_names = {"ant", "bee", "cat"};
    info_.architecture = fmt::format("fake (scale {})", scale);
  }
  const ModelInfo& info() const override { return info_; }
  Tensor predict(const Tensor& raw) override {
    Tensor x = raw.contiguous_copy();
    Tensor out = Tensor::empty({raw.size(0), 3});
    predict(x.data<float>(), raw.size(0), out.data<float>());
    return out;
  }
  void predict(const float* raw, int64_t n, float* out) override {
    if (calls_) {
      std::lock_guard<std::mutex> hold(calls_->mu);
      calls_->batch_sizes.push_back(n);
    }
    if (delay_ms_) std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms_));
    const int64_t per = shape_numel(info_.input_shape);
    for (int64_t i = 0; i < n; ++i) expected(raw + i * per, per, scale_, out + i * 3);
  }
  static void expected(const float* x, int64_t per, float scale, float* out) {
    // Only + * / (exactly rounded): no exp, whose vectorised and scalar forms differ in
    // the last bit, so the same row gives the same bits wherever it is computed.
    float sum = 0;
    for (int k = 0; k < 3; ++k) {
      float s = 0;
      for (int64_t j = 0; j < per; ++j)
        s += std::isnan(x[j]) ? 0.f : static_cast<float>((k + 1) * (j + 1)) / 10.f * x[j];
      const float logit = scale * s / 100.f + static_cast<float>(k);
      sum += out[k] = 1.f + logit * logit;
    }
    for (int k = 0; k < 3; ++k) out[k] /= sum;
  }

 private:
  ModelInfo info_;
  float scale_;
  std::shared_ptr<Calls> calls_;
  int delay_ms_;
};

ModelInfo image_info() { return FakePredictor(true, 1).info(); }
ModelInfo table_info() { return FakePredictor(false, 1).info(); }

std::vector<float> expected_probs(const std::vector<float>& x, int64_t per, float scale = 1) {
  std::vector<float> out(x.size() / static_cast<size_t>(per) * 3);
  for (size_t i = 0; i < x.size() / static_cast<size_t>(per); ++i)
    FakePredictor::expected(x.data() + i * static_cast<size_t>(per), per, scale, out.data() + i * 3);
  return out;
}

int status_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ProtocolError& e) {
    return e.status();
  }
  return 0;
}

template <class F>
std::string protocol_error(F&& f, int status = 400) {
  try {
    f();
  } catch (const ProtocolError& e) {
    EXPECT_EQ(e.status(), status) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "no ProtocolError";
  return "";
}

#define EXPECT_MENTIONS(text, part) EXPECT_NE(std::string(text).find(part), std::string::npos) << (text)

std::string png_b64(const Tensor& img) {
  const auto bytes = data::encode_png_bytes(img);
  return encode_base64(bytes.data(), bytes.size());
}

// ---- protocol ---------------------------------------------------------------------------------

TEST(ServeProtocol, KServeFlatAndNestedDataGiveTheSameExamples) {
  const ModelInfo info = image_info();
  const auto flat = parse_kserve_request(
      R"({"id":"r1","inputs":[{"name":"input","shape":[2,1,2,2],"datatype":"UINT8","data":[0,1,2,3,250,251,252,255]}]})",
      info);
  EXPECT_EQ(flat.id, "r1");
  EXPECT_EQ(flat.examples.n, 2);
  EXPECT_EQ(flat.examples.values, (std::vector<float>{0, 1, 2, 3, 250, 251, 252, 255}));
  const auto nested = parse_kserve_request(
      R"({"inputs":[{"name":"input","shape":[2,1,2,2],"datatype":"FP32","data":[[[[0,1],[2,3]]],[[[250,251],[252,255]]]]}]})",
      info);
  EXPECT_EQ(nested.examples.values, flat.examples.values);
  EXPECT_TRUE(nested.outputs.empty());
}

TEST(ServeProtocol, KServeErrorsNameTheProblem) {
  const ModelInfo info = image_info();
  auto parse = [&](const std::string& body) { return [&info, body] { parse_kserve_request(body, info); }; };
  EXPECT_MENTIONS(protocol_error(parse(
                      R"({"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]})")),
                  "inputs[0].shape [1,4] does not match the model's input [-1,1,2,2]");
  EXPECT_MENTIONS(protocol_error(parse(
                      R"({"inputs":[{"name":"input","shape":[1,1,2,2],"datatype":"FP32","data":[1,2,3]}]})")),
                  "has 3 values, shape [1,1,2,2] needs 4");
  EXPECT_MENTIONS(
      protocol_error(
          parse(R"({"inputs":[{"name":"input","shape":[1,1,2,2],"datatype":"UINT8","data":[1,2,3,256]}]})")),
      "inputs[0].data[3]: 256 is out of range for UINT8");
  EXPECT_MENTIONS(
      protocol_error(
          parse(R"({"inputs":[{"name":"input","shape":[1,1,2,2],"datatype":"UINT8","data":[1,2.5,3,4]}]})")),
      "inputs[0].data[1]: 2.5 is not an integer");
  EXPECT_MENTIONS(
      protocol_error(
          parse(R"({"inputs":[{"name":"input","shape":[1,1,2,2],"datatype":"FP32","data":[1,2,1e39,4]}]})")),
      "inputs[0].data[2]");
  EXPECT_MENTIONS(
      protocol_error(
          parse(R"({"inputs":[{"name":"input","shape":[1,1,2,2],"datatype":"FP32","data":[1,2,1e999,4]}]})")),
      "number overflow parsing '1e999'");
  EXPECT_MENTIONS(
      protocol_error(
          parse(R"({"inputs":[{"name":"input","shape":[1,1,2,2],"datatype":"FP32","data":[1,"x",3,4]}]})")),
      "inputs[0].data[1]: \"x\" is not a number");
  EXPECT_MENTIONS(
      protocol_error(
          parse(R"({"inputs":[{"name":"input","shape":[1,1,2,2],"datatype":"FP32","data":[1,null,3,4]}]})")),
      "inputs[0].data[1]: null");
  EXPECT_MENTIONS(
      protocol_error(
          parse(R"({"inputs":[{"name":"input","shape":[1,1,2,2],"datatype":"FLOAT","data":[1,2,3,4]}]})")),
      "'FLOAT' is not a KServe datatype");
  EXPECT_MENTIONS(protocol_error(parse(
                      R"({"inputs":[{"name":"x","shape":[1,1,2,2],"datatype":"FP32","data":[1,2,3,4]}]})")),
                  "inputs[0].name \"x\"");
  EXPECT_MENTIONS(
      protocol_error(parse(R"({"inputs":[{"name":"input","shape":[1,1,2,2],"datatype":"FP32"}]})")),
      "inputs[0] is missing \"data\"");
  EXPECT_MENTIONS(
      protocol_error(parse(
          R"({"inputs":[{"name":"input","shape":[1,1,2,2],"datatype":"FP32","data":[[[[1,2],[3]]]]}]})")),
      "inputs[0].data[0][0][1]: has 1 entries");
  EXPECT_MENTIONS(
      protocol_error(parse(
          R"({"inputs":[{"name":"input","shape":[1000000000000,1,2,2],"datatype":"FP32","data":[1]}]})")),
      "says 1000000000000 examples");
  EXPECT_MENTIONS(protocol_error(parse(R"({"inputs":[]})")), "\"inputs\" has 0 entries");
  EXPECT_MENTIONS(protocol_error(parse(
                      R"({"inputs":[{"name":"input","shape":[1,1,2,2],"datatype":"FP32","data":[1,2,3,4]}],
                                        "outputs":[{"name":"logits"}]})")),
                  "outputs[0].name \"logits\" is not an output");
  EXPECT_MENTIONS(protocol_error(parse(R"({"inputs":[{"name":"input",)")), "malformed JSON");
  EXPECT_MENTIONS(protocol_error(parse(R"([1,2])")), "JSON object");
}

TEST(ServeProtocol, KServeBytesImagesAreDecodedAndSizeChecked) {
  const ModelInfo info = image_info();
  const Tensor img = Tensor::from_vector(std::vector<uint8_t>{10, 20, 30, 40}, {1, 2, 2});
  const std::string body = json{{"inputs",
                                 {{{"name", "input"},
                                   {"shape", {2}},
                                   {"datatype", "BYTES"},
                                   {"data", {png_b64(img), {{"b64", png_b64(img)}}}}}}}}
                               .dump();
  const auto r = parse_kserve_request(body, info);
  EXPECT_EQ(r.examples.values, (std::vector<float>{10, 20, 30, 40, 10, 20, 30, 40}));

  // RGB is converted to the model's one channel (BT.601 luma), never resized.
  const Tensor rgb =
      Tensor::from_vector(std::vector<uint8_t>{100, 100, 100, 100, 50, 50, 50, 50, 0, 0, 0, 0}, {3, 2, 2});
  const auto c = parse_kserve_request(
      json{{"inputs", {{{"name", "input"}, {"shape", {1}}, {"datatype", "BYTES"}, {"data", {png_b64(rgb)}}}}}}
          .dump(),
      info);
  const float gray = std::round(0.299f * 100 + 0.587f * 50);
  EXPECT_EQ(c.examples.values, (std::vector<float>{gray, gray, gray, gray}));

  const Tensor big = Tensor::zeros({1, 3, 2}, DType::UInt8);
  EXPECT_MENTIONS(
      protocol_error([&] {
        parse_kserve_request(
            json{{"inputs",
                  {{{"name", "input"}, {"shape", {1}}, {"datatype", "BYTES"}, {"data", {png_b64(big)}}}}}}
                .dump(),
            info);
      }),
      "inputs[0].data[0]: image is 3x2, the model takes 2x2");
  EXPECT_MENTIONS(protocol_error([&] {
                    parse_kserve_request(
                        json{{"inputs",
                              {{{"name", "input"},
                                {"shape", {1}},
                                {"datatype", "BYTES"},
                                {"data", {encode_base64(reinterpret_cast<const uint8_t*>("hello"), 5)}}}}}}
                            .dump(),
                        info);
                  }),
                  "inputs[0].data[0]: not a PNG or JPEG image");
  EXPECT_MENTIONS(
      protocol_error([&] {
        parse_kserve_request(
            json{{"inputs", {{{"name", "input"}, {"shape", {1}}, {"datatype", "BYTES"}, {"data", {"***"}}}}}}
                .dump(),
            info);
      }),
      "not base64");
}

TEST(ServeProtocol, KServeResponseHasProbabilitiesClassAndLabel) {
  const ModelInfo info = image_info();
  KServeRequest r;
  r.id = "q";
  r.examples.n = 2;
  const std::vector<float> out{0.1f, 0.7f, 0.2f, 0.5f, 0.25f, 0.25f};
  const json j = json::parse(kserve_response(r, out.data(), info, "fake", "3"));
  EXPECT_EQ(j["model_name"], "fake");
  EXPECT_EQ(j["model_version"], "3");
  EXPECT_EQ(j["id"], "q");
  ASSERT_EQ(j["outputs"].size(), 3u);
  EXPECT_EQ(j["outputs"][0]["name"], "probabilities");
  EXPECT_EQ(j["outputs"][0]["shape"], json({2, 3}));
  EXPECT_EQ(j["outputs"][0]["data"][1].get<float>(), 0.7f);  // float-exact round trip
  EXPECT_EQ(j["outputs"][1]["data"], json({1, 0}));
  EXPECT_EQ(j["outputs"][2]["data"], json({"bee", "ant"}));
  r.outputs = {"label"};
  const json only = json::parse(kserve_response(r, out.data(), info, "fake", "3"));
  ASSERT_EQ(only["outputs"].size(), 1u);
  EXPECT_EQ(only["outputs"][0]["datatype"], "BYTES");
  const json meta = json::parse(kserve_model_metadata(info, "fake", "3"));
  EXPECT_EQ(meta["inputs"][0]["shape"], json({-1, 1, 2, 2}));
  EXPECT_EQ(meta["versions"], json({"3"}));
}

TEST(ServeProtocol, TfServingRowsColumnsImagesAndNamedFeatures) {
  const ModelInfo img = image_info(), tab = table_info();
  const auto rows =
      parse_tf_serving_request(R"({"instances":[[[[1,2],[3,4]]], [5,6,7,8], {"input":[9,10,11,12]}]})", img);
  EXPECT_FALSE(rows.columnar);
  EXPECT_EQ(rows.examples.n, 3);
  EXPECT_EQ(rows.examples.values, (std::vector<float>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}));
  const auto cols = parse_tf_serving_request(R"({"inputs":{"input":[[1,2,3,4]]}})", img);
  EXPECT_TRUE(cols.columnar);
  EXPECT_EQ(cols.examples.values, (std::vector<float>{1, 2, 3, 4}));
  const Tensor im = Tensor::from_vector(std::vector<uint8_t>{1, 2, 3, 4}, {1, 2, 2});
  const auto b64 = parse_tf_serving_request(json{{"instances", {{{"b64", png_b64(im)}}}}}.dump(), img);
  EXPECT_EQ(b64.examples.values, (std::vector<float>{1, 2, 3, 4}));

  const auto named = parse_tf_serving_request(R"({"instances":[{"f2":3,"f0":1,"f1":null}, [4,5,6]]})", tab);
  ASSERT_EQ(named.examples.values.size(), 6u);
  EXPECT_EQ(named.examples.values[0], 1);
  EXPECT_TRUE(std::isnan(named.examples.values[1]));  // null: a missing value, as tables allow
  EXPECT_EQ(named.examples.values[2], 3);
  EXPECT_EQ(named.examples.values[5], 6);

  EXPECT_MENTIONS(protocol_error([&] { parse_tf_serving_request(R"({"instances":[[1,2,3]]})", img); }),
                  "instances[0]");
  EXPECT_MENTIONS(
      protocol_error([&] { parse_tf_serving_request(R"({"instances":[{"f0":1,"f1":2}]})", tab); }),
      "has 2 fields, the model takes 3 features");
  EXPECT_MENTIONS(
      protocol_error([&] { parse_tf_serving_request(R"({"instances":[{"f0":1,"f1":2,"fx":3}]})", tab); }),
      "missing feature \"f2\"");
  EXPECT_MENTIONS(protocol_error([&] { parse_tf_serving_request(R"({"instances":[[1,null,3,4]]})", img); }),
                  "instances[0][1]: null");
  EXPECT_MENTIONS(
      protocol_error([&] { parse_tf_serving_request(R"({"instances":[[1,2,3]],"inputs":[]})", tab); }),
      "exactly one of");
  EXPECT_MENTIONS(protocol_error([&] {
                    parse_tf_serving_request(json{{"instances", {{{"b64", png_b64(im)}}}}}.dump(), tab);
                  }),
                  "not images");

  TfServingRequest r;
  r.examples.n = 2;
  const std::vector<float> out{0.25f, 0.5f, 0.25f, 1, 0, 0};
  EXPECT_EQ(tf_serving_response(r, out.data(), img), R"({"predictions":[[0.25,0.5,0.25],[1,0,0]]})");
  r.columnar = true;
  EXPECT_EQ(tf_serving_response(r, out.data(), img), R"({"outputs":[[0.25,0.5,0.25],[1,0,0]]})");
}

TEST(ServeProtocol, Base64RoundTripsAndRejectsJunk) {
  std::mt19937 rng(7);
  for (size_t len = 0; len < 40; ++len) {
    std::vector<uint8_t> b(len);
    for (auto& v : b) v = static_cast<uint8_t>(rng());
    const std::string e = encode_base64(b.data(), b.size());
    EXPECT_EQ(e.size() % 4, 0u);
    EXPECT_EQ(decode_base64(e, "x"), b);
    std::string unpadded = e;
    while (!unpadded.empty() && unpadded.back() == '=') unpadded.pop_back();
    EXPECT_EQ(decode_base64(unpadded, "x"), b);
  }
  EXPECT_EQ(decode_base64("data:image/png;base64,aGk=", "x"), (std::vector<uint8_t>{'h', 'i'}));
  EXPECT_MENTIONS(protocol_error([] { decode_base64("aG!k", "img"); }),
                  "img: not base64: character '!' at offset 2");
  EXPECT_MENTIONS(protocol_error([] { decode_base64("aGk=x", "img"); }), "after '=' padding");
  EXPECT_MENTIONS(protocol_error([] { decode_base64("a", "img"); }), "truncated");
}

// ---- batcher ------------------------------------------------------------------------------------

Examples one_example(float v) { return {1, {v, v + 1, v * 2, -v}}; }

TEST(ServeBatcher, ConcurrentRequestsAreBatchedAndGetTheirOwnRows) {
  auto calls = std::make_shared<Calls>();
  Batcher b(std::make_unique<FakePredictor>(true, 1, calls, 5),
            {.max_batch = 8, .max_delay_ms = 50, .max_queue = 100});
  constexpr int kClients = 24;
  std::vector<std::future<BatchResult>> results;
  for (int i = 0; i < kClients; ++i)
    results.push_back(std::async(std::launch::async, [&b, i] {
      return b.run(one_example(static_cast<float>(i) * 0.37f), {1, 2, 2});
    }));
  for (int i = 0; i < kClients; ++i) {
    const BatchResult r = results[static_cast<size_t>(i)].get();
    EXPECT_EQ(r.outputs, expected_probs(one_example(static_cast<float>(i) * 0.37f).values, 4))
        << "client " << i;
    EXPECT_EQ(r.model->version, 1);
  }
  const BatcherStats s = b.stats();
  EXPECT_EQ(s.examples, kClients);
  EXPECT_LE(s.largest_batch, 8);
  EXPECT_GT(s.largest_batch, 1) << "24 concurrent requests against a 5 ms model never shared a batch";
  EXPECT_LT(s.batches, kClients);
  std::lock_guard<std::mutex> hold(calls->mu);
  for (int64_t n : calls->batch_sizes) EXPECT_LE(n, 8);
}

TEST(ServeBatcher, ALoneRequestDoesNotWaitForTheDelay) {
  Batcher b(std::make_unique<FakePredictor>(true, 1),
            {.max_batch = 64, .max_delay_ms = 2000, .max_queue = 100});
  const auto t0 = std::chrono::steady_clock::now();
  b.run(one_example(1), {1, 2, 2});
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(1000));
}

TEST(ServeBatcher, AFullQueueRefusesWith503AndALargeRequestWith413) {
  Batcher b(std::make_unique<FakePredictor>(true, 1, nullptr, 100),
            {.max_batch = 1, .max_delay_ms = 0, .max_queue = 3});
  EXPECT_EQ(status_of([&] { b.run({4, std::vector<float>(16, 1.f)}, {1, 2, 2}); }), 413);
  std::vector<std::future<int>> st;
  for (int i = 0; i < 10; ++i)
    st.push_back(std::async(std::launch::async, [&b] {
      return status_of([&b] { b.run(one_example(1), {1, 2, 2}); });
    }));
  int ok = 0, overloaded = 0;
  for (auto& f : st) {
    const int s = f.get();
    ok += s == 0;
    overloaded += s == 503;
  }
  EXPECT_EQ(ok + overloaded, 10);
  EXPECT_GE(ok, 3);
  EXPECT_GE(overloaded, 1) << "10 requests at once into a queue of 3 in front of a 100 ms model";
}

TEST(ServeBatcher, ReplaceSwapsBetweenBatchesAndCountsVersions) {
  Batcher b(std::make_unique<FakePredictor>(true, 1), {.max_batch = 4, .max_delay_ms = 0, .max_queue = 100});
  EXPECT_EQ(b.run(one_example(2), {1, 2, 2}).outputs, expected_probs(one_example(2).values, 4, 1));
  b.replace(std::make_unique<FakePredictor>(true, -2));
  const BatchResult r = b.run(one_example(2), {1, 2, 2});
  EXPECT_EQ(r.model->version, 2);
  EXPECT_EQ(r.outputs, expected_probs(one_example(2).values, 4, -2));
  b.replace(std::make_unique<FakePredictor>(false, 1));  // a different input: old requests are told to retry
  EXPECT_EQ(status_of([&] { b.run(one_example(2), {1, 2, 2}); }), 503);
  EXPECT_EQ(b.model()->info.input_shape, (Shape{3}));
}

// ---- HTTP ------------------------------------------------------------------------------------

// Model files for the stand-in loader: the text "image SCALE" or "table SCALE"; anything
// else fails to load as a real corrupt file would.
PredictorLoader fake_loader(std::shared_ptr<Calls> calls = nullptr, int delay_ms = 0) {
  return [calls, delay_ms](const std::string& path) -> std::unique_ptr<Predictor> {
    std::ifstream f(path);
    std::string kind;
    float scale = 0;
    if (!(f >> kind >> scale) || (kind != "image" && kind != "table")) fail("{}: not a deft model", path);
    return std::make_unique<FakePredictor>(kind == "image", scale, calls, delay_ms);
  };
}

void write_text(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

void replace_atomically(const std::string& path, const std::string& text) {
  write_text(path + ".tmp", text);
  std::filesystem::rename(path + ".tmp", path);
}

struct LiveServer {
  TempDir dir{"deft-serve"};
  std::unique_ptr<ModelServer> server;
  explicit LiveServer(ServeOptions o, const std::string& model_text = "image 1") {
    o.model = dir.file("fake.deft");
    write_text(o.model, model_text);
    o.port = 0;
    if (!o.loader) o.loader = fake_loader();
    server = std::make_unique<ModelServer>(o);
    server->start();
  }
  httplib::Client client() const {
    httplib::Client c("127.0.0.1", server->port());
    c.set_read_timeout(20);
    return c;
  }
  std::string model_path() const { return dir.file("fake.deft"); }
};

std::string infer_body(const std::vector<float>& x, int64_t n) {
  return json{{"id", "t"},
              {"inputs", {{{"name", "input"}, {"shape", {n, 1, 2, 2}}, {"datatype", "FP32"}, {"data", x}}}}}
      .dump();
}

std::vector<float> probabilities_of(const std::string& body) {
  const json j = json::parse(body);
  return j.at("outputs").at(0).at("data").get<std::vector<float>>();
}

void expect_json_error(const httplib::Result& r, int status, const std::string& part) {
  ASSERT_TRUE(r) << "no response";
  EXPECT_EQ(r->status, status) << r->body;
  EXPECT_EQ(r->get_header_value("Content-Type"), "application/json");
  const json j = json::parse(r->body, nullptr, false);
  ASSERT_TRUE(j.is_object() && j.contains("error")) << r->body;
  EXPECT_MENTIONS(j["error"].get<std::string>(), part);
}

TEST(ServeHttp, HealthMetadataAndInferenceOverKServeAndTfServing) {
  LiveServer s({.name = "fashion"});
  auto c = s.client();
  EXPECT_EQ(c.Get("/v2/health/live")->status, 200);
  EXPECT_EQ(c.Get("/v2/health/ready")->status, 200);
  EXPECT_EQ(c.Get("/v2/models/fashion/ready")->status, 200);
  EXPECT_EQ(json::parse(c.Get("/v2")->body)["name"], "deft");
  const json meta = json::parse(c.Get("/v2/models/fashion")->body);
  EXPECT_EQ(meta["name"], "fashion");
  EXPECT_EQ(meta["inputs"][0]["shape"], json({-1, 1, 2, 2}));
  EXPECT_EQ(json::parse(c.Get("/v1/models/fashion")->body)["model_version_status"][0]["state"], "AVAILABLE");

  const std::vector<float> x{0, 50, 100, 255, 1, 2, 3, 4, 9, 8, 7, 6};
  auto r = c.Post("/v2/models/fashion/infer", infer_body(x, 3), "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const json j = json::parse(r->body);
  EXPECT_EQ(j["id"], "t");
  EXPECT_EQ(j["model_name"], "fashion");
  EXPECT_EQ(probabilities_of(r->body), expected_probs(x, 4));
  EXPECT_EQ(c.Post("/v2/models/fashion/versions/1/infer", infer_body(x, 3), "application/json")->status, 200);

  r = c.Post("/v1/models/fashion:predict",
             json{{"instances", {{0, 50, 100, 255}, {1, 2, 3, 4}, {9, 8, 7, 6}}}}.dump(), "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  std::vector<float> tf;
  const json predictions = json::parse(r->body).at("predictions");
  for (const auto& row : predictions)
    for (const auto& v : row) tf.push_back(v.get<float>());
  EXPECT_EQ(tf, expected_probs(x, 4));
}

TEST(ServeHttp, BadRequestsAreJsonErrorsAndTheServerKeepsServing) {
  LiveServer s({.name = "m", .max_body = 4096});
  auto c = s.client();
  expect_json_error(c.Post("/v2/models/other/infer", infer_body({1, 2, 3, 4}, 1), "application/json"), 404,
                    "unknown model 'other'");
  expect_json_error(c.Post("/v2/models/m/versions/7/infer", infer_body({1, 2, 3, 4}, 1), "application/json"),
                    404, "no version '7'");
  expect_json_error(c.Get("/v2/models/nope"), 404, "unknown model 'nope'");
  expect_json_error(c.Get("/v3/whatever"), 404, "no route GET /v3/whatever");
  expect_json_error(c.Delete("/v2/models/m"), 405, "only GET and POST");
  expect_json_error(c.Get("/v2/models/m/infer"), 405, "POST");
  expect_json_error(c.Post("/v2/models/m/infer", "{\"inputs\": [", "application/json"), 400,
                    "malformed JSON");
  expect_json_error(c.Post("/v2/models/m/infer", infer_body({1, 2, 3}, 1), "application/json"), 400,
                    "has 3 values");
  expect_json_error(c.Post("/v1/models/m:predict", R"({"instances":[[1,2,3,1e39]]})", "application/json"),
                    400, "instances[0][3]");
  expect_json_error(c.Post("/v1/models/m:predict", R"({"instances":[[1,2,3,1e400]]})", "application/json"),
                    400, "1e400");
  expect_json_error(c.Post("/v2/models/m/infer", std::string(5000, ' '), "application/json"), 413,
                    "4096 bytes");
  const std::vector<float> x{1, 2, 3, 4};
  auto r = c.Post("/v2/models/m/infer", infer_body(x, 1), "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(probabilities_of(r->body), expected_probs(x, 4));
}

TEST(ServeHttp, OverloadAnswers503WithRetryAfter) {
  LiveServer s({.max_batch = 1, .max_delay_ms = 0, .max_queue = 2, .loader = fake_loader(nullptr, 150)});
  std::vector<std::future<std::pair<int, std::string>>> got;
  for (int i = 0; i < 8; ++i)
    got.push_back(std::async(std::launch::async, [&s] {
      auto c = s.client();
      auto r = c.Post("/v2/models/fake/infer", infer_body({1, 2, 3, 4}, 1), "application/json");
      return r ? std::make_pair(r->status, r->get_header_value("Retry-After"))
               : std::make_pair(-1, std::string());
    }));
  int ok = 0, busy = 0;
  for (auto& f : got) {
    const auto [status, retry] = f.get();
    ok += status == 200;
    if (status == 503) {
      ++busy;
      EXPECT_EQ(retry, "1");
    }
  }
  EXPECT_EQ(ok + busy, 8);
  EXPECT_GE(busy, 1);
  EXPECT_GE(ok, 2);
}

TEST(ServeHttp, HotReloadSwapsTheModelAndABadFileKeepsTheOldOne) {
  LiveServer s({.reload_interval_s = 0.05});
  auto c = s.client();
  const std::vector<float> x{1, 2, 3, 4};
  auto infer = [&] {
    auto r = c.Post("/v2/models/fake/infer", infer_body(x, 1), "application/json");
    EXPECT_TRUE(r && r->status == 200);
    return r ? json::parse(r->body) : json();
  };
  EXPECT_EQ(infer()["model_version"], "1");
  replace_atomically(s.model_path(), "image -0.5");
  json j;
  for (int i = 0; i < 200; ++i) {  // up to 10 s on a busy machine
    j = infer();
    if (j["model_version"] == "2") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_EQ(j["model_version"], "2");
  EXPECT_EQ(j["outputs"][0]["data"].get<std::vector<float>>(), expected_probs(x, 4, -0.5f));

  replace_atomically(s.model_path(), "garbage");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  j = infer();
  EXPECT_EQ(j["model_version"], "2");
  EXPECT_EQ(j["outputs"][0]["data"].get<std::vector<float>>(), expected_probs(x, 4, -0.5f));
  EXPECT_EQ(c.Get("/v2/health/ready")->status, 200);
}

TEST(ServeHttp, StopAnswersTheRequestsInFlight) {
  LiveServer s({.max_batch = 1, .max_delay_ms = 0, .loader = fake_loader(nullptr, 200)});
  std::vector<std::future<int>> got;
  for (int i = 0; i < 4; ++i)
    got.push_back(std::async(std::launch::async, [&s] {
      auto c = s.client();
      auto r = c.Post("/v2/models/fake/infer", infer_body({1, 2, 3, 4}, 1), "application/json");
      return r ? r->status : -1;
    }));
  // All four received: one with the model, three queued behind it (a 200 ms model, one at a time).
  for (int i = 0; i < 1000 && s.server->stats().queued < 3; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_GE(s.server->stats().queued, 3);
  const int port = s.server->port();
  s.server->stop();
  for (auto& f : got) EXPECT_EQ(f.get(), 200);
  EXPECT_EQ(s.server->stats().examples, 4);
  httplib::Client after("127.0.0.1", port);
  after.set_connection_timeout(1);
  EXPECT_FALSE(after.Get("/v2/health/live")) << "still accepting after stop()";
}

// Sends raw bytes and returns the status line's code (0: no HTTP answer).
int raw_request(int port, const std::string& bytes) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{2, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  int status = 0;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
    // No shutdown(SHUT_WR): httplib answers nothing to a client that half-closed.
    (void)!::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    char buf[64] = {};
    const ssize_t n = ::recv(fd, buf, sizeof buf - 1, 0);
    if (n > 12 && std::string(buf, 5) == "HTTP/")
      status = std::atoi(buf + 9);
    else
      status = n <= 0 ? -1000 - errno : -static_cast<int>(n);  // diagnosis: what came back
  } else {
    status = -2000 - errno;
  }
  ::close(fd);
  return status;
}

// Bounded fuzz: mutated request bodies (flipped, dropped, inserted and duplicated bytes,
// truncations, random JSON fragments) at every inference route; every answer must be 200,
// or a 4xx with a JSON {"error"}; then the server must still answer correctly.
TEST(ServeHttp, FuzzedBodiesGetJsonAnswersAndTheServerSurvives) {
  LiveServer s({.name = "m", .max_body = 1 << 16});
  auto c = s.client();
  const Tensor im = Tensor::from_vector(std::vector<uint8_t>{1, 2, 3, 4}, {1, 2, 2});
  const std::vector<std::pair<std::string, std::string>> seeds{
      {"/v2/models/m/infer", infer_body({1, 2, 3, 4, 5, 6, 7, 8}, 2)},
      {"/v2/models/m/infer",
       json{{"inputs", {{{"name", "input"}, {"shape", {1}}, {"datatype", "BYTES"}, {"data", {png_b64(im)}}}}}}
           .dump()},
      {"/v1/models/m:predict", R"({"instances":[[[[1,2],[3,4]]],{"b64":")" + png_b64(im) + R"("}]})"},
      {"/v1/models/m:predict", R"({"inputs":{"input":[[1,2,3,4]]}})"},
  };
  const char* fragments[] = {"[",        "]",        "{",       "}",         ",",
                             ":",        "\"",       "null",    "true",      "-1e999",
                             "1e39",     "NaN",      "\\u0000", "\"shape\"", "\"data\"",
                             "[[[[[[[[", "\xff\xfe", "0.5",     "-0",        "18446744073709551616"};
  EXPECT_EQ(raw_request(s.server->port(), "\x16\x03\x01garbage\r\n\r\n"), 400);
  std::mt19937 rng(20261128);
  int ok = 0, errors = 0;
  constexpr int kCases = 400;
  for (int i = 0; i < kCases; ++i) {
    const auto& [path, seed] = seeds[rng() % seeds.size()];
    std::string body = seed;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits && !body.empty(); ++e) {
      const size_t at = rng() % body.size();
      switch (rng() % 6) {
        case 0:
          body[at] = static_cast<char>(rng());
          break;
        case 1:
          body.erase(at, 1 + rng() % 8);
          break;
        case 2:
          body.insert(at, fragments[rng() % std::size(fragments)]);
          break;
        case 3:
          body.resize(at);
          break;
        case 4:
          body.insert(at, body.substr(at, rng() % 64));
          break;
        default:
          body[at] = "0123456789.-e,[]"[rng() % 16];
          break;
      }
    }
    auto r = c.Post(path, body, "application/json");
    ASSERT_TRUE(r) << "no answer to case " << i << ": " << body;
    if (r->status == 200) {
      ++ok;
      const json j = json::parse(r->body, nullptr, false);
      EXPECT_FALSE(j.is_discarded()) << r->body;
      continue;
    }
    ++errors;
    ASSERT_GE(r->status, 400) << body;
    ASSERT_LT(r->status, 500) << "case " << i << " got " << r->status << ": " << r->body
                              << "\nbody: " << body;
    const json j = json::parse(r->body, nullptr, false);
    ASSERT_TRUE(j.is_object() && j.contains("error") && j["error"].is_string()) << r->body;
  }
  EXPECT_EQ(ok + errors, kCases);
  EXPECT_GT(errors, kCases / 2);
  // Broken HTTP itself: junk, a bad request line, a lying Content-Length.
  EXPECT_EQ(raw_request(s.server->port(), "\x16\x03\x01garbage\r\n\r\n"), 400);
  EXPECT_EQ(raw_request(s.server->port(), "POST /v2/models/m/infer HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}"),
            400);
  const int lying =
      raw_request(s.server->port(), "POST /v2/models/m/infer HTTP/1.1\r\nContent-Length: 100\r\n\r\n{}");
  EXPECT_TRUE(lying <= 0 || lying == 400) << lying;  // no answer while the body is awaited, or 400
  const std::vector<float> x{4, 3, 2, 1};
  auto r = c.Post("/v2/models/m/infer", infer_body(x, 1), "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200);
  EXPECT_EQ(probabilities_of(r->body), expected_probs(x, 4));
}

}  // namespace
}  // namespace deft::deploy
