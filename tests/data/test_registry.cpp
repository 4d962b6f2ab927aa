// The registry of named datasets (fashion-mnist from Debian's package, the
// DEFT_DATASETS_DIR override, install hints when files are missing) and the
// path dispatch of load_path().
#include <gtest/gtest.h>
#include <gmock/gmock.h>
#include <stdlib.h>
#include <zlib.h>

#include <array>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <tuple>
#include <string>
#include <vector>

#include <unistd.h>

#include "data_test_util.h"
#include "deft/data/idx.h"
#include "deft/data/image.h"
#include "deft/data/npy.h"
#include "deft/data/registry.h"

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

Bytes idx_u8(const std::vector<uint32_t>& dims, int mul = 1) {
  Bytes b = {0, 0, 0x08, static_cast<uint8_t>(dims.size())};
  size_t n = 1;
  for (uint32_t d : dims) {
    for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<uint8_t>(d >> s));
    n *= d;
  }
  for (size_t i = 0; i < n; ++i) b.push_back(static_cast<uint8_t>(i * mul));
  return b;
}

// Sets an environment variable for the scope of a test.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (old_) {
      setenv(name_, old_->c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

const std::vector<std::string> kFashionClasses = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                  "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

TEST(Registry, Names) {
  const std::vector<std::string> names = deft::data::dataset_names();
  EXPECT_THAT(names, testing::Contains("fashion-mnist"));
  EXPECT_THAT(names, testing::Contains("mnist"));
  EXPECT_TRUE(deft::data::is_dataset_name("fashion-mnist"));
  EXPECT_FALSE(deft::data::is_dataset_name("fashion"));
}

// Expected values computed with Python from the raw decompressed bytes (see
// test_idx.cpp for the recipe): pixel sums 3431114169 (train) and 573469082
// (test), 6000 / 1000 examples per class, first labels 9 0 0 3 / 9 2 1 1.
TEST(Registry, FashionMnistFromDebianPackage) {
  if (std::getenv("DEFT_DATASETS_DIR") != nullptr) GTEST_SKIP() << "DEFT_DATASETS_DIR is set";
  const DatasetSplits d = deft::data::load_dataset("fashion-mnist");
  EXPECT_EQ(d.train.name, "fashion-mnist");
  EXPECT_EQ(d.train.source, "/usr/share/datasets/fashion-mnist");
  EXPECT_EQ(d.train.class_names, kFashionClasses);
  ASSERT_EQ(d.train.features.shape(), (Shape{60000, 1, 28, 28}));
  EXPECT_EQ(d.train.features.dtype(), DType::UInt8);
  ASSERT_TRUE(d.test.has_value());
  EXPECT_EQ(d.test->name, "fashion-mnist");
  EXPECT_EQ(d.test->class_names, kFashionClasses);
  ASSERT_EQ(d.test->features.shape(), (Shape{10000, 1, 28, 28}));
  EXPECT_EQ(d.train.num_classes(), 10);

  for (const auto& [ds, sum, per_class] : {std::tuple{&d.train, 3431114169ull, 6000}, std::tuple{&*d.test, 573469082ull, 1000}}) {
    const uint8_t* px = ds->features.data<uint8_t>();
    uint64_t s = 0;
    for (int64_t i = 0; i < ds->features.numel(); ++i) s += px[i];
    EXPECT_EQ(s, sum);
    std::array<int, 10> hist{};
    for (int64_t l : ds->labels.to_vector<int64_t>()) ++hist[static_cast<size_t>(l)];
    for (int h : hist) EXPECT_EQ(h, per_class);
  }
  const std::vector<int64_t> train_labels = d.train.labels.to_vector<int64_t>();
  EXPECT_EQ(d.train.class_names[static_cast<size_t>(train_labels[0])], "Ankle boot");  // label 9
  EXPECT_EQ(d.train.class_names[static_cast<size_t>(train_labels[3])], "Dress");       // label 3
  EXPECT_EQ(deft::data::dataset_dir("fashion-mnist"), "/usr/share/datasets/fashion-mnist");
}

TEST(Registry, DatasetsDirOverride) {
  TempDir root;
  fs::create_directories(root.file("fashion-mnist"));
  const std::string dir = root.file("fashion-mnist");
  write_file(dir + "/train-images-idx3-ubyte", idx_u8({10, 2, 2}));
  write_file(dir + "/train-labels-idx1-ubyte", idx_u8({10}));
  ScopedEnv env("DEFT_DATASETS_DIR", root.str());
  EXPECT_EQ(deft::data::dataset_dir("fashion-mnist"), dir);
  const DatasetSplits d = deft::data::load_dataset("fashion-mnist");
  EXPECT_EQ(d.train.features.shape(), (Shape{10, 1, 2, 2}));
  EXPECT_EQ(d.train.class_names, kFashionClasses);
  EXPECT_EQ(d.train.name, "fashion-mnist");
  EXPECT_FALSE(d.test.has_value());

  // Labels beyond the named dataset's classes: not Fashion-MNIST files.
  write_file(dir + "/train-labels-idx1-ubyte", idx_u8({10}, 2));
  expect_input_error([] { deft::data::load_dataset("fashion-mnist"); }, {dir, "labels go up to 18", "10 classes"});
}

TEST(Registry, MissingFilesSayHowToInstall) {
  TempDir root;
  ScopedEnv env("DEFT_DATASETS_DIR", root.str());
  expect_input_error([] { deft::data::load_dataset("fashion-mnist"); },
                     {"dataset 'fashion-mnist' is not installed", root.file("fashion-mnist"),
                      "apt-get install dataset-fashion-mnist", "scripts/bootstrap", "DEFT_DATASETS_DIR is set"});
  expect_input_error([] { deft::data::load_dataset("mnist"); },
                     {"dataset 'mnist' is not installed", root.file("mnist"), "train-images-idx3-ubyte.gz"});
}

TEST(Registry, PathsAndUnknownNames) {
  TempDir dir("deft-reg");
  expect_input_error([] { deft::data::load_dataset("no-such-dataset"); },
                     {"no-such-dataset", "not a known dataset name", "fashion-mnist"});
  expect_input_error([&] { deft::data::load_path(dir.file("missing.csv")); },
                     {dir.file("missing.csv"), "no such file or folder"});
  write_file(dir.file("notes.dat"), Bytes{'h', 'i'});
  expect_input_error([&] { deft::data::load_dataset(dir.file("notes.dat")); },
                     {dir.file("notes.dat"), "unsupported data format"});
  fs::create_directories(dir.file("empty"));
  expect_input_error([&] { deft::data::load_path(dir.file("empty")); },
                     {dir.file("empty"), "unsupported data format", "folder"});

  // A folder of IDX files, by path.
  fs::create_directories(dir.file("mnistlike"));
  write_file(dir.file("mnistlike/train-images-idx3-ubyte"), idx_u8({3, 4, 4}));
  write_file(dir.file("mnistlike/train-labels-idx1-ubyte"), idx_u8({3}));
  const DatasetSplits a = deft::data::load_dataset(dir.file("mnistlike"));
  EXPECT_EQ(a.train.features.shape(), (Shape{3, 1, 4, 4}));
  EXPECT_EQ(a.train.class_names.size(), 3u);

  // A single IDX file: unlabeled images.
  const DatasetSplits b = deft::data::load_path(dir.file("mnistlike/train-images-idx3-ubyte"));
  EXPECT_EQ(b.train.features.shape(), (Shape{3, 1, 4, 4}));
  EXPECT_FALSE(b.train.labels.defined());

  // A folder of .npy arrays.
  fs::create_directories(dir.file("arrays"));
  deft::data::write_npy(dir.file("arrays/x.npy"), Tensor::ones({5, 2}));
  deft::data::write_npy(dir.file("arrays/y.npy"), Tensor::from_vector(std::vector<uint8_t>{0, 1, 2, 0, 1}));
  const DatasetSplits c = deft::data::load_dataset(dir.file("arrays"));
  EXPECT_EQ(c.train.features.shape(), (Shape{5, 2}));
  EXPECT_EQ(c.train.labels.dtype(), DType::Int64);
  EXPECT_EQ(c.train.class_names.size(), 3u);
}

}  // namespace

