// Preprocessing fitted on the training split only and saved with the model, so
// inference applies exactly the same transform.
//
//   TableSchema schema;
//   Dataset all = csv_to_dataset(read_csv("adult.csv"), "income", {}, &schema);
//   ... split into train / test ...
//   Preprocessor pre(PreprocessOptions{}, schema);   // schema: which columns are categorical
//   Dataset tr = pre.fit_transform(train);           // fit on train, clean train, transform it
//   Dataset te = pre.transform(test);                // train's statistics, every test row kept
//   json saved = pre.to_json();                      // into the model file's metadata
//   Preprocessor again = Preprocessor::from_json(saved);  // same outputs, bit for bit
//
// Tables (features float32 [N,F], as csv_to_dataset makes them; NaN or ±inf =
// missing), per column, in this order:
//   1. Columns with no value at all in train are dropped ("all missing").
//   2. Rows: with MissingPolicy::DropRows, training rows with a missing value are
//      dropped; with drop_duplicates, repeated training rows (same features and
//      label) are dropped. These two row filters are cleaning for training data:
//      fit() computes its statistics on the filtered rows and fit_transform() /
//      filter_rows() apply them, but transform() never drops a row, so test
//      metrics and predictions cover every row given.
//   3. Missing values are imputed: numeric with the train mean / median / most
//      frequent value (DropRows: the mean, for rows that reach transform());
//      categorical always with the most frequent train category.
//   4. drop_constant: columns with a single value in (filtered, imputed) train are dropped.
//   5. clip_outliers: numeric values clipped to the train quantiles [clip_low, clip_high].
//   6. Numeric scaling: Standard ((x-mean)/std, population std; std 0 -> 1) or
//      MinMax ((x-min)/(max-min) on train; range 0 -> 1) or None.
//   7. Categoricals: the categories seen in train (at most max_categories, the
//      most frequent) get a slot each, plus one reserved "unknown" slot, last,
//      for categories unseen in train or absent from the schema (code -1), so
//      new categories at inference never crash. OneHot: K+1 outputs named
//      "col=value" ... "col=<unknown>" (0/1, not scaled); Ordinal: one output,
//      the slot index 0..K (K = unknown), not scaled.
//   Without a schema every column is numeric.
//
// Images (features [N,C,H,W], uint8 raw 0-255 or float32 on the same scale):
//   scale_pixels multiplies by 1/255; normalize_channels then subtracts the
//   per-channel mean and divides by the per-channel std, both from train.
//   Output float32 [N,C,H,W]. Row filters: drop_duplicates applies; no missing values.
//
// The result is float32. Labels, class names and task pass through unchanged.
// Misuse (transform before fit, a different column count or image shape) is an InputError.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "deft/data/csv.h"
#include "deft/data/dataset.h"

namespace deft::data {

enum class MissingPolicy { DropRows, Mean, Median, MostFrequent };
enum class Scaling { None, Standard, MinMax };
enum class Encoding { OneHot, Ordinal };

struct PreprocessOptions {
  MissingPolicy missing = MissingPolicy::Mean;
  bool drop_duplicates = false;
  bool drop_constant = true;
  bool clip_outliers = false;
  double clip_low = 0.01, clip_high = 0.99;  // quantiles, 0 <= low < high <= 1
  Scaling scaling = Scaling::Standard;
  Encoding encoding = Encoding::OneHot;
  int64_t max_categories = 100;  // per categorical column; the rest share the unknown slot
  bool scale_pixels = true;
  bool normalize_channels = true;

  nlohmann::json to_json() const;
  static PreprocessOptions from_json(const nlohmann::json& j);  // InputError if malformed
};

class Preprocessor {
 public:
  // What fit() decided for one input column of a table (public for exporters,
  // e.g. ONNX, that rebuild the transform as graph ops).
  struct Column {
    std::string name;
    bool categorical = false;
    bool dropped = false;
    std::string drop_reason;  // "all missing" or "constant"
    // Numeric: missing -> fill; then clip to [clip_lo, clip_hi] if clip; output (x - shift) / scale.
    double fill = 0;
    bool clip = false;
    double clip_lo = 0, clip_hi = 0;
    double shift = 0, scale = 1;
    // Categorical: kept[s] is slot s's category; slot kept.size() is "unknown".
    std::vector<std::string> kept;
    int64_t fill_slot = 0;               // slot for a missing value
    std::vector<int64_t> slot_of_code;   // schema code -> slot (derived from schema and kept)
    int64_t width(Encoding e) const;     // outputs this column produces
  };
  struct Image {
    Shape chw;                  // [C,H,W] seen at fit
    double pixel_scale = 1;     // 1/255 with scale_pixels
    std::vector<double> mean;   // per channel, after pixel scaling (0 without normalisation)
    std::vector<double> std;    // per channel (1 without normalisation)
  };

  explicit Preprocessor(PreprocessOptions opts = {}, TableSchema schema = {});

  void fit(const Dataset& train);
  // fit(train), then transform(filter_rows(train)).
  Dataset fit_transform(const Dataset& train);
  // Row-preserving: every row of `d` comes out, transformed.
  Dataset transform(const Dataset& d) const;
  // The same on a bare feature tensor ([N,F] or [N,C,H,W]), e.g. for serving.
  Tensor transform_features(const Tensor& raw) const;
  // Tables: the same for `n` raw rows of num_inputs() floats into `out` (n x
  // num_outputs(), overwritten), without checks or allocation (the inference runtime).
  void transform_table_rows(const float* raw, int64_t n, float* out) const;
  // The training-data cleaning of step 2 (drop rows with missing values / duplicates).
  Dataset filter_rows(const Dataset& d) const;

  bool fitted() const { return kind_ != Kind::Unfitted; }
  bool is_image() const { return kind_ == Kind::Image; }
  int64_t num_inputs() const;   // feature columns (tables) or C*H*W (images) expected
  int64_t num_outputs() const;
  std::vector<std::string> output_feature_names() const;  // images: "c0_y0_x0", ...
  const PreprocessOptions& options() const { return opts_; }
  const TableSchema& schema() const { return schema_; }
  const std::vector<Column>& columns() const { return columns_; }
  const Image& image() const { return image_; }

  // Everything needed to apply the transform (options, schema, fitted statistics);
  // from_json(to_json()) transforms bit-identically. InputError if malformed.
  nlohmann::json to_json() const;
  static Preprocessor from_json(const nlohmann::json& j);

 private:
  enum class Kind { Unfitted, Table, Image };
  void fit_impl(const Dataset& train);
  void check_fitted(const char* what) const;
  void derive();  // slot_of_code and the image's float coefficients from the stored values
  std::vector<int64_t> keep_rows(const Tensor& features, const Tensor& labels) const;

  PreprocessOptions opts_;
  TableSchema schema_;
  Kind kind_ = Kind::Unfitted;
  std::vector<Column> columns_;
  Image image_;
  std::vector<float> img_a_, img_b_;  // per channel: out = x * a + b
};

}  // namespace deft::data
