// The safetensors container (model files) and the atomic file writer, on real
// files: round trips, byte layouts checked against the format's published test
// vectors, files built byte by byte here and by Python (independent of the
// writer), every kind of corrupt file, and what a failed write leaves behind.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "../data/data_test_util.h"
#include "deft/tensor/file_io.h"
#include "deft/tensor/kernels.h"
#include "deft/tensor/safetensors.h"

namespace {

namespace fs = std::filesystem;
using deft::DType;
using deft::InputError;
using deft::SafetensorsFile;
using deft::Shape;
using deft::Tensor;
using deft::test_util::expect_input_error;
using deft::test_util::TempDir;

using Named = std::vector<std::pair<std::string, Tensor>>;

std::string read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

void put(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(f.good()) << path;
}

std::vector<std::string> dir_entries(const TempDir& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir.path())) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

std::string u64le(uint64_t n) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[static_cast<size_t>(i)] = static_cast<char>((n >> (8 * i)) & 0xff);
  return s;
}

template <class T>
std::string le_bytes(const std::vector<T>& v) {
  std::string s(v.size() * sizeof(T), '\0');
  if (!v.empty()) std::memcpy(s.data(), v.data(), s.size());
  return s;
}

// A file from a header (as written, no padding added) and a data buffer.
std::string st_file(const std::string& header, const std::string& data) { return u64le(header.size()) + header + data; }

// Both readers reject `bytes` with an InputError that names the source and holds every part.
void expect_rejected(const std::string& bytes, const std::vector<std::string>& parts) {
  TempDir dir("deft-st");
  const std::string path = dir.file("bad.deft");
  put(path, bytes);
  std::vector<std::string> with_path = parts, with_name = parts;
  with_path.push_back(path);
  with_name.push_back("mem.deft");
  expect_input_error([&] { deft::read_safetensors(path); }, with_path);
  expect_input_error([&] { deft::read_safetensors_bytes(bytes, "mem.deft"); }, with_name);
}

// One tensor "a": F32 [2] at [0, 8], with 8 data bytes; `entry` replaces the entry's body.
std::string one_tensor(const std::string& entry, const std::string& data = std::string(8, '\0')) {
  return st_file("{\"a\":" + entry + "}", data);
}

}  // namespace

// ---- writing and reading back --------------------------------------------------------

TEST(Safetensors, RoundTripKeepsOrderDtypesValuesAndMetadata) {
  TempDir dir("deft-st");
  const std::string path = dir.file("m.deft");
  const Tensor f = Tensor::from_vector(std::vector<float>{1.5f, -2.f, 0.f, 3.25f, 1e-7f, -1e7f}, {2, 3});
  const Tensor i = Tensor::from_vector(std::vector<int64_t>{-(int64_t{1} << 50), 0, 7, 42});
  const Tensor u = Tensor::from_vector(std::vector<uint8_t>{0, 255, 1, 2, 3, 4, 5, 6}, {2, 1, 2, 2});
  const Tensor s = Tensor::full({}, 4.5);
  const Tensor e = Tensor::zeros({0, 3});
  const std::map<std::string, std::string> meta = {
      {"architecture", "{\"layers\": [784, 128, 10]}"}, {"classes", "T-shirt/top\nTrouser\t\"quoted\""},
      {"unicode", "h\xc3\xa9llo \xe2\x9c\x93"}, {"empty", ""}};
  // Names in an order that is neither sorted nor by dtype: the file keeps it.
  deft::write_safetensors(path, {{"z.weight", f}, {"b", i}, {"pixels", u}, {"scalar", s}, {"empty", e}}, meta);

  const SafetensorsFile r = deft::read_safetensors(path);
  ASSERT_EQ(r.tensors.size(), 5u);
  const std::vector<std::string> names = {"z.weight", "b", "pixels", "scalar", "empty"};
  for (size_t k = 0; k < names.size(); ++k) EXPECT_EQ(r.tensors[k].first, names[k]);
  EXPECT_EQ(r.stored_dtypes, (std::vector<std::string>{"F32", "I64", "U8", "F32", "F32"}));
  EXPECT_EQ(r.metadata, meta);
  EXPECT_EQ(r.source, path);

  EXPECT_EQ(r.at("z.weight").dtype(), DType::Float32);
  EXPECT_EQ(r.at("z.weight").shape(), (Shape{2, 3}));
  EXPECT_EQ(r.at("z.weight").to_vector<float>(), f.to_vector<float>());
  EXPECT_EQ(r.at("b").dtype(), DType::Int64);
  EXPECT_EQ(r.at("b").to_vector<int64_t>(), i.to_vector<int64_t>());
  EXPECT_EQ(r.at("pixels").dtype(), DType::UInt8);
  EXPECT_EQ(r.at("pixels").shape(), (Shape{2, 1, 2, 2}));
  EXPECT_EQ(r.at("pixels").to_vector<uint8_t>(), u.to_vector<uint8_t>());
  EXPECT_EQ(r.at("scalar").shape(), Shape{});
  EXPECT_EQ(r.at("scalar").item<float>(), 4.5f);
  EXPECT_EQ(r.at("empty").shape(), (Shape{0, 3}));
  for (const auto& [n, t] : r.tensors) EXPECT_TRUE(t.is_contiguous()) << n;

  // The same bytes from memory, and from encode_safetensors.
  const std::string bytes = read_all(path);
  EXPECT_EQ(bytes, deft::encode_safetensors({{"z.weight", f}, {"b", i}, {"pixels", u}, {"scalar", s}, {"empty", e}},
                                            meta));
  const SafetensorsFile m = deft::read_safetensors_bytes(bytes, "mem");
  EXPECT_EQ(m.tensors.size(), 5u);
  EXPECT_EQ(m.at("b").to_vector<int64_t>(), i.to_vector<int64_t>());
  EXPECT_EQ(dir_entries(dir), std::vector<std::string>{"m.deft"});  // no temporary file left
}

