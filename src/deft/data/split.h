// Train / validation / test splits: by fraction, stratified by class, seeded; k-fold.
//
//   DatasetSplits s = load_dataset("data.csv");           // no test split of its own
//   s = ensure_splits(std::move(s), {.validation = 0.1});  // holds out 20% test, 10% val
//   std::cout << describe_splits(s);                       // sizes, per split
//
// The same seed and data always give the same split, whatever the thread count.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "deft/data/dataset.h"
#include "deft/tensor/random.h"

namespace deft::data {

// Uniform integer in [0, n) without modulo bias.
uint64_t uniform_index(Generator& gen, uint64_t n);
// A seeded random permutation of 0..n-1 (Fisher–Yates).
std::vector<int64_t> permutation(int64_t n, Generator& gen);

// Splits 0..N-1 into parts with the given fractions (summing to <= 1; the last
// part takes the rounding remainder when they sum to 1). With `labels` (int64
// class indices) each class is split in the same proportions.
std::vector<std::vector<int64_t>> split_indices(int64_t n, const std::vector<double>& fractions, uint64_t seed,
                                                const Tensor& labels = Tensor());

// (train, test) with `test_fraction` of the examples in test; stratified for classification.
std::pair<Dataset, Dataset> train_test_split(const Dataset& d, double test_fraction, uint64_t seed,
                                             bool stratify = true);

// k folds: for each, (train indices, validation indices); stratified for classification.
std::vector<std::pair<std::vector<int64_t>, std::vector<int64_t>>> kfold(const Dataset& d, int k, uint64_t seed,
                                                                         bool stratify = true);

struct SplitOptions {
  double test = 0.2;        // held out when the data has no test split of its own
  double validation = 0.0;  // taken from train when there is no validation split (0 = none)
  uint64_t seed = 0;
  bool stratify = true;
};

// Adds a held-out test split when missing and a validation split when asked.
DatasetSplits ensure_splits(DatasetSplits s, const SplitOptions& options);

// "train 48000 · validation 12000 · test 10000 (held out by deft: no)".
std::string describe_splits(const DatasetSplits& s);

}  // namespace deft::data
