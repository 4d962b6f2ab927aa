#include "deft/data/registry.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>

#include <fmt/ranges.h>

#include "deft/data/csv.h"
#include "deft/data/idx.h"
#include "deft/data/image.h"
#include "deft/data/npy.h"
#include "deft/data/text.h"
#include "deft/tensor/kernels.h"

namespace deft::data {

namespace fs = std::filesystem;

namespace {

constexpr const char* kDefaultRoot = "/usr/share/datasets";

struct NamedDataset {
  const char* name;
  const char* folder;  // under the datasets root
  std::vector<std::string> class_names;
  const char* install;  // how to get the files
};

const std::vector<NamedDataset>& registry() {
  static const std::vector<NamedDataset> kDatasets = {
      {"fashion-mnist", "fashion-mnist",
       {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"},
       "install it with `apt-get install dataset-fashion-mnist` (or run scripts/bootstrap)"},
      {"mnist", "mnist", {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"},
       "Debian packages no MNIST: put train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
       "t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz in /usr/share/datasets/mnist "
       "(or in $DEFT_DATASETS_DIR/mnist)"},
  };
  return kDatasets;
}

const NamedDataset* find_named(const std::string& name) {
  for (const NamedDataset& d : registry()) {
    if (name == d.name) return &d;
  }
  return nullptr;
}

// $DEFT_DATASETS_DIR/<folder> when the variable is set, else the Debian location.
std::string named_dir(const NamedDataset& d) {
  const char* root = std::getenv("DEFT_DATASETS_DIR");
  if (root != nullptr && *root != '\0') return (fs::path(root) / d.folder).string();
  return (fs::path(kDefaultRoot) / d.folder).string();
}

bool has_training_files(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return false;
  const IdxFolderFiles f = find_idx_files(dir);
  return !f.train_images.empty() && !f.train_labels.empty();
}

std::string join(const std::vector<std::string>& v, const char* sep) {
  std::string out;
  for (const std::string& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
}

DatasetSplits load_named(const NamedDataset& d) {
  const std::string dir = named_dir(d);
  if (!has_training_files(dir)) {
    const char* root = std::getenv("DEFT_DATASETS_DIR");
    fail("dataset '{}' is not installed: no train-images-idx3-ubyte[.gz] / train-labels-idx1-ubyte[.gz] in {}{}; {}",
         d.name, dir,
         root != nullptr && *root != '\0'
             ? " (DEFT_DATASETS_DIR is set; unset it to use " + std::string(kDefaultRoot) + ")"
             : "",
         d.install);
  }
  DatasetSplits s = load_idx_folder(dir);
  for (Dataset* part : {&s.train, s.validation ? &*s.validation : nullptr, s.test ? &*s.test : nullptr}) {
    if (part == nullptr) continue;
    if (part->num_classes() > static_cast<int64_t>(d.class_names.size())) {
      fail("{}: labels go up to {} but dataset '{}' has {} classes; the files are not {}", dir,
           part->num_classes() - 1, d.name, d.class_names.size(), d.name);
    }
    part->name = d.name;
    part->class_names = d.class_names;
  }
  return s;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// train-images-idx3-ubyte, t10k-images.idx3-ubyte.gz, data.idx, ...
bool is_idx_file_name(const std::string& path) {
  std::string n = lower(fs::path(path).filename().string());
  if (ends_with(n, ".gz")) n.resize(n.size() - 3);
  return ends_with(n, "-ubyte") || ends_with(n, ".idx");
}

bool has_npy_arrays(const std::string& dir) {
  for (const char* n : {"x.npy", "x_train.npy"}) {
    std::error_code ec;
    if (fs::is_regular_file(fs::path(dir) / n, ec)) return true;
  }
  return false;
}

// One IDX file as unlabeled features (e.g. images to predict).
DatasetSplits load_idx_file(const std::string& path) {
  Tensor x = read_idx(path);
  const Shape s = x.shape();
  if (s.size() == 3) x = kernel::reshape(x, {s[0], 1, s[1], s[2]});
  if (s.size() == 1) x = kernel::reshape(x, {s[0], 1});
  if (x.dtype() == DType::Int64 || (x.dim() == 2 && x.dtype() == DType::UInt8)) x = x.to(DType::Float32);
  DatasetSplits out;
  out.train.name = path;
  out.train.source = path;
  out.train.features = x;
  return out;
}

}  // namespace

std::vector<std::string> dataset_names() {
  std::vector<std::string> names;
  for (const NamedDataset& d : registry()) names.emplace_back(d.name);
  return names;
}

bool is_dataset_name(const std::string& name) { return find_named(name) != nullptr; }

std::string dataset_dir(const std::string& name) {
  const NamedDataset* d = find_named(name);
  if (d == nullptr) fail("unknown dataset '{}' (known: {})", name, join(dataset_names(), ", "));
  return named_dir(*d);
}

DatasetSplits load_dataset(const std::string& name_or_path, const LoadOptions& options) {
  if (const NamedDataset* d = find_named(name_or_path)) return load_named(*d);
  std::error_code ec;
  if (!fs::exists(name_or_path, ec)) {
    fail("{}: not a known dataset name ({}) and no such file or folder", name_or_path,
         join(dataset_names(), ", "));
  }
  return load_path(name_or_path, options);
}

// ---- format dispatch ------------------------------------------------------------------
// One branch per format, most specific first. To add a format (CSV, image
// folders, text), add a branch above the final fail() and list it in the message.
DatasetSplits load_path(const std::string& path, const LoadOptions& options) {
  std::error_code ec;
  if (!fs::exists(path, ec)) fail("{}: no such file or folder", path);
  const bool dir = fs::is_directory(path, ec);
  const std::string ext = lower(fs::path(path).extension().string());

  if (dir && find_idx_files(path).any()) return load_idx_folder(path);  // MNIST-style IDX folder
  if (dir && has_npy_arrays(path)) return load_npy_folder(path);        // x_train.npy, y_train.npy, ...
  if (!dir && ext == ".npz") return load_npz_dataset(path);             // NumPy archive
  if (!dir && ext == ".npy") return load_npy_file(path);                // one NumPy array, unlabeled
  if (!dir && is_idx_file_name(path)) return load_idx_file(path);       // one IDX file, unlabeled
  if (!dir && (ext == ".csv" || ext == ".tsv")) {                       // a table
    if (options.target.empty())
      fail("{}: a CSV file needs its label column named (--target COLUMN); columns: {}", path,
           fmt::join(read_csv(path).column_names(), ", "));
    auto schema = std::make_shared<TableSchema>();
    Dataset d = csv_to_dataset(read_csv(path), options.target, {}, schema.get());
    d.schema = std::move(schema);
    return DatasetSplits{std::move(d), std::nullopt, std::nullopt};
  }
  if (!dir && ext == ".txt") return DatasetSplits{load_text_file(path), std::nullopt, std::nullopt};
  if (dir) {  // class folders: of images, or of .txt files
    bool any_image = false, any_text = false;
    for (const auto& e : fs::recursive_directory_iterator(path, ec)) {
      if (!e.is_regular_file()) continue;
      any_image = any_image || has_image_extension(e.path().string());
      any_text = any_text || lower(e.path().extension().string()) == ".txt";
      if (any_image) break;
    }
    if (any_image) {
      ImageFolderOptions io;
      io.channels = options.channels;
      if (!options.resize.empty()) io.resize = parse_image_size(options.resize);
      return DatasetSplits{load_image_folder(path, io), std::nullopt, std::nullopt};
    }
    if (any_text) return DatasetSplits{load_text_folder(path), std::nullopt, std::nullopt};
  }

  fail("{}: unsupported data format (a {}); deft reads folders of IDX files (train-images-idx3-ubyte.gz, ...), "
       "folders of x_train.npy/y_train.npy, .npz and .npy files, single IDX files, .csv/.tsv tables, "
       "folders of class folders of PNG/JPEG images or .txt files, and .txt files of label<TAB>text lines",
       path, dir ? "folder" : "file");
}

}  // namespace deft::data