TEST(Safetensors, ViewsAreWrittenInLogicalOrder) {
  TempDir dir("deft-st");
  const Tensor base = deft::kernel::reshape(Tensor::arange(0, 24), {2, 3, 4});
  const Tensor t = deft::kernel::transpose(base, 0, 2);                  // [4,3,2], not contiguous
  const Tensor sl = deft::kernel::slice(base, 2, 1, 4, 2);               // [2,3,2], strided
  const Tensor ex = deft::kernel::expand(Tensor::from_vector(std::vector<float>{1, 2}, {2, 1}), {2, 3});
  ASSERT_FALSE(t.is_contiguous());
  ASSERT_FALSE(sl.is_contiguous());
  deft::write_safetensors(dir.file("v.deft"), {{"t", t}, {"sl", sl}, {"ex", ex}});
  const SafetensorsFile r = deft::read_safetensors(dir.file("v.deft"));
  EXPECT_EQ(r.at("t").shape(), (Shape{4, 3, 2}));
  EXPECT_EQ(r.at("t").to_vector<float>(), t.to_vector<float>());
  EXPECT_EQ(r.at("sl").to_vector<float>(), sl.to_vector<float>());
  EXPECT_EQ(r.at("ex").to_vector<float>(), (std::vector<float>{1, 1, 1, 2, 2, 2}));
}

TEST(Safetensors, LargeTensorStreamsThroughTheFile) {
  TempDir dir("deft-st");
  std::vector<float> v(1 << 20);
  for (size_t k = 0; k < v.size(); ++k) v[k] = static_cast<float>(k) * 0.5f;
  const Tensor big = Tensor::from_vector(v, {1024, 1024});
  deft::write_safetensors(dir.file("big.deft"), {{"w", big}, {"b", Tensor::ones({3})}});
  const SafetensorsFile r = deft::read_safetensors(dir.file("big.deft"));
  EXPECT_EQ(r.at("w").to_vector<float>(), v);
  EXPECT_EQ(fs::file_size(dir.file("big.deft")) % 4, 0u);
}

