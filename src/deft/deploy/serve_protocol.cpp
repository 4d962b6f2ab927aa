#include "deft/deploy/serve_protocol.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "deft/data/image.h"
#include "deft/tensor/error.h"

namespace deft::deploy {
namespace {

using json = nlohmann::json;

[[noreturn]] void bad(const std::string& message) { throw ProtocolError(400, message); }

json parse_body(std::string_view body) {
  try {
    return json::parse(body.begin(), body.end());
  } catch (const json::exception& e) {  // parse_error, or out_of_range for a number like 1e400
    std::string what = e.what();        // "[json.exception.parse_error.101] parse error at ..."
    if (auto p = what.find("] "); p != std::string::npos) what = what.substr(p + 2);
    bad(fmt::format("malformed JSON: {}", what));
  }
}

std::string dims_str(const Shape& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) fmt::format_to(std::back_inserter(out), "{}{}", i ? "," : "", s[i]);
  return out + "]";
}

// The model's input with a variable batch dimension, as metadata shows it: [-1,1,28,28].
std::string model_input_str(const ModelInfo& info) {
  Shape s{-1};
  s.insert(s.end(), info.input_shape.begin(), info.input_shape.end());
  return dims_str(s);
}

std::string quoted(const std::string& s) {
  return json(s).dump(-1, ' ', false, json::error_handler_t::replace);
}

// ---- datatypes ---------------------------------------------------------------------------

enum class Kind { Float, Integer, Bool, Bytes };

struct Datatype {
  std::string_view name;
  Kind kind;
  double lo, hi;  // the range of values the type holds
};

constexpr double kF32Max = std::numeric_limits<float>::max();

const Datatype kDatatypes[] = {
    {"FP32", Kind::Float, -kF32Max, kF32Max},
    {"FP64", Kind::Float, -kF32Max, kF32Max},  // the model computes in float32: larger values do not fit
    {"FP16", Kind::Float, -65504.0, 65504.0},
    {"UINT8", Kind::Integer, 0, 255},
    {"UINT16", Kind::Integer, 0, 65535},
    {"UINT32", Kind::Integer, 0, 4294967295.0},
    {"UINT64", Kind::Integer, 0, 18446744073709551615.0},
    {"INT8", Kind::Integer, -128, 127},
    {"INT16", Kind::Integer, -32768, 32767},
    {"INT32", Kind::Integer, -2147483648.0, 2147483647.0},
    {"INT64", Kind::Integer, -9223372036854775808.0, 9223372036854775807.0},
    {"BOOL", Kind::Bool, 0, 1},
    {"BYTES", Kind::Bytes, 0, 0},
};

const Datatype kJsonNumber{"number", Kind::Float, -kF32Max, kF32Max};

const Datatype& find_datatype(const std::string& name, const std::string& where) {
  for (const auto& d : kDatatypes)
    if (d.name == name) return d;
  bad(fmt::format("{} '{}' is not a KServe datatype (FP32, FP64, FP16, UINT8..UINT64, INT8..INT64, BYTES)",
                  where, name));
}

// One input value, checked against the datatype; `where` is built only for the message.
template <class Where>
float value_of(const json& v, const Datatype& dt, bool null_is_missing, const Where& where) {
  if (v.is_null()) {
    if (null_is_missing) return std::numeric_limits<float>::quiet_NaN();
    bad(fmt::format("{}: null is not a value (only table models take null, as a missing value)", where()));
  }
  if (v.is_boolean()) {
    if (dt.kind == Kind::Bool) return v.get<bool>() ? 1.f : 0.f;
    bad(fmt::format("{}: {} is not a number", where(), v.dump()));
  }
  if (!v.is_number()) bad(fmt::format("{}: {} is not a number", where(), v.dump().substr(0, 40)));
  if (dt.kind == Kind::Bool) bad(fmt::format("{}: {} is not a BOOL (true or false)", where(), v.dump()));
  const double d = v.get<double>();
  if (!std::isfinite(d)) bad(fmt::format("{}: the value is not finite", where()));
  if (dt.kind == Kind::Integer && !v.is_number_integer() && d != std::floor(d))
    bad(fmt::format("{}: {} is not an integer, as {} requires", where(), v.dump(), dt.name));
  if (d < dt.lo || d > dt.hi) {
    if (dt.kind == Kind::Float && std::fabs(d) > kF32Max)
      bad(fmt::format("{}: {} is not finite as float32 (the model's precision)", where(), v.dump()));
    bad(fmt::format("{}: {} is out of range for {}", where(), v.dump(), dt.name));
  }
  return static_cast<float>(d);
}

// ---- examples from JSON values -------------------------------------------------------------

// Writes a nested list of exactly `shape` (from dimension `depth` on) into dst, row-major.
void fill_nested(const json& node, const Shape& shape, size_t depth, const Datatype& dt, bool nulls,
                 float*& dst, const std::string& path) {
  if (depth == shape.size()) {
    *dst++ = value_of(node, dt, nulls, [&] { return path; });
    return;
  }
  if (!node.is_array())
    bad(fmt::format("{}: expected a list of {} values (shape {}), got {}", path, shape[depth],
                    dims_str(shape), node.dump().substr(0, 40)));
  if (static_cast<int64_t>(node.size()) != shape[depth])
    bad(fmt::format("{}: has {} entries, shape {} needs {} at dimension {}", path, node.size(),
                    dims_str(shape), shape[depth], depth));
  for (size_t i = 0; i < node.size(); ++i)
    fill_nested(node[i], shape, depth + 1, dt, nulls, dst, fmt::format("{}[{}]", path, i));
}

// `data` holding numel(shape) values, flat or nested as `shape`.
void fill_values(const json& data, const Shape& shape, const Datatype& dt, bool nulls, float* dst,
                 const std::string& path) {
  const int64_t numel = shape_numel(shape);
  if (!data.is_array()) {
    if (numel == 1 && shape.empty()) {
      *dst = value_of(data, dt, nulls, [&] { return path; });
      return;
    }
    bad(fmt::format("{}: expected a list of values, got {}", path, data.dump().substr(0, 40)));
  }
  const bool flat = data.empty() || !data[0].is_array();
  if (!flat || shape.size() == 1) {
    fill_nested(data, shape, 0, dt, nulls, dst, path);
    return;
  }
  if (static_cast<int64_t>(data.size()) != numel)
    bad(fmt::format("{}: has {} values, shape {} needs {}", path, data.size(), dims_str(shape), numel));
  for (size_t i = 0; i < data.size(); ++i)
    dst[i] = value_of(data[i], dt, nulls, [&] { return fmt::format("{}[{}]", path, i); });
}

// A base64 PNG/JPEG image decoded into the model's [C,H,W] (channels converted, never resized).
void fill_image(std::string_view b64, const ModelInfo& info, float* dst, const std::string& path) {
  if (!info.image)
    bad(fmt::format("{}: the model takes table rows of {} features, not images", path,
                    shape_numel(info.input_shape)));
  const std::vector<uint8_t> bytes = decode_base64(b64, path);
  Tensor img;
  try {
    img = data::decode_image_bytes(bytes.data(), bytes.size(), path);
  } catch (const Error& e) {
    bad(fmt::format("{}: not a PNG or JPEG image: {}", path, e.what()));
  }
  const Shape& s = info.input_shape;
  if (img.size(1) != s[1] || img.size(2) != s[2])
    bad(fmt::format("{}: image is {}x{}, the model takes {}x{} (input {})", path, img.size(1), img.size(2),
                    s[1], s[2], model_input_str(info)));
  if (img.size(0) != s[0]) img = data::convert_channels(img, s[0]);
  img = img.contiguous_copy();
  const uint8_t* p = img.data<uint8_t>();
  std::transform(p, p + img.numel(), dst, [](uint8_t v) { return static_cast<float>(v); });
}

// A base64 string or a {"b64": "..."} object; false when `v` is neither.
bool b64_text(const json& v, std::string_view& out) {
  if (v.is_string()) {
    out = v.get_ref<const std::string&>();
    return true;
  }
  if (v.is_object() && v.size() == 1 && v.contains("b64") && v["b64"].is_string()) {
    out = v["b64"].get_ref<const std::string&>();
    return true;
  }
  return false;
}

bool is_table(const ModelInfo& info) { return !info.image; }

// ---- responses ---------------------------------------------------------------------------

void append_float(std::string& out, float v) {
  if (std::isfinite(v))
    fmt::format_to(std::back_inserter(out), "{}", v);
  else
    out += "null";
}

int64_t argmax(const float* row, int64_t k) { return std::max_element(row, row + k) - row; }

const std::string& label_of(const ModelInfo& info, int64_t cls) {
  static const std::string none;
  return cls < static_cast<int64_t>(info.class_names.size()) ? info.class_names[static_cast<size_t>(cls)]
                                                             : none;
}

void append_rows(std::string& out, const float* data, int64_t n, int64_t k) {
  out += '[';
  for (int64_t i = 0; i < n; ++i) {
    out += i ? ",[" : "[";
    for (int64_t j = 0; j < k; ++j) {
      if (j) out += ',';
      append_float(out, data[i * k + j]);
    }
    out += ']';
  }
  out += ']';
}

}  // namespace

