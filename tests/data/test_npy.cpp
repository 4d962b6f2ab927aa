// NPY / NPZ readers and writer against files written by numpy (python3-numpy,
// run from the test), corrupt variants made here, and numpy reading deft's files.
#include <gtest/gtest.h>
#include <gmock/gmock.h>
#include <stdlib.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <vector>

#include "data_test_util.h"
#include "deft/data/npy.h"
#include "deft/data/registry.h"
#include "deft/tensor/kernels.h"

namespace {

using deft::test_util::TempDir;
using deft::test_util::write_file;
using deft::test_util::expect_input_error;

namespace fs = std::filesystem;
using deft::DType;
using deft::InputError;
using deft::Shape;
using deft::Tensor;
using deft::data::DatasetSplits;
using testing::HasSubstr;

using Bytes = std::vector<uint8_t>;

Bytes read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

// Runs a Python script (numpy imported as np, DIR = the folder); returns its exit code.
int run_python(const TempDir& dir, const std::string& body) {
  const std::string script = dir.file("script.py");
  std::ofstream(script) << "import sys, numpy as np\nDIR = sys.argv[1]\n" << body << "\n";
  const std::string cmd = "/usr/bin/python3 " + script + " " + dir.str();
  return std::system(cmd.c_str());
}

// Files written once by numpy for the whole suite.
class NumpyFiles : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    const int rc = run_python(*dir_, R"PY(
import os
from numpy.lib import format as F
vals = [0, 1, -1, 2, 127, -128, 5, 6, 7, 8, 9, 10]
def save(name, arr): np.save(os.path.join(DIR, name + '.npy'), arr)
save('f4', np.array([1.5, -2.25, 3e38, 1e-30, 0.1, float('inf')], dtype='<f4').reshape(2, 3))
save('f8', np.array([1.5, -2.25, 1e10, 0.1, 123456.789, -0.0], dtype='<f8').reshape(3, 2))
save('i8', np.array([0, -1, 2**40, -(2**62), 7, 9], dtype='<i8'))
save('i4', np.array([0, -1, 2**31 - 1, -(2**31), 7, 9], dtype='<i4').reshape(1, 2, 3))
save('i2', np.array([0, -1, 32767, -32768, 7, 9], dtype='<i2').reshape(1, 1, 2, 3))
save('i1', np.array(vals[:6], dtype='|i1'))
save('u1', np.array([0, 1, 255, 128, 7, 9], dtype='|u1'))
save('b1', np.array([True, False, True, True, False, False]))
save('u2', np.array([0, 65535, 7], dtype='<u2'))
save('u4', np.array([0, 4294967295, 7], dtype='<u4'))
save('scalar', np.float32(2.5))
save('empty', np.zeros((0, 5), dtype='<f4'))
for v in [(1, 0), (2, 0), (3, 0)]:
    with open(os.path.join(DIR, 'v%d.npy' % v[0]), 'wb') as f:
        F.write_array(f, np.arange(12, dtype='<f4').reshape(3, 4), version=v)
# unsupported
save('big_endian', np.arange(4, dtype='>f4'))
save('fortran', np.asfortranarray(np.arange(6, dtype='<f4').reshape(2, 3)))
np.save(os.path.join(DIR, 'object.npy'), np.array([{'a': 1}, None], dtype=object), allow_pickle=True)
save('structured', np.zeros(3, dtype=[('a', '<i4'), ('b', '<f4')]))
save('unicode', np.array(['ab', 'c']))
save('five_d', np.zeros((1, 1, 1, 1, 2), dtype='<f4'))
save('f2', np.zeros(3, dtype='<f2'))
save('c8', np.zeros(3, dtype='<c8'))
# archives
x = np.arange(24, dtype='<f4').reshape(4, 6)
np.savez(os.path.join(DIR, 'plain.npz'), x=x, y=np.array([0, 1, 2, 1], dtype='<i8'))
np.savez_compressed(os.path.join(DIR, 'comp.npz'),
    x_train=np.arange(5 * 2 * 3, dtype='|u1').reshape(5, 2, 3), y_train=np.array([3, 0, 1, 1, 2], dtype='|u1'),
    x_test=np.arange(2 * 2 * 3, dtype='|u1').reshape(2, 2, 3), y_test=np.array([1, 3], dtype='<i4'))
np.savez_compressed(os.path.join(DIR, 'big.npz'), a=np.random.RandomState(0).rand(300, 70).astype('<f8'),
    b=np.zeros((100, 100), dtype='<i8'))
np.savez(os.path.join(DIR, 'regress.npz'), x=np.arange(6, dtype='<f8').reshape(3, 2), y=np.array([0.5, 1.5, -2.0]))
np.savez(os.path.join(DIR, 'nhwc.npz'), x_train=np.arange(2 * 5 * 5 * 3, dtype='|u1').reshape(2, 5, 5, 3),
    y_train=np.array([0, 1]))
np.savez(os.path.join(DIR, 'unnamed.npz'), np.arange(3))
)PY");
    ok_ = rc == 0;
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  void SetUp() override {
    ASSERT_TRUE(ok_) << "numpy could not write the test files: apt-get install python3-numpy (scripts/bootstrap)";
  }
  static std::string file(const std::string& name) { return dir_->file(name); }