// The byte vectors of the reference implementation's own tests
// (huggingface/safetensors, safetensors/src/tensor.rs: test_serialization, test_empty).
TEST(Safetensors, LayoutMatchesTheReferenceTestVectors) {
  const Tensor attn = Tensor::from_vector(std::vector<float>{0, 1, 2, 3, 4, 5}, {1, 2, 3});
  const std::string got = deft::encode_safetensors({{"attn.0", attn}});
  const std::vector<uint8_t> want = {
      64, 0, 0, 0, 0, 0, 0, 0, 123, 34, 97, 116, 116, 110, 46, 48, 34, 58, 123, 34, 100,
      116, 121, 112, 101, 34, 58, 34, 70, 51, 50, 34, 44, 34, 115, 104, 97, 112, 101, 34,
      58, 91, 49, 44, 50, 44, 51, 93, 44, 34, 100, 97, 116, 97, 95, 111, 102, 102, 115,
      101, 116, 115, 34, 58, 91, 48, 44, 50, 52, 93, 125, 125, 0, 0, 0, 0, 0, 0, 128, 63,
      0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0, 160, 64};
  EXPECT_EQ(got, std::string(want.begin(), want.end()));

  // Padding: a shorter name leaves the header 7 bytes short of a multiple of 8.
  const std::string padded = deft::encode_safetensors({{"attn0", deft::kernel::reshape(attn, {1, 1, 2, 3})}});
  EXPECT_EQ(padded.substr(0, 8), u64le(72));
  EXPECT_EQ(padded.substr(8, 72),
            "{\"attn0\":{\"dtype\":\"F32\",\"shape\":[1,1,2,3],\"data_offsets\":[0,24]}}       ");

  EXPECT_EQ(deft::encode_safetensors({}), u64le(8) + "{}      ");
  EXPECT_EQ(deft::encode_safetensors({}, {{"framework", "pt"}}),
            u64le(40) + "{\"__metadata__\":{\"framework\":\"pt\"}}     ");
}

// A file written here byte by byte, the way another tool might: header entries
// out of offset order, whitespace, an unknown field, and every dtype deft converts.
TEST(Safetensors, ReadsAHandBuiltFileWithEveryDtype) {
  std::string data;
  std::vector<std::string> entries;
  auto add = [&](const std::string& name, const std::string& dtype, const std::string& shape, const std::string& b) {
    entries.push_back(fmt::format("  \"{}\": {{\"shape\": {}, \"dtype\": \"{}\", \"data_offsets\": [{}, {}], "
                                  "\"x-note\": {{\"nested\": [1, {{}}, null]}}}}",
                                  name, shape, dtype, data.size(), data.size() + b.size()));
    data += b;
  };
  const std::vector<std::tuple<std::string, std::string, std::string, std::string>> items = {
      {"f32", "F32", "[2]", le_bytes(std::vector<float>{1.5f, -0.25f})},
      {"f64", "F64", "[3]", le_bytes(std::vector<double>{0.1, -1e300, 2.5})},
      {"f16", "F16", "[5]", le_bytes(std::vector<uint16_t>{0x3c00, 0xc000, 0x0001, 0x7c00, 0x7bff})},
      {"bf16", "BF16", "[2]", le_bytes(std::vector<uint16_t>{0x3fc0, 0xc2f7})},
      {"i64", "I64", "[1]", le_bytes(std::vector<int64_t>{-(int64_t{1} << 62)})},
      {"i32", "I32", "[2]", le_bytes(std::vector<int32_t>{-70000, 2147483647})},
      {"i16", "I16", "[2]", le_bytes(std::vector<int16_t>{-300, 32767})},
      {"i8", "I8", "[2]", le_bytes(std::vector<int8_t>{-128, 5})},
      {"u64", "U64", "[1]", le_bytes(std::vector<uint64_t>{uint64_t{1} << 40})},
      {"u32", "U32", "[1]", le_bytes(std::vector<uint32_t>{4294967295u})},
      {"u16", "U16", "[1]", le_bytes(std::vector<uint16_t>{65535})},
      {"u8", "U8", "[2,2]", le_bytes(std::vector<uint8_t>{0, 1, 254, 255})},
      {"bool", "BOOL", "[2]", le_bytes(std::vector<uint8_t>{1, 0})},
      {"none", "F32", "[0, 4]", ""},
  };
  for (const auto& [n, d, s, b] : items) add(n, d, s, b);
  // Listed in the header in reverse offset order (metadata last): the reader sorts by offset.
  std::string h = "{\n";
  for (auto it = entries.rbegin(); it != entries.rend(); ++it) h += *it + ",\n";
  h += "  \"__metadata__\" : { \"format\" : \"pt\" }\n}   ";
  const SafetensorsFile r = deft::read_safetensors_bytes(st_file(h, data), "hand.safetensors");
  ASSERT_EQ(r.tensors.size(), items.size());
  for (size_t k = 0; k < items.size(); ++k) EXPECT_EQ(r.tensors[k].first, std::get<0>(items[k]));
  EXPECT_EQ(r.metadata.at("format"), "pt");
  EXPECT_EQ(r.at("f32").to_vector<float>(), (std::vector<float>{1.5f, -0.25f}));
  const auto f64 = r.at("f64").to_vector<float>();
  EXPECT_EQ(f64[0], 0.1f);
  EXPECT_EQ(f64[1], -std::numeric_limits<float>::infinity());
  EXPECT_EQ(f64[2], 2.5f);
  const auto f16 = r.at("f16").to_vector<float>();
  EXPECT_EQ(f16[0], 1.0f);
  EXPECT_EQ(f16[1], -2.0f);
  EXPECT_EQ(f16[2], std::ldexp(1.0f, -24));  // smallest subnormal
  EXPECT_EQ(f16[3], std::numeric_limits<float>::infinity());
  EXPECT_EQ(f16[4], 65504.0f);  // largest finite half
  EXPECT_EQ(r.at("bf16").to_vector<float>(), (std::vector<float>{1.5f, -123.5f}));
  EXPECT_EQ(r.at("i64").to_vector<int64_t>(), (std::vector<int64_t>{-(int64_t{1} << 62)}));
  EXPECT_EQ(r.at("i32").to_vector<int64_t>(), (std::vector<int64_t>{-70000, 2147483647}));
  EXPECT_EQ(r.at("i16").to_vector<int64_t>(), (std::vector<int64_t>{-300, 32767}));
  EXPECT_EQ(r.at("i8").to_vector<int64_t>(), (std::vector<int64_t>{-128, 5}));
  EXPECT_EQ(r.at("u64").to_vector<int64_t>(), (std::vector<int64_t>{int64_t{1} << 40}));
  EXPECT_EQ(r.at("u32").to_vector<int64_t>(), (std::vector<int64_t>{4294967295}));
  EXPECT_EQ(r.at("u16").to_vector<int64_t>(), (std::vector<int64_t>{65535}));
  EXPECT_EQ(r.at("u8").dtype(), DType::UInt8);
  EXPECT_EQ(r.at("u8").to_vector<uint8_t>(), (std::vector<uint8_t>{0, 1, 254, 255}));
  EXPECT_EQ(r.at("bool").to_vector<uint8_t>(), (std::vector<uint8_t>{1, 0}));
  EXPECT_EQ(r.at("none").shape(), (Shape{0, 4}));
  EXPECT_EQ(r.stored_dtypes[2], "F16");
}