std::vector<std::string> output_names(const ModelInfo& info) {
  if (info.classification) return {"probabilities", "class", "label"};
  return {"predictions"};
}

std::string error_body(const std::string& message) {
  return json{{"error", message}}.dump(-1, ' ', false, json::error_handler_t::replace);
}

// ---- base64 ---------------------------------------------------------------------------------

std::vector<uint8_t> decode_base64(std::string_view text, const std::string& what) {
  if (text.starts_with("data:")) {  // a data URL: data:image/png;base64,....
    const auto comma = text.find(',');
    if (comma == std::string_view::npos) bad(fmt::format("{}: a data: URL without ','", what));
    text.remove_prefix(comma + 1);
  }
  std::vector<uint8_t> out;
  out.reserve(text.size() / 4 * 3);
  uint32_t acc = 0;
  int bits = 0;
  size_t pad = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    int v;
    if (c >= 'A' && c <= 'Z')
      v = c - 'A';
    else if (c >= 'a' && c <= 'z')
      v = c - 'a' + 26;
    else if (c >= '0' && c <= '9')
      v = c - '0' + 52;
    else if (c == '+' || c == '-')
      v = 62;  // '-' and '_': the URL-safe alphabet
    else if (c == '/' || c == '_')
      v = 63;
    else if (c == '=') {
      ++pad;
      continue;
    } else if (c == ' ' || c == '\n' || c == '\r' || c == '\t') {
      continue;
    } else {
      bad(fmt::format("{}: not base64: character {} at offset {}", what,
                      c >= 0x20 && c < 0x7f ? fmt::format("'{}'", c)
                                            : fmt::format("0x{:02x}", static_cast<unsigned char>(c)),
                      i));
    }
    if (pad) bad(fmt::format("{}: not base64: data after '=' padding at offset {}", what, i));
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<uint8_t>((acc >> bits) & 0xff));
    }
  }
  if (bits >= 6) bad(fmt::format("{}: not base64: truncated (length is not a multiple of 4)", what));
  return out;
}