  static TempDir* dir_;
  static bool ok_;
};

TempDir* NumpyFiles::dir_ = nullptr;
bool NumpyFiles::ok_ = false;

TEST_F(NumpyFiles, FloatTypes) {
  const Tensor f4 = deft::data::read_npy(file("f4.npy"));
  EXPECT_EQ(f4.dtype(), DType::Float32);
  EXPECT_EQ(f4.shape(), (Shape{2, 3}));
  const std::vector<float> v4 = f4.to_vector<float>();
  EXPECT_EQ(v4[0], 1.5f);
  EXPECT_EQ(v4[1], -2.25f);
  EXPECT_EQ(v4[2], 3e38f);
  EXPECT_EQ(v4[3], 1e-30f);
  EXPECT_EQ(v4[4], 0.1f);
  EXPECT_TRUE(std::isinf(v4[5]));

  const Tensor f8 = deft::data::read_npy(file("f8.npy"));
  EXPECT_EQ(f8.dtype(), DType::Float32);
  EXPECT_EQ(f8.shape(), (Shape{3, 2}));
  EXPECT_EQ(f8.to_vector<float>(),
            (std::vector<float>{1.5f, -2.25f, 1e10f, 0.1f, static_cast<float>(123456.789), -0.0f}));
}

TEST_F(NumpyFiles, IntegerAndByteTypes) {
  auto ints = [](const std::string& path) {
    const Tensor t = deft::data::read_npy(path);
    EXPECT_EQ(t.dtype(), DType::Int64) << path;
    return t.to_vector<int64_t>();
  };
  EXPECT_EQ(ints(file("i8.npy")), (std::vector<int64_t>{0, -1, int64_t{1} << 40, -(int64_t{1} << 62), 7, 9}));
  EXPECT_EQ(ints(file("i4.npy")), (std::vector<int64_t>{0, -1, 2147483647, -2147483648LL, 7, 9}));
  EXPECT_EQ(ints(file("i2.npy")), (std::vector<int64_t>{0, -1, 32767, -32768, 7, 9}));
  EXPECT_EQ(ints(file("i1.npy")), (std::vector<int64_t>{0, 1, -1, 2, 127, -128}));
  EXPECT_EQ(ints(file("u2.npy")), (std::vector<int64_t>{0, 65535, 7}));
  EXPECT_EQ(ints(file("u4.npy")), (std::vector<int64_t>{0, 4294967295LL, 7}));
  EXPECT_EQ(deft::data::read_npy(file("i4.npy")).shape(), (Shape{1, 2, 3}));
  EXPECT_EQ(deft::data::read_npy(file("i2.npy")).shape(), (Shape{1, 1, 2, 3}));

  const Tensor u1 = deft::data::read_npy(file("u1.npy"));
  EXPECT_EQ(u1.dtype(), DType::UInt8);
  EXPECT_EQ(u1.to_vector<uint8_t>(), (std::vector<uint8_t>{0, 1, 255, 128, 7, 9}));
  const Tensor b1 = deft::data::read_npy(file("b1.npy"));
  EXPECT_EQ(b1.dtype(), DType::UInt8);
  EXPECT_EQ(b1.to_vector<uint8_t>(), (std::vector<uint8_t>{1, 0, 1, 1, 0, 0}));
}