TEST(Safetensors, MissingTensorNamesTheFileAndTheTensors) {
  const SafetensorsFile r =
      deft::read_safetensors_bytes(deft::encode_safetensors({{"w", Tensor::ones({2})}, {"b", Tensor::zeros({1})}}), "m.deft");
  EXPECT_TRUE(r.contains("w"));
  EXPECT_EQ(r.find("nope"), nullptr);
  expect_input_error([&] { (void)r.at("nope"); }, {"m.deft", "no tensor named 'nope'", "w, b"});
}

// Python (json + struct + numpy, no safetensors package) writes a file for deft and reads deft's.
TEST(Safetensors, InteroperatesWithAPythonImplementation) {
  if (::access("/usr/bin/python3", X_OK) != 0) GTEST_SKIP() << "/usr/bin/python3 not available";
  TempDir dir("deft-st");
  deft::write_safetensors(dir.file("deft.deft"),
                          {{"w", Tensor::from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3})},
                           {"y", Tensor::from_vector(std::vector<int64_t>{-1, 9})},
                           {"p", Tensor::from_vector(std::vector<uint8_t>{7})}},
                          {{"classes", "[\"a\", \"b\"]"}});
  const std::string script = dir.file("st.py");
  std::ofstream(script) << R"PY(
import json, struct, sys
import numpy as np
d = sys.argv[1]
# Read deft's file.
raw = open(d + '/deft.deft', 'rb').read()
n = struct.unpack('<Q', raw[:8])[0]
assert n % 8 == 0, n
h = json.loads(raw[8:8 + n].decode('utf-8'))
assert h.pop('__metadata__') == {'classes': '["a", "b"]'}
buf = raw[8 + n:]
types = {'F32': '<f4', 'I64': '<i8', 'U8': '|u1'}
def get(k):
    e = h[k]; b, en = e['data_offsets']
    return np.frombuffer(buf[b:en], dtype=types[e['dtype']]).reshape(e['shape'])