std::string encode_base64(const uint8_t* data, size_t size) {
  static const char* abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((size + 2) / 3 * 4);
  for (size_t i = 0; i < size; i += 3) {
    const uint32_t b = (uint32_t{data[i]} << 16) | (i + 1 < size ? uint32_t{data[i + 1]} << 8 : 0) |
                       (i + 2 < size ? uint32_t{data[i + 2]} : 0);
    out += abc[(b >> 18) & 63];
    out += abc[(b >> 12) & 63];
    out += i + 1 < size ? abc[(b >> 6) & 63] : '=';
    out += i + 2 < size ? abc[b & 63] : '=';
  }
  return out;
}

// ---- KServe v2 ---------------------------------------------------------------------------

KServeRequest parse_kserve_request(std::string_view body, const ModelInfo& info) {
  const json j = parse_body(body);
  if (!j.is_object()) bad("the request must be a JSON object with \"inputs\"");
  KServeRequest r;
  if (auto it = j.find("id"); it != j.end()) {
    if (!it->is_string()) bad("\"id\" must be a string");
    r.id = it->get<std::string>();
  }
  const auto inputs = j.find("inputs");
  if (inputs == j.end()) bad("missing \"inputs\" (a list with one input named \"input\")");
  if (!inputs->is_array()) bad("\"inputs\" must be a list");
  if (inputs->size() != 1)
    bad(fmt::format("\"inputs\" has {} entries; the model has one input, named \"input\"", inputs->size()));
  const json& in = (*inputs)[0];
  if (!in.is_object()) bad("inputs[0] must be an object with name, shape, datatype and data");
  for (const char* key : {"name", "shape", "datatype", "data"})
    if (!in.contains(key)) bad(fmt::format("inputs[0] is missing \"{}\"", key));
  if (!in["name"].is_string()) bad("inputs[0].name must be a string");
  if (in["name"] != "input")
    bad(fmt::format("inputs[0].name {} is not an input of the model (its input is named \"input\")",
                    in["name"].dump()));
  if (!in["datatype"].is_string()) bad("inputs[0].datatype must be a string");
  const Datatype& dt = find_datatype(in["datatype"].get<std::string>(), "inputs[0].datatype");

  const json& js = in["shape"];
  if (!js.is_array() || js.empty()) bad("inputs[0].shape must be a non-empty list of sizes");
  Shape shape;
  for (const auto& d : js) {
    if (!d.is_number_integer() || d.get<int64_t>() < 0)
      bad(fmt::format("inputs[0].shape {}: sizes must be integers >= 0", js.dump()));
    shape.push_back(d.get<int64_t>());
  }
  const int64_t n = shape[0];
  const int64_t per = shape_numel(info.input_shape);
  const json& data = in["data"];
  r.examples.n = n;

  if (dt.kind == Kind::Bytes) {  // encoded images, one per example: shape [N] or [N,1]
    if (!info.image)
      bad(fmt::format("inputs[0].datatype BYTES: the model takes table rows, send FP32 with shape {}",
                      model_input_str(info)));
    if (!(shape.size() == 1 || (shape.size() == 2 && shape[1] == 1)))
      bad(fmt::format("inputs[0].shape {}: BYTES images take shape [N] (one encoded PNG/JPEG per example)",
                      dims_str(shape)));
    if (!data.is_array()) bad("inputs[0].data must be a list of base64 PNG/JPEG strings");
    if (n > static_cast<int64_t>(data.size()))
      bad(fmt::format("inputs[0].data has {} images, shape {} needs {}", data.size(), dims_str(shape), n));
    json flat = json::array();
    for (const auto& e : data) {
      if (e.is_array()) {
        for (const auto& x : e) flat.push_back(x);
      } else {
        flat.push_back(e);
      }
    }
    if (static_cast<int64_t>(flat.size()) != n)
      bad(fmt::format("inputs[0].data has {} images, shape {} needs {}", flat.size(), dims_str(shape), n));
    r.examples.values.resize(static_cast<size_t>(n * per));
    for (int64_t i = 0; i < n; ++i) {
      std::string_view text;
      const std::string path = fmt::format("inputs[0].data[{}]", i);
      if (!b64_text(flat[static_cast<size_t>(i)], text))
        bad(path + ": expected a base64 string or {\"b64\": \"...\"}");
      fill_image(text, info, r.examples.values.data() + i * per, path);
    }
  } else {
    if (!data.is_array()) bad("inputs[0].data must be a list of values (flat or nested as the shape)");
    if (per > 0 && n > static_cast<int64_t>(data.size()))  // checked before anything is allocated for n
      bad(fmt::format("inputs[0].shape {} says {} examples, data has {} entries", dims_str(shape), n,
                      data.size()));
    Shape want{n};
    want.insert(want.end(), info.input_shape.begin(), info.input_shape.end());
    if (shape != want)
      bad(fmt::format("inputs[0].shape {} does not match the model's input {}", dims_str(shape),
                      model_input_str(info)));
    if (info.image && dt.kind == Kind::Bool) bad("inputs[0].datatype BOOL: images are UINT8 or FP32 pixels");
    r.examples.values.resize(static_cast<size_t>(n * per));
    fill_values(data, shape, dt, is_table(info), r.examples.values.data(), "inputs[0].data");
  }

  if (auto outs = j.find("outputs"); outs != j.end()) {
    if (!outs->is_array()) bad("\"outputs\" must be a list of {\"name\": ...}");
    const auto known = output_names(info);
    for (size_t i = 0; i < outs->size(); ++i) {
      const json& o = (*outs)[i];
      if (!o.is_object() || !o.contains("name") || !o["name"].is_string())
        bad(fmt::format("outputs[{}] must be an object with a \"name\"", i));
      const std::string name = o["name"].get<std::string>();
      if (std::find(known.begin(), known.end(), name) == known.end())
        bad(fmt::format("outputs[{}].name {} is not an output of the model (it has {})", i, quoted(name),
                        json(known).dump()));
      r.outputs.push_back(name);
    }
  }
  return r;
}