TEST_F(NumpyFiles, ScalarsEmptyAndHeaderVersions) {
  const Tensor s = deft::data::read_npy(file("scalar.npy"));
  EXPECT_EQ(s.dim(), 0);
  EXPECT_EQ(s.item<float>(), 2.5f);
  const Tensor e = deft::data::read_npy(file("empty.npy"));
  EXPECT_EQ(e.shape(), (Shape{0, 5}));
  for (const char* v : {"v1.npy", "v2.npy", "v3.npy"}) {
    const Tensor t = deft::data::read_npy(file(v));
    EXPECT_EQ(t.shape(), (Shape{3, 4})) << v;
    EXPECT_EQ(t.to_vector<float>()[11], 11.0f) << v;
  }
  EXPECT_EQ(read_file(file("v2.npy"))[6], 2);  // numpy really wrote a 2.0 header
  EXPECT_EQ(read_file(file("v3.npy"))[6], 3);
}

TEST_F(NumpyFiles, UnsupportedDtypesAndLayoutsSaySo) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"big_endian.npy", "big-endian"},
      {"fortran.npy", "fortran_order"},
      {"object.npy", "object arrays"},
      {"structured.npy", "structured dtypes"},
      {"unicode.npy", "unsupported dtype '<U2'"},
      {"five_d.npy", "more than 4 dims"},
      {"f2.npy", "unsupported dtype '<f2'"},
      {"c8.npy", "unsupported dtype '<c8'"},
  };
  for (const auto& c : cases) {  // (no structured binding: clang 14 cannot capture one in a lambda)
    expect_input_error([&] { deft::data::read_npy(file(c.first)); }, {file(c.first), c.second});
  }
}

TEST_F(NumpyFiles, NpzStoredAndDeflated) {
  auto plain = deft::data::read_npz(file("plain.npz"));
  ASSERT_EQ(plain.size(), 2u);
  EXPECT_EQ(plain.at("x").shape(), (Shape{4, 6}));
  EXPECT_EQ(plain.at("x").to_vector<float>()[23], 23.0f);
  EXPECT_EQ(plain.at("y").to_vector<int64_t>(), (std::vector<int64_t>{0, 1, 2, 1}));

  auto comp = deft::data::read_npz(file("comp.npz"));
  ASSERT_EQ(comp.size(), 4u);
  EXPECT_EQ(comp.at("x_train").dtype(), DType::UInt8);
  EXPECT_EQ(comp.at("x_train").shape(), (Shape{5, 2, 3}));
  EXPECT_EQ(comp.at("y_test").to_vector<int64_t>(), (std::vector<int64_t>{1, 3}));

  auto big = deft::data::read_npz(file("big.npz"));  // deflate over several blocks
  EXPECT_EQ(big.at("a").shape(), (Shape{300, 70}));
  EXPECT_EQ(big.at("b").numel(), 10000);
  EXPECT_EQ(deft::data::read_npz(file("unnamed.npz")).count("arr_0"), 1u);
}

TEST_F(NumpyFiles, NpzAsDataset) {
  DatasetSplits d = deft::data::load_path(file("plain.npz"));
  EXPECT_EQ(d.train.features.shape(), (Shape{4, 6}));
  EXPECT_EQ(d.train.features.dtype(), DType::Float32);
  EXPECT_EQ(d.train.labels.to_vector<int64_t>(), (std::vector<int64_t>{0, 1, 2, 1}));
  EXPECT_EQ(d.train.class_names, (std::vector<std::string>{"0", "1", "2"}));
  EXPECT_FALSE(d.test.has_value());

  d = deft::data::load_path(file("comp.npz"));
  EXPECT_EQ(d.train.features.shape(), (Shape{5, 1, 2, 3}));  // [N,H,W] -> images
  EXPECT_EQ(d.train.features.dtype(), DType::UInt8);
  ASSERT_TRUE(d.test.has_value());
  EXPECT_EQ(d.test->features.shape(), (Shape{2, 1, 2, 3}));
  EXPECT_EQ(d.test->labels.dtype(), DType::Int64);
  EXPECT_EQ(d.train.class_names.size(), 4u);  // largest label 3
  EXPECT_EQ(d.test->class_names.size(), 4u);

  d = deft::data::load_path(file("regress.npz"));
  EXPECT_EQ(d.train.task, deft::data::Task::Regression);
  EXPECT_EQ(d.train.labels.dtype(), DType::Float32);
  EXPECT_TRUE(d.train.class_names.empty());

  d = deft::data::load_path(file("nhwc.npz"));  // [N,H,W,C] -> [N,C,H,W]
  ASSERT_EQ(d.train.features.shape(), (Shape{2, 3, 5, 5}));
  // Element (n=1, c=2, h=4, w=0) was at [1,4,0,2] = 75 + 4*15 + 0*3 + 2 = 137.
  EXPECT_EQ(d.train.features.to_vector<uint8_t>()[75 + 2 * 25 + 4 * 5 + 0], 137);

  d = deft::data::load_path(file("f4.npy"));  // a single array: unlabeled rows
  EXPECT_EQ(d.train.features.shape(), (Shape{2, 3}));
  EXPECT_FALSE(d.train.labels.defined());

  expect_input_error([&] { deft::data::load_path(file("big.npz")); },
                     {file("big.npz"), "no array named x or x_train", "a, b"});
}