assert (get('w') == np.arange(1, 7, dtype=np.float32).reshape(2, 3)).all()
assert get('y').tolist() == [-1, 9] and get('p').tolist() == [7]
# Write one for deft: F64 and I32 data, sorted by name as Python dicts happen to be.
tensors = {'a.bias': np.array([0.5, -1.5], dtype='<f8'), 'b.idx': np.arange(6, dtype='<i4').reshape(3, 2)}
header, data = {'__metadata__': {'who': 'python'}}, b''
for k, v in tensors.items():
    header[k] = {'dtype': {'<f8': 'F64', '<i4': 'I32'}[v.dtype.str], 'shape': list(v.shape),
                 'data_offsets': [len(data), len(data) + v.nbytes]}
    data += v.tobytes()
hb = json.dumps(header).encode('utf-8')
hb += b' ' * ((8 - len(hb) % 8) % 8)
open(d + '/py.safetensors', 'wb').write(struct.pack('<Q', len(hb)) + hb + data)
)PY";
  ASSERT_EQ(std::system(("/usr/bin/python3 " + script + " " + dir.str()).c_str()), 0);
  const SafetensorsFile r = deft::read_safetensors(dir.file("py.safetensors"));
  EXPECT_EQ(r.metadata.at("who"), "python");
  EXPECT_EQ(r.at("a.bias").to_vector<float>(), (std::vector<float>{0.5f, -1.5f}));
  EXPECT_EQ(r.at("b.idx").dtype(), DType::Int64);
  EXPECT_EQ(r.at("b.idx").shape(), (Shape{3, 2}));
  EXPECT_EQ(r.at("b.idx").to_vector<int64_t>(), (std::vector<int64_t>{0, 1, 2, 3, 4, 5}));
}

// ---- corrupt files ---------------------------------------------------------------------

TEST(SafetensorsCorrupt, TooShortOrHeaderLengthWrong) {
  expect_rejected("", {"too short", "0 bytes"});
  expect_rejected(std::string("\x08\x00\x00", 3), {"too short", "3 bytes"});
  expect_rejected(u64le(100) + "{}", {"header length 100 runs past the end", "10 bytes"});
  expect_rejected(u64le(100'000'001) + "{}", {"header length 100000001 exceeds the limit"});
  expect_rejected(u64le(~uint64_t{0}) + "{}", {"exceeds the limit"});
  expect_rejected(u64le(0), {"must start with '{'"});
  expect_rejected(st_file("[1, 2]", ""), {"must start with '{'"});
  expect_rejected(st_file(" {}", ""), {"must start with '{'"});
  const char npy[] = "\x93NUMPY\x01\x00v\x00{'descr': '<f4'}";
  expect_rejected(std::string(npy, sizeof npy - 1), {"header length", "exceeds"});
}

TEST(SafetensorsCorrupt, InvalidJson) {
  expect_rejected(st_file("{\"a\": ", ""), {"not valid JSON"});
  expect_rejected(st_file("{} trailing", ""), {"not valid JSON", "near byte"});
  expect_rejected(st_file("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},}", std::string(8, '\0')),
                  {"not valid JSON"});
  // Invalid UTF-8 in a name.
  expect_rejected(st_file("{\"\xff\xfe\":{}}", ""), {"not valid JSON"});
  expect_rejected(st_file("{\"a\": nul}", ""), {"not valid JSON"});
}

TEST(SafetensorsCorrupt, WrongTypesAndMissingFields) {
  expect_rejected(st_file("{\"a\": 3}", ""), {"tensor 'a'", "must be an object", "the number 3"});
  expect_rejected(st_file("{\"a\": [1]}", ""), {"tensor 'a'", "must be an object", "an array"});
  expect_rejected(one_tensor("{\"dtype\":7,\"shape\":[2],\"data_offsets\":[0,8]}"),
                  {"tensor 'a'", "dtype must be a string"});
  expect_rejected(one_tensor("{\"dtype\":\"F32\",\"shape\":\"2\",\"data_offsets\":[0,8]}"),
                  {"tensor 'a'", "shape must be an array"});
  expect_rejected(one_tensor("{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":{}}"),
                  {"tensor 'a'", "data_offsets must be [begin, end]"});
  expect_rejected(one_tensor("{\"dtype\":\"F32\",\"data_offsets\":[0,8]}"), {"tensor 'a'", "no 'shape' field"});
  expect_rejected(one_tensor("{\"shape\":[2],\"data_offsets\":[0,8]}"), {"tensor 'a'", "no 'dtype' field"});
  expect_rejected(one_tensor("{\"dtype\":\"F32\",\"shape\":[2]}"), {"tensor 'a'", "no 'data_offsets' field"});
  expect_rejected(one_tensor("{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}"),
                  {"tensor 'a'", "non-negative integers", "-2"});
  expect_rejected(one_tensor("{\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]}"),
                  {"tensor 'a'", "non-negative integers", "2.0"});
  expect_rejected(one_tensor("{\"dtype\":\"F32\",\"shape\":[[2]],\"data_offsets\":[0,8]}"),
                  {"tensor 'a'", "non-negative integers", "an array"});
  expect_rejected(one_tensor("{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8,8]}"),
                  {"tensor 'a'", "[begin, end]"});
  expect_rejected(one_tensor("{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}"),
                  {"tensor 'a'", "[begin, end]", "got 1"});
  expect_rejected(one_tensor("{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,-8]}"),
                  {"tensor 'a'", "data_offsets must hold non-negative integers"});
}