namespace {
// load_path's dispatch to the CSV, image-folder and text readers.
TEST(Registry, DispatchesTablesImageFoldersAndText) {
  const auto dir = std::filesystem::temp_directory_path() / ("deft-dispatch-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir / "imgs" / "cat");
  std::filesystem::create_directories(dir / "imgs" / "dog");
  std::filesystem::create_directories(dir / "txt" / "pos");
  std::filesystem::create_directories(dir / "txt" / "neg");
  {
    std::ofstream(dir / "t.csv") << "a,b,label\n1,2,x\n3,4,y\n5,6,x\n";
    std::ofstream(dir / "txt" / "pos" / "1.txt") << "great film";
    std::ofstream(dir / "txt" / "neg" / "1.txt") << "dull";
    std::ofstream(dir / "lines.txt") << "pos\tlovely\nneg\tawful\n";
  }
  const deft::Tensor img = deft::Tensor::full({1, 4, 4}, 7, deft::DType::UInt8);
  deft::data::encode_png((dir / "imgs" / "cat" / "a.png").string(), img);
  deft::data::encode_png((dir / "imgs" / "dog" / "b.png").string(), img);

  auto t = deft::data::load_dataset((dir / "t.csv").string(), {.target = "label"});
  EXPECT_EQ(t.train.size(), 3);
  EXPECT_EQ(t.train.class_names, (std::vector<std::string>{"x", "y"}));
  ASSERT_NE(t.train.schema, nullptr);
  EXPECT_FALSE(t.test.has_value());
  expect_input_error([&] { deft::data::load_dataset((dir / "t.csv").string()); }, {"t.csv", "--target", "label"});

  auto im = deft::data::load_dataset((dir / "imgs").string());
  EXPECT_EQ(im.train.features.shape(), (deft::Shape{2, 1, 4, 4}));
  EXPECT_EQ(im.train.class_names, (std::vector<std::string>{"cat", "dog"}));

  auto tx = deft::data::load_dataset((dir / "txt").string());
  EXPECT_EQ(tx.train.texts.size(), 2u);
  auto lines = deft::data::load_dataset((dir / "lines.txt").string());
  EXPECT_EQ(lines.train.texts.size(), 2u);
  std::filesystem::remove_all(dir);
}
}  // namespace