TEST_F(NumpyFiles, NpzDatasetMismatches) {
  TempDir dir("deft-npy");
  ASSERT_EQ(run_python(dir, R"PY(
import os
np.savez(os.path.join(DIR, 'count.npz'), x=np.zeros((4, 2)), y=np.zeros(3, dtype='<i8'))
np.savez(os.path.join(DIR, 'neg.npz'), x=np.zeros((2, 2)), y=np.array([0, -3]))
np.savez(os.path.join(DIR, 'nolab.npz'), x_train=np.zeros((2, 2)), y_train=np.array([0, 1]), x_test=np.zeros((1, 2)))
np.savez(os.path.join(DIR, 'shape.npz'), x_train=np.zeros((2, 2)), y_train=np.array([0, 1]),
    x_test=np.zeros((1, 3)), y_test=np.array([0]))
)PY"),
            0);
  expect_input_error([&] { deft::data::load_path(dir.file("count.npz")); },
                     {dir.file("count.npz"), "4 examples", "3 labels"});
  expect_input_error([&] { deft::data::load_path(dir.file("neg.npz")); }, {dir.file("neg.npz"), "negative"});
  expect_input_error([&] { deft::data::load_path(dir.file("nolab.npz")); }, {dir.file("nolab.npz"), "x_test", "no labels"});
  expect_input_error([&] { deft::data::load_path(dir.file("shape.npz")); }, {dir.file("shape.npz"), "[2]", "[3]"});
}

// ---- writing ------------------------------------------------------------------------

TEST(NpyWrite, RoundTripAndNumpyReadsIt) {
  TempDir dir("deft-npy");
  const Tensor f = Tensor::from_vector(std::vector<float>{1.5f, -2.f, 0.f, 3.25f, 1e-7f, -1e7f}, {2, 3});
  const Tensor i = Tensor::from_vector(std::vector<int64_t>{-(int64_t{1} << 50), 0, 7}, {3});
  const Tensor u = Tensor::from_vector(std::vector<uint8_t>{0, 255, 1, 2, 3, 4, 5, 6}, {2, 1, 2, 2});
  const Tensor s = Tensor::scalar(4.5f);
  const Tensor e = Tensor::zeros({0, 3});
  deft::data::write_npy(dir.file("f.npy"), f);
  deft::data::write_npy(dir.file("i.npy"), i);
  deft::data::write_npy(dir.file("u.npy"), u);
  deft::data::write_npy(dir.file("s.npy"), s);
  deft::data::write_npy(dir.file("e.npy"), e);
  // A non-contiguous view is written in logical order.
  const Tensor ft = deft::kernel::transpose(f, 0, 1);
  deft::data::write_npy(dir.file("ft.npy"), ft);

  EXPECT_EQ(deft::data::read_npy(dir.file("f.npy")).to_vector<float>(), f.to_vector<float>());
  EXPECT_EQ(deft::data::read_npy(dir.file("i.npy")).to_vector<int64_t>(), i.to_vector<int64_t>());
  const Tensor u2 = deft::data::read_npy(dir.file("u.npy"));
  EXPECT_EQ(u2.shape(), u.shape());
  EXPECT_EQ(u2.to_vector<uint8_t>(), u.to_vector<uint8_t>());
  EXPECT_EQ(deft::data::read_npy(dir.file("s.npy")).dim(), 0);
  EXPECT_EQ(deft::data::read_npy(dir.file("ft.npy")).to_vector<float>(), ft.to_vector<float>());
  EXPECT_EQ(read_file(dir.file("f.npy")).size() % 64, 24u);  // header padded to 64: 64 + 6*4 bytes
  // No temporary files left behind.
  int files = 0;
  for ([[maybe_unused]] const auto& p : fs::directory_iterator(dir.str())) ++files;
  EXPECT_EQ(files, 6);

  const int rc = run_python(dir, R"PY(
import os
L = lambda n: np.load(os.path.join(DIR, n))
f = L('f.npy'); assert f.dtype == np.float32 and f.shape == (2, 3), f
assert (f == np.array([[1.5, -2, 0], [3.25, 1e-7, -1e7]], dtype=np.float32)).all()
i = L('i.npy'); assert i.dtype == np.int64 and list(i) == [-(1 << 50), 0, 7], i
u = L('u.npy'); assert u.dtype == np.uint8 and u.shape == (2, 1, 2, 2) and u.ravel().tolist() == [0, 255, 1, 2, 3, 4, 5, 6]
s = L('s.npy'); assert s.shape == () and s == 4.5
e = L('e.npy'); assert e.shape == (0, 3)
ft = L('ft.npy'); assert (ft == f.T).all()
)PY");
  EXPECT_EQ(rc, 0) << "numpy could not read deft's .npy files";
}