TEST(SafetensorsCorrupt, UnknownAndUnsupportedDtypes) {
  expect_rejected(one_tensor("{\"dtype\":\"Q7\",\"shape\":[2],\"data_offsets\":[0,8]}"),
                  {"tensor 'a'", "unknown dtype 'Q7'", "supported: F32"});
  expect_rejected(one_tensor("{\"dtype\":\"F8_E4M3\",\"shape\":[8],\"data_offsets\":[0,8]}"),
                  {"tensor 'a'", "unsupported dtype 'F8_E4M3'"});
  expect_rejected(one_tensor("{\"dtype\":\"f32\",\"shape\":[2],\"data_offsets\":[0,8]}"), {"unknown dtype 'f32'"});
  // U64 values that do not fit int64.
  expect_rejected(one_tensor("{\"dtype\":\"U64\",\"shape\":[1],\"data_offsets\":[0,8]}", u64le(~uint64_t{0})),
                  {"tensor 'a'", "18446744073709551615", "does not fit int64"});
}

TEST(SafetensorsCorrupt, ShapeAndOffsetsDisagree) {
  expect_rejected(one_tensor("{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,8]}"),
                  {"tensor 'a'", "[2,3]", "needs 24 bytes", "[0, 8] span 8"});
  expect_rejected(one_tensor("{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[0,8]}"), {"needs 16 bytes"});
  expect_rejected(one_tensor("{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}"),
                  {"tensor 'a'", "[8, 0] end before they begin"});
}

