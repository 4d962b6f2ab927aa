// Datasets: examples held in memory as tensors, with their labels and names.
//
// Every reader (IDX, CSV, NPY/NPZ, image folders, text) produces a Dataset or a
// DatasetSplits; preprocessing, splitting and the loader consume them.
//
//   DatasetSplits fm = load_dataset("fashion-mnist");   // train + test
//   fm.train.features  // uint8 [60000, 1, 28, 28], raw pixels
//   fm.train.labels    // int64 [60000]
//   fm.train.class_names[fm.train.labels[i]]  // "Ankle boot"
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "deft/tensor/tensor.h"

namespace deft::data {

enum class Task { Classification, Regression };

struct TableSchema;  // csv.h: column types and category codes of data read from a table

struct Dataset {
  std::string name;    // e.g. "fashion-mnist" or the source path
  std::string source;  // file or folder it came from
  // [N, ...]: uint8 N×C×H×W for images (raw pixels, 0–255), float32 N×F for tables.
  Tensor features;
  // [N]: int64 class indices (classification) or float32 targets (regression).
  // Undefined for unlabeled data (e.g. inputs to predict).
  Tensor labels;
  Task task = Task::Classification;
  std::vector<std::string> class_names;    // index -> name, classification only
  std::vector<std::string> feature_names;  // tables: one per feature column
  std::vector<std::string> texts;          // text datasets: the raw strings, one per example
  // Tables: which feature columns are categorical codes and what they mean; the
  // preprocessing needs it. Null for images and text.
  std::shared_ptr<const TableSchema> schema;

  int64_t size() const;
  bool is_image() const { return features.defined() && features.dim() == 4; }
  int64_t num_classes() const { return static_cast<int64_t>(class_names.size()); }
  // The examples at `indices` (int64 [K]), in that order.
  Dataset subset(const Tensor& indices) const;
  Dataset subset(const std::vector<int64_t>& indices) const;
};

struct DatasetSplits {
  Dataset train;
  std::optional<Dataset> validation;
  std::optional<Dataset> test;
};

}  // namespace deft::data