std::string kserve_response(const KServeRequest& request, const float* out, const ModelInfo& info,
                            const std::string& model_name, const std::string& version) {
  const int64_t n = request.examples.n, k = info.num_outputs;
  std::vector<std::string> names = request.outputs.empty() ? output_names(info) : request.outputs;
  std::string s;
  s.reserve(static_cast<size_t>(n * k * 12 + 256));
  fmt::format_to(std::back_inserter(s), "{{\"model_name\":{},\"model_version\":{},\"id\":{},\"outputs\":[",
                 quoted(model_name), quoted(version), quoted(request.id));
  for (size_t o = 0; o < names.size(); ++o) {
    if (o) s += ',';
    const std::string& name = names[o];
    if (name == "probabilities" || name == "predictions") {
      fmt::format_to(std::back_inserter(s),
                     "{{\"name\":\"{}\",\"shape\":[{},{}],\"datatype\":\"FP32\",\"data\":[", name, n, k);
      for (int64_t i = 0; i < n * k; ++i) {
        if (i) s += ',';
        append_float(s, out[i]);
      }
      s += "]}";
    } else if (name == "class") {
      fmt::format_to(std::back_inserter(s),
                     "{{\"name\":\"class\",\"shape\":[{}],\"datatype\":\"INT64\",\"data\":[", n);
      for (int64_t i = 0; i < n; ++i)
        fmt::format_to(std::back_inserter(s), "{}{}", i ? "," : "", argmax(out + i * k, k));
      s += "]}";
    } else {  // label
      fmt::format_to(std::back_inserter(s),
                     "{{\"name\":\"label\",\"shape\":[{}],\"datatype\":\"BYTES\",\"data\":[", n);
      for (int64_t i = 0; i < n; ++i) {
        if (i) s += ',';
        s += quoted(label_of(info, argmax(out + i * k, k)));
      }
      s += "]}";
    }
  }
  s += "]}";
  return s;
}

