// IDX files, the format of MNIST, Fashion-MNIST, KMNIST and EMNIST, raw or gzip.
//
//   Tensor images = read_idx("train-images-idx3-ubyte.gz");  // uint8 [60000,28,28]
//   DatasetSplits fm = load_idx_folder("/usr/share/datasets/fashion-mnist");
//   fm.train.features  // uint8 [60000,1,28,28]; fm.test->labels int64 [10000]
//
// Layout: two zero bytes, a type code, the number of dims (1..4), then one
// big-endian uint32 per dim, then the values, big-endian, row-major.
// Element types and the dtype they load as:
//   0x08 uint8   -> UInt8 (exact)
//   0x09 int8, 0x0B int16, 0x0C int32 -> Int64 (exact; integer data are labels
//                                         or counts, never silently rounded)
//   0x0D float32 -> Float32, 0x0E float64 -> Float32 (rounded to nearest)
// The payload must hold exactly prod(dims) values: a truncated file or one with
// trailing bytes is an InputError naming the file and both byte counts.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "deft/data/dataset.h"
#include "deft/tensor/tensor.h"

namespace deft::data {

// Parses one IDX file held in memory (already decompressed). `name` names the
// file in error messages. Throws InputError on any malformed input.
Tensor parse_idx(const uint8_t* data, size_t size, const std::string& name);

// Reads an IDX file, raw or gzip-compressed (detected by magic bytes).
Tensor read_idx(const std::string& path);

// The IDX files a folder holds, by role; empty strings where missing.
struct IdxFolderFiles {
  std::string train_images, train_labels, test_images, test_labels;
  bool any() const {
    return !train_images.empty() || !train_labels.empty() || !test_images.empty() || !test_labels.empty();
  }
};

// Finds MNIST-style files in `dir`: train-images-idx3-ubyte[.gz],
// train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz],
// t10k-labels-idx1-ubyte[.gz], and the variants of EMNIST/KMNIST downloads
// (train-images.idx3-ubyte, emnist-digits-test-labels-idx1-ubyte.gz, ...).
// Two candidates for one role (say two EMNIST subsets in one folder) is an
// InputError listing both; a raw file is preferred over its own .gz.
IdxFolderFiles find_idx_files(const std::string& dir);

// Loads a folder of MNIST-style IDX files as one dataset: train split required,
// test split when both its files are there. Images become [N,1,H,W] (uint8 for
// uint8 files); labels int64 [N]. Class names are "0".."K-1", K = largest
// label + 1 (10 for MNIST). The caller may replace them (the registry does).
DatasetSplits load_idx_folder(const std::string& dir);

}  // namespace deft::data
