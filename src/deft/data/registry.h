// Named datasets and the dispatch from a path to the reader for its format.
//
//   DatasetSplits fm = load_dataset("fashion-mnist");   // a registered name
//   DatasetSplits d  = load_dataset("data/my.npz");     // or any supported path
//   for (const std::string& n : dataset_names()) ...     // "fashion-mnist", "mnist"
//
// Named datasets are read from the files Debian's dataset packages install:
// fashion-mnist from /usr/share/datasets/fashion-mnist (package
// dataset-fashion-mnist, installed by scripts/bootstrap), mnist from
// /usr/share/datasets/mnist when present. DEFT_DATASETS_DIR, when set, replaces
// the root /usr/share/datasets (files then come from $DEFT_DATASETS_DIR/<name>/).
// Missing files are an InputError that says how to install them.
//
// load_path() is the one place that maps a path to a reader; a new format adds
// one branch there (see registry.cpp).
#pragma once

#include <string>
#include <vector>

#include "deft/data/dataset.h"

namespace deft::data {

// How to read formats that need more than the path.
struct LoadOptions {
  std::string target;  // CSV files: the label column (required for a CSV)
  std::string resize;  // image folders: "HxW" when the images differ in size
  int64_t channels = 0;  // image folders: 1 or 3 to convert every image; 0 = majority
};

// A registered name, or else a path handed to load_path().
DatasetSplits load_dataset(const std::string& name_or_path, const LoadOptions& options = {});

// Every registered dataset name, in a stable order (whether installed or not).
std::vector<std::string> dataset_names();

// True for a registered name ("fashion-mnist", "mnist").
bool is_dataset_name(const std::string& name);

// The folder a registered dataset is read from: $DEFT_DATASETS_DIR/<name> when
// that variable is set, else /usr/share/datasets/<name>.
std::string dataset_dir(const std::string& name);

// Reads any supported file or folder:
//   folder of MNIST-style IDX files          -> load_idx_folder (train + test)
//   single .idx / *-ubyte[.gz] file           -> unlabeled features
//   .npz with x/y or x_train/y_train/...      -> load_npz_dataset
//   folder of x_train.npy, y_train.npy, ...   -> load_npy_folder
//   single .npy                               -> unlabeled features
//   .csv / .tsv file (needs options.target)    -> a table, one split (csv.h)
//   folder of class folders of images         -> load_image_folder (image.h)
//   folder of class folders of .txt files     -> load_text_folder (text.h)
//   .txt file of "label<TAB>text" lines        -> load_text_file (text.h)
// Anything else: InputError "unsupported data format" naming the path.
DatasetSplits load_path(const std::string& path, const LoadOptions& options = {});

}  // namespace deft::data