std::string kserve_model_metadata(const ModelInfo& info, const std::string& model_name,
                                  const std::string& version) {
  json shape = json::array({-1});
  for (int64_t d : info.input_shape) shape.push_back(d);
  json input{{"name", "input"}, {"datatype", info.image ? "UINT8" : "FP32"}, {"shape", shape}};
  json params{{"image", info.image}, {"classification", info.classification}};
  if (info.image) params["accepts"] = json::array({"UINT8", "FP32", "BYTES (base64 PNG/JPEG, shape [N])"});
  if (!info.feature_names.empty()) params["feature_names"] = info.feature_names;
  if (!info.class_names.empty()) params["class_names"] = info.class_names;
  params["architecture"] = info.architecture;
  params["parameters"] = info.parameters;
  params["quantized"] = info.quantized;
  json outputs = json::array();
  if (info.classification) {
    outputs.push_back({{"name", "probabilities"}, {"datatype", "FP32"}, {"shape", {-1, info.num_outputs}}});
    outputs.push_back({{"name", "class"}, {"datatype", "INT64"}, {"shape", {-1}}});
    outputs.push_back({{"name", "label"}, {"datatype", "BYTES"}, {"shape", {-1}}});
  } else {
    outputs.push_back({{"name", "predictions"}, {"datatype", "FP32"}, {"shape", {-1, info.num_outputs}}});
  }
  json j{{"name", model_name}, {"versions", {version}}, {"platform", "deft"},
         {"inputs", {input}},  {"outputs", outputs},    {"parameters", params}};
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

// ---- TF-Serving ----------------------------------------------------------------------------

namespace {

void fill_instance(const json& x, const ModelInfo& info, float* dst, const std::string& path) {
  if (x.is_object()) {
    if (x.contains("b64")) {
      std::string_view text;
      if (!b64_text(x, text)) bad(path + ": {\"b64\": ...} must hold only a base64 string");
      fill_image(text, info, dst, path);
      return;
    }
    if (x.contains("input")) {
      if (x.size() != 1) bad(fmt::format("{}: has keys other than \"input\" (the model's only input)", path));
      fill_instance(x["input"], info, dst, path + ".input");
      return;
    }
    if (info.feature_names.empty())
      bad(fmt::format("{}: an object needs \"input\" or \"b64\" (the model has one input, named \"input\")",
                      path));
    if (x.size() != info.feature_names.size())
      bad(fmt::format("{}: has {} fields, the model takes {} features", path, x.size(),
                      info.feature_names.size()));
    for (size_t f = 0; f < info.feature_names.size(); ++f) {
      const auto it = x.find(info.feature_names[f]);
      if (it == x.end()) bad(fmt::format("{}: missing feature {}", path, quoted(info.feature_names[f])));
      dst[f] =
          value_of(*it, kJsonNumber, true, [&] { return fmt::format("{}.{}", path, info.feature_names[f]); });
    }
    return;
  }
  if (x.is_string() && info.image) {  // a bare base64 string
    fill_image(x.get_ref<const std::string&>(), info, dst, path);
    return;
  }
  fill_values(x, info.input_shape, kJsonNumber, is_table(info), dst, path);
}

}  // namespace

TfServingRequest parse_tf_serving_request(std::string_view body, const ModelInfo& info) {
  const json j = parse_body(body);
  if (!j.is_object()) bad("the request must be a JSON object with \"instances\" or \"inputs\"");
  const bool has_instances = j.contains("instances"), has_inputs = j.contains("inputs");
  if (has_instances == has_inputs)
    bad("the request needs exactly one of \"instances\" (rows) or \"inputs\" (columns)");
  TfServingRequest r;
  r.columnar = has_inputs;
  const char* field = has_inputs ? "inputs" : "instances";
  const json* list = &j[field];
  std::string path = field;
  if (has_inputs && list->is_object()) {  // {"inputs": {"input": [...]}}
    if (list->size() != 1 || !list->contains("input"))
      bad("\"inputs\" as an object must hold exactly one key, \"input\" (the model's only input)");
    list = &(*list)["input"];
    path = "inputs.input";
  }
  if (!list->is_array()) bad(fmt::format("\"{}\" must be a list with one entry per example", path));
  const int64_t per = shape_numel(info.input_shape);
  r.examples.n = static_cast<int64_t>(list->size());
  r.examples.values.resize(static_cast<size_t>(r.examples.n * per));
  for (size_t i = 0; i < list->size(); ++i)
    fill_instance((*list)[i], info, r.examples.values.data() + static_cast<int64_t>(i) * per,
                  fmt::format("{}[{}]", path, i));
  return r;
}

std::string tf_serving_response(const TfServingRequest& request, const float* out, const ModelInfo& info) {
  std::string s = request.columnar ? "{\"outputs\":" : "{\"predictions\":";
  s.reserve(static_cast<size_t>(request.examples.n * info.num_outputs * 12 + 32));
  append_rows(s, out, request.examples.n, info.num_outputs);
  s += '}';
  return s;
}

}  // namespace deft::deploy