TEST(NpyWrite, UnwritablePathIsInputError) {
  TempDir dir("deft-npy");
  const std::string path = dir.file("no/such/folder/x.npy");
  expect_input_error([&] { deft::data::write_npy(path, Tensor::zeros({2})); }, {path, "cannot create"});
}

TEST(NpyWrite, NpyFolderAsDataset) {
  TempDir dir("deft-npy");
  deft::data::write_npy(dir.file("x_train.npy"), Tensor::ones({4, 3}));
  deft::data::write_npy(dir.file("y_train.npy"), Tensor::from_vector(std::vector<int64_t>{0, 1, 1, 0}));
  deft::data::write_npy(dir.file("x_test.npy"), Tensor::zeros({2, 3}));
  deft::data::write_npy(dir.file("y_test.npy"), Tensor::from_vector(std::vector<int64_t>{1, 0}));
  const DatasetSplits d = deft::data::load_path(dir.str());
  EXPECT_EQ(d.train.size(), 4);
  ASSERT_TRUE(d.test.has_value());
  EXPECT_EQ(d.test->size(), 2);
  EXPECT_EQ(d.train.class_names, (std::vector<std::string>{"0", "1"}));
}

// ---- corrupt files --------------------------------------------------------------------

Bytes npy_with_header(const std::string& header, size_t payload, int major = 1) {
  Bytes b = {0x93, 'N', 'U', 'M', 'P', 'Y', static_cast<uint8_t>(major), 0};
  if (major == 1) {
    b.push_back(static_cast<uint8_t>(header.size() & 0xff));
    b.push_back(static_cast<uint8_t>(header.size() >> 8));
  } else {
    for (int s = 0; s < 32; s += 8) b.push_back(static_cast<uint8_t>(header.size() >> s));
  }
  b.insert(b.end(), header.begin(), header.end());
  b.resize(b.size() + payload, 0);
  return b;
}

void expect_npy_error(const Bytes& content, const std::vector<std::string>& parts) {
  TempDir dir("deft-npy");
  const std::string path = dir.file("bad.npy");
  write_file(path, content);
  std::vector<std::string> all = {path};
  all.insert(all.end(), parts.begin(), parts.end());
  expect_input_error([&] { deft::data::read_npy(path); }, all);
}