TEST(SafetensorsCorrupt, OverlapsGapsAndUncoveredBytes) {
  const std::string a = "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}";
  expect_rejected(st_file("{" + a + ",\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                          std::string(12, '\0')),
                  {"tensor 'b'", "[4, 12] overlap tensor 'a' [0, 8]"});
  expect_rejected(st_file("{" + a + ",\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
                          std::string(8, '\0')),
                  {"overlap"});
  expect_rejected(st_file("{" + a + ",\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[12,16]}}",
                          std::string(16, '\0')),
                  {"tensor 'b'", "gap of 4 bytes after tensor 'a'"});
  expect_rejected(one_tensor("{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}"),
                  {"tensor 'a'", "must start at byte 0"});
  // Truncated data and trailing bytes.
  expect_rejected(one_tensor("{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}", std::string(5, '\0')),
                  {"truncated", "tensor 'a' ends at byte 8", "only 5 data bytes"});
  expect_rejected(one_tensor("{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}", std::string(9, '\0')),
                  {"1 bytes of trailing data"});
  expect_rejected(st_file("{}", "x"), {"trailing data"});
  // A real file cut short.
  const std::string good = deft::encode_safetensors({{"w", Tensor::ones({4, 4})}});
  expect_rejected(good.substr(0, good.size() - 3), {"truncated", "tensor 'w'"});
}

TEST(SafetensorsCorrupt, DuplicateNamesFieldsAndMetadataKeys) {
  const std::string a = "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}";
  expect_rejected(st_file("{" + a + "," + a + "}", std::string(8, '\0')), {"duplicate tensor name 'a'"});
  expect_rejected(one_tensor("{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}"),
                  {"tensor 'a'", "duplicate field 'dtype'"});
  expect_rejected(st_file("{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", ""), {"duplicate metadata key 'k'"});
  expect_rejected(st_file("{\"__metadata__\":{},\"__metadata__\":{}}", ""), {"duplicate key '__metadata__'"});
}

TEST(SafetensorsCorrupt, MetadataMustMapStringsToStrings) {
  expect_rejected(st_file("{\"__metadata__\":{\"epochs\":10}}", ""),
                  {"metadata 'epochs' must be a string", "the number 10"});
  expect_rejected(st_file("{\"__metadata__\":{\"cfg\":{\"lr\":\"1\"}}}", ""), {"metadata 'cfg'", "an object"});
  expect_rejected(st_file("{\"__metadata__\":{\"l\":[\"a\"]}}", ""), {"metadata 'l'", "an array"});
  expect_rejected(st_file("{\"__metadata__\":{\"n\":null}}", ""), {"metadata 'n'", "null"});
  expect_rejected(st_file("{\"__metadata__\":\"x\"}", ""), {"'__metadata__' must be an object"});
  expect_rejected(st_file("{\"__metadata__\":null}", ""), {"'__metadata__' must be an object", "null"});
}

TEST(SafetensorsCorrupt, HugeDimsDoNotOverflow) {
  // 2^32 * 2^32 * 4 bytes overflows 64 bits.
  expect_rejected(one_tensor("{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}"),
                  {"tensor 'a'", "too large"});
  expect_rejected(one_tensor("{\"dtype\":\"F32\",\"shape\":[4611686018427387904,4],\"data_offsets\":[0,0]}"),
                  {"tensor 'a'", "too large"});
  expect_rejected(one_tensor("{\"dtype\":\"F64\",\"shape\":[4611686018427387904],\"data_offsets\":[0,0]}"),
                  {"tensor 'a'", "more than 2^64 bytes"});
  // Empty, but the other dims would overflow the strides.
  expect_rejected(one_tensor("{\"dtype\":\"F32\",\"shape\":[0,4294967296,4294967296],\"data_offsets\":[0,0]}", ""),
                  {"tensor 'a'", "too large"});
  expect_rejected(one_tensor("{\"dtype\":\"F32\",\"shape\":[9223372036854775808],\"data_offsets\":[0,8]}"),
                  {"tensor 'a'", "dimension 9223372036854775808 is too large"});
  expect_rejected(one_tensor("{\"dtype\":\"F32\",\"shape\":[18446744073709551616],\"data_offsets\":[0,8]}"),
                  {"tensor 'a'", "non-negative integers"});
  // Offsets near 2^64 must not wrap.
  expect_rejected(one_tensor("{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[18446744073709551608,0]}"),
                  {"end before they begin"});
  std::string dims = "[";
  for (int k = 0; k < 65; ++k) dims += k ? ",1" : "1";
  expect_rejected(one_tensor("{\"dtype\":\"F32\",\"shape\":" + dims + "],\"data_offsets\":[0,4]}", "abcd"),
                  {"more than 64 dims"});
}

TEST(SafetensorsCorrupt, FilesThatCannotBeRead) {
  TempDir dir("deft-st");
  expect_input_error([&] { deft::read_safetensors(dir.file("missing.deft")); },
                     {"cannot open", "missing.deft", "No such file"});
  expect_input_error([&] { deft::read_safetensors(dir.str()); }, {"not a regular file"});
}

// ---- writer errors ---------------------------------------------------------------------

TEST(SafetensorsWrite, RejectsBadNamesAndLeavesTheOldFile) {
  TempDir dir("deft-st");
  const std::string path = dir.file("m.deft");
  deft::write_safetensors(path, {{"w", Tensor::ones({2})}});
  const std::string before = read_all(path);
  expect_input_error([&] { deft::write_safetensors(path, {{"w", Tensor::ones({2})}, {"w", Tensor::zeros({1})}}); },
                     {"duplicate tensor name 'w'"});
  expect_input_error([&] { deft::write_safetensors(path, {{"__metadata__", Tensor::ones({2})}}); }, {"reserved"});
  expect_input_error([&] { deft::write_safetensors(path, {{"u", Tensor()}}); }, {"'u' is undefined"});
  expect_input_error([&] { deft::write_safetensors(path, {{"bad\xff", Tensor::ones({1})}}); },
                     {"tensor name", "not valid UTF-8"});
  expect_input_error([&] { deft::write_safetensors(path, {}, {{"k", "\xc3"}}); }, {"metadata value", "UTF-8"});
  EXPECT_EQ(read_all(path), before);
  EXPECT_EQ(dir_entries(dir), std::vector<std::string>{"m.deft"});
}

TEST(SafetensorsWrite, UnwritablePathNamesThePathAndTheReason) {
  TempDir dir("deft-st");
  const std::string path = dir.file("no/such/folder/m.deft");
  expect_input_error([&] { deft::write_safetensors(path, {{"w", Tensor::ones({2})}}); },
                     {path, "cannot create", "No such file or directory"});
}

// ---- the atomic writer -----------------------------------------------------------------

TEST(AtomicWrite, ReplacesTheFileAndLeavesNoTemporaryFile) {
  TempDir dir("deft-io");
  const std::string path = dir.file("a.txt");
  deft::write_file_atomically(path, std::string_view("first version"));
  EXPECT_EQ(read_all(path), "first version");
  deft::write_file_atomically(path, std::vector<uint8_t>{'2', 'n', 'd'});
  EXPECT_EQ(read_all(path), "2nd");
  uint64_t written = 0;
  deft::write_file_atomically(path, [&](deft::FileSink& out) {
    out.write("ab", 2);
    out.write(std::string_view("cd"));
    written = out.bytes_written();
  });
  EXPECT_EQ(written, 4u);
  EXPECT_EQ(read_all(path), "abcd");
  deft::write_file_atomically(path, std::string_view());
  EXPECT_EQ(read_all(path), "");
  EXPECT_EQ(dir_entries(dir), std::vector<std::string>{"a.txt"});
}

TEST(AtomicWrite, AnExceptionMidWriteKeepsTheOldFile) {
  TempDir dir("deft-io");
  const std::string path = dir.file("m.deft");
  deft::write_file_atomically(path, std::string_view("old contents"));
  EXPECT_THROW(deft::write_file_atomically(path,
                                           [](deft::FileSink& out) {
                                             out.write(std::string(100000, 'x'));
                                             throw std::runtime_error("tensor failed");
                                           }),
               std::runtime_error);
  EXPECT_EQ(read_all(path), "old contents");
  EXPECT_EQ(dir_entries(dir), std::vector<std::string>{"m.deft"});
  // An InputError from the callback passes through unchanged.
  expect_input_error([&] { deft::write_file_atomically(path, [](deft::FileSink&) { deft::fail("bad tensor 'w'"); }); },
                     {"bad tensor 'w'"});
  EXPECT_EQ(read_all(path), "old contents");
  EXPECT_EQ(dir_entries(dir), std::vector<std::string>{"m.deft"});
}

TEST(AtomicWrite, FailedRenameRemovesTheTemporaryFile) {
  TempDir dir("deft-io");
  // The target is a non-empty folder: the temporary file is written, the rename fails.
  fs::create_directories(dir.path() / "taken" / "inside");
  const std::string path = dir.file("taken");
  expect_input_error([&] { deft::write_file_atomically(path, std::string_view("data")); },
                     {path, "cannot rename"});
  EXPECT_TRUE(fs::is_directory(path));
  EXPECT_EQ(dir_entries(dir), std::vector<std::string>{"taken"});
}

TEST(AtomicWrite, UnwritableFolderKeepsTheOldFile) {
  TempDir dir("deft-io");
  const std::string path = dir.file("m.deft");
  deft::write_safetensors(path, {{"w", Tensor::ones({2})}});
  const std::string before = read_all(path);
  // A path through a regular file fails for every user, root included.
  expect_input_error([&] { deft::write_file_atomically(path + "/x", std::string_view("data")); },
                     {path + "/x", "cannot create", "Not a directory"});
  if (::geteuid() != 0) {  // root ignores folder permissions
    ASSERT_EQ(::chmod(dir.str().c_str(), 0555), 0);
    expect_input_error([&] { deft::write_safetensors(path, {{"w", Tensor::zeros({3})}}); },
                       {path, "cannot create", "Permission denied"});
    ::chmod(dir.str().c_str(), 0755);
  }
  EXPECT_EQ(read_all(path), before);
  EXPECT_EQ(deft::read_safetensors(path).at("w").to_vector<float>(), (std::vector<float>{1, 1}));
  EXPECT_EQ(dir_entries(dir), std::vector<std::string>{"m.deft"});
}

TEST(InputFile, ReadsAtOffsetsAndReportsShortFiles) {
  TempDir dir("deft-io");
  put(dir.file("f"), "0123456789");
  const deft::InputFile f(dir.file("f"));
  EXPECT_EQ(f.size(), 10u);
  char buf[4] = {};
  f.read_at(6, buf, 4);
  EXPECT_EQ(std::string(buf, 4), "6789");
  expect_input_error([&] { f.read_at(8, buf, 4); }, {dir.file("f"), "file ends at byte 10", "truncated"});
}
