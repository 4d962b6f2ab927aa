// IDX and gzip readers: the real Fashion-MNIST files from Debian's
// dataset-fashion-mnist package, every IDX element type, and corrupt files made
// here in a temporary folder (each must be an InputError naming the file).
#include <gtest/gtest.h>
#include <gmock/gmock.h>
#include <stdlib.h>
#include <zlib.h>

#include <array>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "data_test_util.h"
#include "deft/data/gzip.h"
#include "deft/data/idx.h"
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

const char* kFashionDir = "/usr/share/datasets/fashion-mnist";

Bytes gzip(const Bytes& in) {
  z_stream zs{};
  EXPECT_EQ(deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
  Bytes out(deflateBound(&zs, in.size()) + 32);
  zs.next_in = const_cast<Bytef*>(in.data());
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = out.data();
  zs.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

void put_be32(Bytes& b, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<uint8_t>(v >> s));
}

Bytes idx_header(uint8_t type, const std::vector<uint32_t>& dims) {
  Bytes b = {0, 0, type, static_cast<uint8_t>(dims.size())};
  for (uint32_t d : dims) put_be32(b, d);
  return b;
}

// A uint8 IDX file: dims, values i*mul+add (mod 256).
Bytes idx_u8(const std::vector<uint32_t>& dims, int mul = 1, int add = 0) {
  Bytes b = idx_header(0x08, dims);
  size_t n = 1;
  for (uint32_t d : dims) n *= d;
  for (size_t i = 0; i < n; ++i) b.push_back(static_cast<uint8_t>(i * mul + add));
  return b;
}

void expect_idx_error(const Bytes& content, const std::vector<std::string>& parts, const char* name = "bad.idx") {
  TempDir dir("deft-idx");
  const std::string path = dir.file(name);
  write_file(path, content);
  std::vector<std::string> all = {path};
  all.insert(all.end(), parts.begin(), parts.end());
  expect_input_error([&] { deft::data::read_idx(path); }, all);
}

uint32_t crc_of(const Tensor& t) {
  const size_t n = static_cast<size_t>(t.numel()) * deft::dtype_size(t.dtype());
  return static_cast<uint32_t>(crc32(0L, static_cast<const Bytef*>(t.contiguous_copy().raw_data()), static_cast<uInt>(n)));
}

// ---- the real Fashion-MNIST files ------------------------------------------------------
//
// Expected values computed once, independently of deft, with Python:
//   img = gzip.open("train-images-idx3-ubyte.gz").read()[16:]   # raw pixel bytes
//   lab = gzip.open("train-labels-idx1-ubyte.gz").read()[8:]
//   sum(img), zlib.crc32(img), zlib.crc32(lab), collections.Counter(lab),
//   img[i*784 + r*28 + c] for the positions below, list(lab[:10])
// (and the same for t10k-*).

struct SplitFacts {
  const char* images;
  const char* labels;
  int64_t n;
  uint64_t pixel_sum;
  uint32_t pixel_crc32;
  uint32_t label_crc32;
  std::array<int64_t, 10> first_labels;
  std::vector<std::array<int64_t, 4>> pixels;  // image, row, col, value
};

const SplitFacts kTrain = {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", 60000, 3431114169ull,
                           0xae65dccd, 0x2ed6e46a, {9, 0, 0, 3, 0, 2, 7, 2, 5, 5},
                           {{0, 0, 0, 0}, {0, 14, 14, 217}, {0, 10, 20, 210}, {1, 5, 5, 226}, {123, 13, 7, 88},
                            {777, 20, 20, 203}, {59999, 10, 14, 104}, {59999, 14, 14, 0}}};
const SplitFacts kTest = {"t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", 10000, 573469082ull,
                          0x12728439, 0x242bc73f, {9, 2, 1, 1, 6, 1, 4, 6, 5, 7},
                          {{0, 14, 14, 110}, {0, 10, 20, 157}, {1, 5, 5, 248}, {9999, 14, 14, 132},
                           {9999, 20, 10, 57}, {9999, 10, 14, 54}}};

void check_split(const Tensor& images, const Tensor& labels, const SplitFacts& f) {
  ASSERT_EQ(images.dtype(), DType::UInt8);
  ASSERT_EQ(labels.dtype(), DType::Int64);
  ASSERT_EQ(images.numel(), f.n * 28 * 28);
  ASSERT_EQ(labels.shape(), (Shape{f.n}));
  const Tensor img = images.contiguous_copy();
  const uint8_t* px = img.data<uint8_t>();
  uint64_t sum = 0;
  for (int64_t i = 0; i < img.numel(); ++i) sum += px[i];
  EXPECT_EQ(sum, f.pixel_sum);
  EXPECT_EQ(crc_of(img), f.pixel_crc32);
  for (const auto& p : f.pixels) {
    EXPECT_EQ(px[p[0] * 784 + p[1] * 28 + p[2]], p[3]) << "image " << p[0] << " row " << p[1] << " col " << p[2];
  }
  // Labels: int64 in deft, one byte each in the file: compare the bytes' CRC.
  const std::vector<int64_t> lv = labels.to_vector<int64_t>();
  Bytes lb(lv.begin(), lv.end());
  EXPECT_EQ(static_cast<uint32_t>(crc32(0L, lb.data(), static_cast<uInt>(lb.size()))), f.label_crc32);
  std::array<int64_t, 10> hist{};
  for (int64_t l : lv) {
    ASSERT_GE(l, 0);
    ASSERT_LT(l, 10);
    ++hist[static_cast<size_t>(l)];
  }
  for (int64_t h : hist) EXPECT_EQ(h, f.n / 10);
  for (size_t i = 0; i < 10; ++i) EXPECT_EQ(lv[i], f.first_labels[i]);
}

TEST(IdxFashionMnist, ReadIdxRawFiles) {
  ASSERT_TRUE(fs::exists(fs::path(kFashionDir) / kTest.images))
      << "Fashion-MNIST missing: apt-get install dataset-fashion-mnist (scripts/bootstrap)";
  const Tensor images = deft::data::read_idx((fs::path(kFashionDir) / kTest.images).string());
  EXPECT_EQ(images.shape(), (Shape{10000, 28, 28}));
  const Tensor labels = deft::data::read_idx((fs::path(kFashionDir) / kTest.labels).string());
  EXPECT_EQ(labels.dtype(), DType::UInt8);  // idx1 of uint8: read_idx keeps the file's type
  check_split(images, labels.to(DType::Int64), kTest);
}

TEST(IdxFashionMnist, LoadFolder) {
  ASSERT_TRUE(fs::is_directory(kFashionDir))
      << "Fashion-MNIST missing: apt-get install dataset-fashion-mnist (scripts/bootstrap)";
  const DatasetSplits d = deft::data::load_idx_folder(kFashionDir);
  EXPECT_EQ(d.train.features.shape(), (Shape{60000, 1, 28, 28}));
  ASSERT_TRUE(d.test.has_value());
  EXPECT_EQ(d.test->features.shape(), (Shape{10000, 1, 28, 28}));
  EXPECT_FALSE(d.validation.has_value());
  check_split(d.train.features, d.train.labels, kTrain);
  check_split(d.test->features, d.test->labels, kTest);
  EXPECT_EQ(d.train.class_names, (std::vector<std::string>{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}));
  EXPECT_EQ(d.train.task, deft::data::Task::Classification);
  EXPECT_TRUE(d.train.is_image());
}

// ---- element types ---------------------------------------------------------------------

TEST(Idx, EveryTypeCode) {
  TempDir dir("deft-idx");
  struct Case {
    uint8_t code;
    Bytes payload;
    DType dtype;
    std::vector<double> values;
  };
  const float f1 = 1.5f, f2 = -0.25f;
  uint32_t b1, b2;
  std::memcpy(&b1, &f1, 4);
  std::memcpy(&b2, &f2, 4);
  const double d1 = 3.25, d2 = -1e10;
  uint64_t q1, q2;
  std::memcpy(&q1, &d1, 8);
  std::memcpy(&q2, &d2, 8);
  auto be = [](uint64_t v, int bytes) {
    Bytes b;
    for (int s = (bytes - 1) * 8; s >= 0; s -= 8) b.push_back(static_cast<uint8_t>(v >> s));
    return b;
  };
  auto cat = [](Bytes a, const Bytes& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
  };
  const std::vector<Case> cases = {
      {0x08, {0, 255}, DType::UInt8, {0, 255}},
      {0x09, {0x80, 0x7f}, DType::Int64, {-128, 127}},
      {0x0B, {0x80, 0x00, 0x01, 0x02}, DType::Int64, {-32768, 258}},
      {0x0C, {0xff, 0xff, 0xff, 0xfe, 0x7f, 0xff, 0xff, 0xff}, DType::Int64, {-2, 2147483647}},
      {0x0D, cat(be(b1, 4), be(b2, 4)), DType::Float32, {1.5, -0.25}},
      {0x0E, cat(be(q1, 8), be(q2, 8)), DType::Float32, {3.25, -1e10}},
  };
  for (const Case& c : cases) {
    Bytes b = idx_header(c.code, {2});
    b.insert(b.end(), c.payload.begin(), c.payload.end());
    for (bool gz : {false, true}) {
      const std::string path = dir.file(fmt::format("t{}{}", c.code, gz ? ".gz" : ""));
      write_file(path, gz ? gzip(b) : b);
      const Tensor t = deft::data::read_idx(path);
      ASSERT_EQ(t.dtype(), c.dtype) << path;
      ASSERT_EQ(t.shape(), (Shape{2}));
      for (int64_t i = 0; i < 2; ++i) {
        const Tensor e = deft::kernel::slice(t, 0, i, i + 1);
        if (c.dtype == DType::Float32) {
          EXPECT_FLOAT_EQ(e.item<float>(), static_cast<float>(c.values[static_cast<size_t>(i)])) << path;
        } else {
          EXPECT_EQ(e.item<double>(), c.values[static_cast<size_t>(i)]) << path;
        }
      }
    }
  }
}

TEST(Idx, ShapesAndEmpty) {
  TempDir dir("deft-idx");
  write_file(dir.file("a"), idx_u8({2, 3, 4, 5}));
  const Tensor a = deft::data::read_idx(dir.file("a"));
  EXPECT_EQ(a.shape(), (Shape{2, 3, 4, 5}));
  EXPECT_EQ(a.to_vector<uint8_t>()[119], 119);
  write_file(dir.file("b"), idx_u8({0, 28, 28}));
  EXPECT_EQ(deft::data::read_idx(dir.file("b")).shape(), (Shape{0, 28, 28}));
  // A large dim next to a zero one still means zero values.
  write_file(dir.file("c"), idx_header(0x08, {0, 0xffffffffu, 1000}));
  EXPECT_EQ(deft::data::read_idx(dir.file("c")).shape(), (Shape{0, 0xffffffffLL, 1000}));
}

TEST(Idx, GzipDetectedByMagicNotName) {
  TempDir dir("deft-idx");
  const Bytes raw = idx_u8({3, 2, 2}, 7, 1);
  write_file(dir.file("plain.gz"), raw);      // .gz name, raw content
  write_file(dir.file("packed.idx"), gzip(raw));  // compressed content, no .gz
  EXPECT_EQ(deft::data::read_idx(dir.file("plain.gz")).to_vector<uint8_t>(),
            deft::data::read_idx(dir.file("packed.idx")).to_vector<uint8_t>());
  // Concatenated gzip members are one stream (as gzip -c a b > c makes).
  const Bytes half1(raw.begin(), raw.begin() + 10), half2(raw.begin() + 10, raw.end());
  Bytes two = gzip(half1);
  const Bytes g2 = gzip(half2);
  two.insert(two.end(), g2.begin(), g2.end());
  write_file(dir.file("two.gz"), two);
  EXPECT_EQ(deft::data::read_file_maybe_gzip(dir.file("two.gz")), raw);
}

TEST(Idx, LargeGzipStreamsThroughSmallBuffers) {
  TempDir dir("deft-idx");
  Bytes raw = idx_u8({300, 100, 100}, 31, 5);  // 3 MB, several read chunks and buffer growths
  write_file(dir.file("big.gz"), gzip(raw));
  const Tensor t = deft::data::read_idx(dir.file("big.gz"));
  ASSERT_EQ(t.numel(), 3000000);
  EXPECT_EQ(crc_of(t), static_cast<uint32_t>(crc32(0L, raw.data() + 16, 3000000)));
  // The size cap stops a stream that decompresses past it.
  expect_input_error([&] { deft::data::read_file_maybe_gzip(dir.file("big.gz"), 1000000); },
                     {dir.file("big.gz"), "more than 1000000 bytes"});
}

// ---- corrupt files: each an InputError naming the file ------------------------------

TEST(IdxErrors, EmptyFile) { expect_idx_error({}, {"empty file"}); }

TEST(IdxErrors, WrongMagic) {
  Bytes b = idx_u8({2, 2});
  b[1] = 1;
  expect_idx_error(b, {"bad magic", "at byte 0"});
  expect_idx_error(Bytes{'P', 'K', 3, 4, 0, 0, 0, 0}, {"not an IDX file"});
}

TEST(IdxErrors, UnknownTypeCode) {
  Bytes b = idx_u8({2, 2});
  b[2] = 0x0A;
  expect_idx_error(b, {"unknown IDX type code 0x0a", "at byte 2"});
}

TEST(IdxErrors, WrongNumberOfDims) {
  expect_idx_error(Bytes{0, 0, 8, 0}, {"0 dims", "expected 1 to 4"});
  expect_idx_error(idx_u8({1, 1, 1, 1, 1}), {"5 dims"});
  expect_idx_error(Bytes{0, 0, 8, 3, 0, 0, 0, 2}, {"truncated IDX header", "16 header bytes", "file has 8"});
  expect_idx_error(Bytes{0, 0}, {"too short"});
}

TEST(IdxErrors, TruncatedPayload) {
  Bytes b = idx_u8({4, 28, 28});
  b.resize(b.size() - 100);
  // 4*28*28 = 3136 bytes expected, 3036 present.
  expect_idx_error(b, {"need 3136 payload bytes", "file has 3036", "truncated"});
  Bytes i32 = idx_header(0x0C, {3});
  i32.resize(i32.size() + 11);
  expect_idx_error(i32, {"need 12 payload bytes", "file has 11"});
}

TEST(IdxErrors, TrailingBytes) {
  Bytes b = idx_u8({2, 3});
  b.push_back(0);
  b.push_back(0);
  expect_idx_error(b, {"need 6 payload bytes", "file has 8", "trailing data", "at byte 18"});
}

TEST(IdxErrors, AbsurdDimsDoNotOverflow) {
  expect_idx_error(idx_header(0x08, {0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}),
                   {"more than 2^64 payload bytes", "truncated"});
  expect_idx_error(idx_header(0x08, {0xffffffffu, 0xffffffffu}), {"need 18446744065119617025 payload bytes"});
  Bytes b = idx_header(0x0E, {0x80000000u, 0x80000000u, 4});
  b.resize(b.size() + 64);
  expect_idx_error(b, {"more than 2^64", "float64"});
  // Regression (found by fuzz_idx): a zero dim next to huge ones is empty, but the
  // huge ones overflowed the int64 strides (UBSan: signed overflow in contiguous_strides).
  expect_idx_error(Bytes{0, 0, 8, 4, 0, 0, 0, 0, 4, 0, 1, 7, 8, 3, 4, 5, 6, 0xd, 0xe, 0xf}, {"too large"});
  expect_idx_error(idx_header(0x08, {0, 0xffffffffu, 0xffffffffu}), {"too large"});
  // 2^16 * 2^16 * 2^16 * 2^16 = 2^64 wraps to 0 in 64-bit arithmetic: must not pass as empty.
  expect_idx_error(idx_header(0x08, {65536, 65536, 65536, 65536}), {"more than 2^64"});
}

TEST(IdxErrors, TruncatedGzip) {
  const Bytes gz = gzip(idx_u8({10, 28, 28}, 13, 3));
  for (size_t keep : {gz.size() - 1, gz.size() - 8, gz.size() / 2, size_t{12}, size_t{2}}) {
    expect_idx_error(Bytes(gz.begin(), gz.begin() + static_cast<std::ptrdiff_t>(keep)),
                     {"truncated gzip data", "at byte " + std::to_string(keep)}, "t.gz");
  }
}

TEST(IdxErrors, GarbageGzip) {
  Bytes junk = {0x1f, 0x8b};
  for (int i = 0; i < 200; ++i) junk.push_back(static_cast<uint8_t>(i * 37 + 11));
  expect_idx_error(junk, {"corrupt gzip data", "at byte"}, "junk.gz");
  // Flipped bits in the compressed body: a zlib data error or a CRC mismatch, never a crash.
  Bytes gz = gzip(idx_u8({10, 28, 28}, 13, 3));
  for (size_t at = 20; at + 8 < gz.size(); at += 37) {
    Bytes bad = gz;
    bad[at] ^= 0x5a;
    expect_idx_error(bad, {"gzip data"}, "flip.gz");
  }
}

TEST(IdxErrors, GzipTrailingGarbage) {
  Bytes gz = gzip(idx_u8({2, 2}));
  const size_t end = gz.size();
  gz.push_back('x');
  gz.push_back('y');
  gz.push_back('z');
  expect_idx_error(gz, {"unexpected data after the end of the gzip stream", "at byte " + std::to_string(end)}, "tg.gz");
  gz.resize(end + 1);
  expect_idx_error(gz, {"unexpected data after the end of the gzip stream"}, "tg1.gz");
}

TEST(IdxErrors, MissingFileAndFolder) {
  TempDir dir("deft-idx");
  expect_input_error([&] { deft::data::read_idx(dir.file("nope")); }, {dir.file("nope"), "cannot open"});
  expect_input_error([&] { deft::data::read_idx(dir.str()); }, {dir.str()});
}

// ---- folders -------------------------------------------------------------------------

void write_mnist_folder(const TempDir& dir, uint32_t n_train, uint32_t n_test, bool gz = true,
                        const std::string& prefix = "") {
  auto put = [&](const std::string& name, const Bytes& b) {
    write_file(dir.file(prefix + name + (gz ? ".gz" : "")), gz ? gzip(b) : b);
  };
  put("train-images-idx3-ubyte", idx_u8({n_train, 4, 3}, 3, 1));
  put("train-labels-idx1-ubyte", idx_u8({n_train}, 1, 0));  // labels 0,1,2,...
  if (n_test > 0) {
    put("t10k-images-idx3-ubyte", idx_u8({n_test, 4, 3}, 5, 2));
    put("t10k-labels-idx1-ubyte", idx_u8({n_test}, 2, 1));  // 1,3,5,...
  }
}

TEST(IdxFolder, TrainAndTest) {
  TempDir dir("deft-idx");
  write_mnist_folder(dir, 6, 3);
  const DatasetSplits d = deft::data::load_idx_folder(dir.str());
  EXPECT_EQ(d.train.features.shape(), (Shape{6, 1, 4, 3}));
  EXPECT_EQ(d.train.features.dtype(), DType::UInt8);
  EXPECT_EQ(d.train.labels.to_vector<int64_t>(), (std::vector<int64_t>{0, 1, 2, 3, 4, 5}));
  ASSERT_TRUE(d.test.has_value());
  EXPECT_EQ(d.test->features.shape(), (Shape{3, 1, 4, 3}));
  EXPECT_EQ(d.test->labels.to_vector<int64_t>(), (std::vector<int64_t>{1, 3, 5}));
  EXPECT_EQ(d.train.features.to_vector<uint8_t>()[5], 16);
  // Largest label is 5: six class names.
  EXPECT_EQ(d.train.class_names, (std::vector<std::string>{"0", "1", "2", "3", "4", "5"}));
  EXPECT_EQ(d.test->class_names, d.train.class_names);
}

TEST(IdxFolder, TrainOnlyRawAndOtherNamings) {
  TempDir a;
  write_mnist_folder(a, 5, 0, /*gz=*/false);
  DatasetSplits d = deft::data::load_idx_folder(a.str());
  EXPECT_EQ(d.train.size(), 5);
  EXPECT_FALSE(d.test.has_value());

  TempDir b;  // EMNIST-style names
  write_mnist_folder(b, 4, 2, true, "emnist-digits-");
  d = deft::data::load_idx_folder(b.str());
  EXPECT_EQ(d.train.size(), 4);
  EXPECT_EQ(d.test->size(), 2);

  TempDir c;  // dotted names, as some mirrors unpack them
  write_file(c.file("train-images.idx3-ubyte"), idx_u8({3, 2, 2}));
  write_file(c.file("train-labels.idx1-ubyte"), idx_u8({3}));
  write_file(c.file("test-images.idx3-ubyte"), idx_u8({1, 2, 2}));
  write_file(c.file("test-labels.idx1-ubyte"), idx_u8({1}));
  write_file(c.file("README.txt"), Bytes{'h', 'i'});
  write_file(c.file("train-images-idx3-ubyte.gz.part"), Bytes{0x1f, 0x8b});  // an unfinished download
  d = deft::data::load_idx_folder(c.str());
  EXPECT_EQ(d.train.size(), 3);
  EXPECT_EQ(d.test->size(), 1);
}

TEST(IdxFolder, RawPreferredOverItsGz) {
  TempDir dir("deft-idx");
  write_mnist_folder(dir, 6, 0, true);
  write_file(dir.file("train-images-idx3-ubyte"), idx_u8({6, 4, 3}, 0, 9));  // all 9s, raw
  const DatasetSplits d = deft::data::load_idx_folder(dir.str());
  EXPECT_EQ(d.train.features.to_vector<uint8_t>()[0], 9);
}

TEST(IdxFolder, CountMismatchNamesBothFiles) {
  TempDir dir("deft-idx");
  write_file(dir.file("train-images-idx3-ubyte.gz"), gzip(idx_u8({5, 2, 2})));
  write_file(dir.file("train-labels-idx1-ubyte.gz"), gzip(idx_u8({4})));
  expect_input_error([&] { deft::data::load_idx_folder(dir.str()); },
                     {dir.file("train-images-idx3-ubyte.gz"), dir.file("train-labels-idx1-ubyte.gz"), "5 images",
                      "4 labels"});
}

TEST(IdxFolder, MissingAndAmbiguousFiles) {
  TempDir empty;
  expect_input_error([&] { deft::data::load_idx_folder(empty.str()); },
                     {empty.str(), "train-images-idx3-ubyte"});
  TempDir no_labels;
  write_file(no_labels.file("train-images-idx3-ubyte"), idx_u8({2, 2, 2}));
  expect_input_error([&] { deft::data::load_idx_folder(no_labels.str()); },
                     {no_labels.str(), "missing the training labels"});
  TempDir half_test;
  write_mnist_folder(half_test, 2, 0);
  write_file(half_test.file("t10k-images-idx3-ubyte"), idx_u8({2, 4, 3}));
  expect_input_error([&] { deft::data::load_idx_folder(half_test.str()); },
                     {half_test.file("t10k-images-idx3-ubyte"), "no test labels"});
  TempDir two;
  write_mnist_folder(two, 2, 0, true, "emnist-digits-");
  write_mnist_folder(two, 2, 0, true, "emnist-letters-");
  expect_input_error([&] { deft::data::load_idx_folder(two.str()); }, {two.str(), "two files for the training"});
  expect_input_error([&] { deft::data::load_idx_folder(empty.file("nope")); }, {empty.file("nope"), "not a folder"});
}

TEST(IdxFolder, BadLabelFiles) {
  TempDir dir("deft-idx");
  write_file(dir.file("train-images-idx3-ubyte"), idx_u8({2, 2, 2}));
  Bytes labels = idx_header(0x09, {2});
  labels.push_back(1);
  labels.push_back(0xff);  // -1
  write_file(dir.file("train-labels-idx1-ubyte"), labels);
  expect_input_error([&] { deft::data::load_idx_folder(dir.str()); },
                     {dir.file("train-labels-idx1-ubyte"), "label -1 at index 1 is negative"});
  write_file(dir.file("train-labels-idx1-ubyte"), idx_u8({2, 2}));
  expect_input_error([&] { deft::data::load_idx_folder(dir.str()); },
                     {dir.file("train-labels-idx1-ubyte"), "expected labels of shape [N]"});
  // A corrupt file inside a folder: the error names that file.
  Bytes trunc = gzip(idx_u8({2}));
  trunc.resize(trunc.size() - 4);
  write_file(dir.file("train-labels-idx1-ubyte"), trunc);
  expect_input_error([&] { deft::data::load_idx_folder(dir.str()); },
                     {dir.file("train-labels-idx1-ubyte"), "truncated gzip data"});
}

TEST(IdxParse, InMemoryMatchesFile) {
  const Bytes b = idx_u8({2, 3}, 2, 1);
  const Tensor t = deft::data::parse_idx(b.data(), b.size(), "mem");
  EXPECT_EQ(t.to_vector<uint8_t>(), (std::vector<uint8_t>{1, 3, 5, 7, 9, 11}));
  expect_input_error([&] { deft::data::parse_idx(b.data(), 3, "mem-name"); }, {"mem-name"});
  const Bytes gz = gzip(b);
  EXPECT_EQ(deft::data::decode_maybe_gzip(gz.data(), gz.size(), "mem"), b);
}

}  // namespace