TEST(NpyErrors, HeaderAndPayload) {
  const std::string good = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }\n";
  {
    const Bytes b = npy_with_header(good, 24);
    EXPECT_EQ(deft::data::parse_npy(b.data(), b.size(), "ok").numel(), 6);
  }
  expect_npy_error({}, {"empty file"});
  expect_npy_error(Bytes{'N', 'U', 'M', 'P', 'Y', 0, 0, 0, 0, 0, 0}, {"not a .npy file"});
  expect_npy_error(npy_with_header(good, 23), {"needs 24 data bytes", "file has 23", "truncated"});
  expect_npy_error(npy_with_header(good, 25), {"needs 24 data bytes", "file has 25", "trailing data"});
  expect_npy_error(npy_with_header(good, 24, 9), {"unsupported .npy format version 9.0"});
  Bytes long_header = npy_with_header(good, 0);
  long_header[8] = 0xff;
  expect_npy_error(long_header, {"truncated .npy header"});
  const std::vector<std::pair<std::string, std::string>> headers = {
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), ", "expected a quoted string"},
      {"{'descr': '<f4', 'fortran_order': False}", "missing key 'shape'"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (6,), 'extra': 1}", "unexpected key 'extra'"},
      {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (6,)}", "duplicate key"},
      {"{'descr': '<f4', 'fortran_order': Maybe, 'shape': (6,)}", "expected True or False"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (-6,)}", "non-negative integer"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (6)}", "(n,)"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2 3)}", "expected ',' or ')'"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (6,)} x", "after the closing"},
      {"{'descr': '<f4, 'fortran_order': False, 'shape': (6,)}", "expected ',' or '}'"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}", "too large"},
      {"{'descr': '<x9', 'fortran_order': False, 'shape': (6,)}", "unsupported dtype '<x9'"},
      {"\x01\x02\xff garbage", "invalid .npy header"},
      {"", "invalid .npy header"},
  };
  for (const auto& [h, what] : headers) expect_npy_error(npy_with_header(h, 24), {what});
  // Absurd shapes: no overflow, no huge allocation.
  expect_npy_error(npy_with_header("{'descr': '<f8', 'fortran_order': False, 'shape': (999999999999999, "
                                   "999999999999999, 999999999999999, 999999999999999)}",
                                   8),
                   {"more than 2^64"});
  expect_npy_error(npy_with_header("{'descr': '|u1', 'fortran_order': False, 'shape': (65536, 65536, 65536, 65536)}", 0),
                   {"more than 2^64"});
  // Same shape of bug as the IDX one fuzz_idx found: empty, but huge other dims.
  expect_npy_error(npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (0, 999999999999999, 999999999999999)}", 0),
                   {"too large"});
  {
    const Bytes b = npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (0, 4294967295), }", 0);
    EXPECT_EQ(deft::data::parse_npy(b.data(), b.size(), "ok").shape(), (Shape{0, 4294967295LL}));
  }
  // Version 2.0 header with a length past the end of the file.
  Bytes v2 = npy_with_header(good, 24, 2);
  v2[10] = 0x7f;
  expect_npy_error(v2, {"truncated .npy header"});
}

void expect_npz_error(const Bytes& content, const std::vector<std::string>& parts) {
  TempDir dir("deft-npy");
  const std::string path = dir.file("bad.npz");
  write_file(path, content);
  std::vector<std::string> all = {path};
  all.insert(all.end(), parts.begin(), parts.end());
  expect_input_error([&] { deft::data::read_npz(path); }, all);
}

TEST_F(NumpyFiles, CorruptNpz) {
  const Bytes plain = read_file(file("plain.npz"));
  const Bytes comp = read_file(file("comp.npz"));
  expect_npz_error({}, {"empty file"});
  expect_npz_error(Bytes(plain.begin(), plain.end() - 10), {"no end-of-central-directory record", "truncated"});
  expect_npz_error(Bytes(plain.begin(), plain.begin() + 100), {"no end-of-central-directory record"});
  expect_npz_error(Bytes{'h', 'e', 'l', 'l', 'o'}, {"not an .npz (ZIP) archive"});
  // A flipped byte inside the stored array data: CRC mismatch.
  Bytes b = plain;
  b[150] ^= 0x01;
  expect_npz_error(b, {"entry 'x.npy'", "CRC-32 mismatch"});
  // Flipped bytes in deflated data: a zlib error, size or CRC mismatch, or a bad .npy; never a crash.
  for (size_t at = 40; at < 120; at += 3) {
    Bytes c = comp;
    c[at] ^= 0x55;
    TempDir dir("deft-npy");
    write_file(dir.file("c.npz"), c);
    try {
      deft::data::read_npz(dir.file("c.npz"));
    } catch (const InputError& err) {
      EXPECT_THAT(err.what(), HasSubstr(dir.file("c.npz")));
    }
  }
  // Central directory offset pointing past the record.
  Bytes off = plain;
  const size_t eocd = off.size() - 22;
  off[eocd + 16] = 0xf0;
  off[eocd + 17] = 0xff;
  expect_npz_error(off, {"central directory"});
  // ZIP64 markers.
  Bytes z64 = plain;
  z64[eocd + 16] = z64[eocd + 17] = z64[eocd + 18] = z64[eocd + 19] = 0xff;
  expect_npz_error(z64, {"ZIP64"});
  // An unsupported compression method (bzip2 = 12) in the central directory.
  Bytes m = plain;
  const uint32_t cd = static_cast<uint32_t>(m[eocd + 16] | (m[eocd + 17] << 8) | (m[eocd + 18] << 16) | (m[eocd + 19] << 24));
  m[cd + 10] = 12;
  expect_npz_error(m, {"compression method 12"});
  Bytes enc = plain;
  enc[cd + 8] |= 1;
  expect_npz_error(enc, {"encrypted"});
}

}  // namespace
