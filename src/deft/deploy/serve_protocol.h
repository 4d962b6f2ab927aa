// The wire formats `deft serve` speaks, apart from any HTTP: request bodies in, examples
// out (validated against the model's input), and predictions back into response bodies.
//
//   KServe v2 / Open Inference Protocol (POST /v2/models/NAME/infer):
//     {"id": "a", "inputs": [{"name": "input", "shape": [2,1,28,28], "datatype": "UINT8",
//                              "data": [...flat or nested...]}],
//      "outputs": [{"name": "probabilities"}]}                       // optional
//     -> {"model_name": "fashion", "model_version": "1", "id": "a", "outputs": [
//          {"name": "probabilities", "shape": [2,10], "datatype": "FP32", "data": [...]},
//          {"name": "class", "shape": [2], "datatype": "INT64", "data": [9, 2]},
//          {"name": "label", "shape": [2], "datatype": "BYTES", "data": ["Ankle boot", ...]}]}
//     Images may also come as "datatype": "BYTES", "shape": [N], data = base64 PNG/JPEG
//     strings (or {"b64": "..."} objects).
//   TF-Serving REST (POST /v1/models/NAME:predict):
//     {"instances": [x0, x1, ...]}   -> {"predictions": [[p...], ...]}   (row format)
//     {"inputs": [x0, x1, ...]}      -> {"outputs": [[p...], ...]}       (columnar)
//     an instance is the example as a nested (or flat) list, {"input": x}, {"b64": "..."}
//     for an image, or, for a table model, an object keyed by feature name.
//
// Every problem is a ProtocolError with the HTTP status to answer and a message naming
// the field, the shapes, the datatype or the value's index:
//   "inputs[0].shape [1,784] does not match the model's input [-1,1,28,28]".
// Values are checked: finite, and within the declared datatype (UINT8 0..255, ...). For
// table models a JSON null is a missing value (NaN), as the data files allow.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "deft/deploy/infer.h"

namespace deft::deploy {

// A request the server answers with `status` (4xx, or 503) and {"error": message}.
class ProtocolError : public std::runtime_error {
 public:
  ProtocolError(int status, const std::string& message) : std::runtime_error(message), status_(status) {}
  int status() const { return status_; }

 private:
  int status_;
};

// n examples, row-major float32, n * numel(input_shape) values.
struct Examples {
  int64_t n = 0;
  std::vector<float> values;
};

// The outputs a model's responses carry: classification -> probabilities [N,K],
// class INT64 [N], label BYTES [N]; regression -> predictions [N,outputs].
std::vector<std::string> output_names(const ModelInfo& info);

// ---- KServe v2 -------------------------------------------------------------------------

struct KServeRequest {
  std::string id;  // echoed back ("" when the request had none)
  Examples examples;
  std::vector<std::string> outputs;  // requested output names; empty: all of them
};

KServeRequest parse_kserve_request(std::string_view body, const ModelInfo& info);
// `out`: examples.n * info.num_outputs floats.
std::string kserve_response(const KServeRequest& request, const float* out, const ModelInfo& info,
                            const std::string& model_name, const std::string& version);
// GET /v2/models/NAME: {"name", "versions", "platform", "inputs", "outputs"}.
std::string kserve_model_metadata(const ModelInfo& info, const std::string& model_name,
                                  const std::string& version);

// ---- TF-Serving REST -------------------------------------------------------------------

struct TfServingRequest {
  Examples examples;
  bool columnar = false;  // "inputs" (answered with "outputs") rather than "instances"
};

TfServingRequest parse_tf_serving_request(std::string_view body, const ModelInfo& info);
std::string tf_serving_response(const TfServingRequest& request, const float* out, const ModelInfo& info);

// ---- helpers (exposed for tests) ---------------------------------------------------------

// Standard base64 (RFC 4648; '=' padding optional, whitespace ignored; a "data:...;base64,"
// prefix skipped). ProtocolError 400 naming `what` on a character outside the alphabet.
std::vector<uint8_t> decode_base64(std::string_view text, const std::string& what);
std::string encode_base64(const uint8_t* data, size_t size);

// {"error": message} as a JSON document.
std::string error_body(const std::string& message);

}  // namespace deft::deploy
