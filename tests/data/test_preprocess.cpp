// Preprocessor: statistics from the training split only, each cleaning step,
// categorical encoding with the reserved unknown slot, images, and the JSON
// round trip (bit-identical outputs).
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "data_test_util.h"
#include "deft/data/csv.h"
#include "deft/data/preprocess.h"

using namespace deft;
using namespace deft::data;

namespace {

using deft::test_util::expect_input_error;

const float kNaN = std::numeric_limits<float>::quiet_NaN();

Dataset table(const std::vector<float>& x, int64_t f, const std::vector<int64_t>& y = {}) {
  Dataset d;
  d.name = "t";
  d.features = Tensor::from_vector(x, {static_cast<int64_t>(x.size()) / f, f});
  if (!y.empty()) d.labels = Tensor::from_vector(y);
  for (int64_t j = 0; j < f; ++j) d.feature_names.push_back(fmt::format("x{}", j));
  return d;
}

std::vector<float> values(const Dataset& d) { return d.features.to_vector<float>(); }

Preprocessor round_trip(const Preprocessor& p) {
  return Preprocessor::from_json(nlohmann::json::parse(p.to_json().dump()));
}

PreprocessOptions no_scaling() {
  PreprocessOptions o;
  o.scaling = Scaling::None;
  return o;
}

TableSchema color_schema() {
  TableSchema s;
  s.features.push_back({"color", ColumnType::Categorical, {"blue", "green", "red"}});
  s.features.push_back({"x", ColumnType::Numeric, {}});
  return s;
}

}  // namespace

TEST(Preprocess, StatisticsComeFromTheTrainingSplitOnly) {
  const Dataset train = table({0, 2, 4}, 1);
  const Dataset test = table({10, 12}, 1);
  Preprocessor p;
  p.fit(train);
  const double sd = std::sqrt(8.0 / 3.0);
  const auto tr = values(p.transform(train));
  EXPECT_EQ(tr, (std::vector<float>{static_cast<float>(-2 / sd), 0.0f, static_cast<float>(2 / sd)}));
  const auto te = values(p.transform(test));
  EXPECT_EQ(te, (std::vector<float>{static_cast<float>(8 / sd), static_cast<float>(10 / sd)}));
  // Test data is NOT re-centred: its mean stays far from 0.
  EXPECT_GT((te[0] + te[1]) / 2, 5.0f);
  EXPECT_EQ(p.columns()[0].shift, 2.0);
  EXPECT_DOUBLE_EQ(p.columns()[0].scale, sd);
}

TEST(Preprocess, MinMaxScaling) {
  PreprocessOptions o;
  o.scaling = Scaling::MinMax;
  Preprocessor p(o);
  p.fit(table({0, 5, 10}, 1));
  EXPECT_EQ(values(p.transform(table({0, 5, 10, 20, -10}, 1))), (std::vector<float>{0, 0.5f, 1, 2, -1}));
}

TEST(Preprocess, ImputationMeanMedianMostFrequent) {
  const Dataset train = table({1, kNaN, 3, 10, std::numeric_limits<float>::infinity()}, 1);
  const Dataset test = table({kNaN, 7}, 1);
  auto fill_with = [&](MissingPolicy m) {
    PreprocessOptions o = no_scaling();
    o.missing = m;
    Preprocessor p(o);
    p.fit(train);
    const auto out = values(p.transform(test));
    EXPECT_EQ(out[1], 7.0f);
    return out[0];
  };
  EXPECT_EQ(fill_with(MissingPolicy::Mean), static_cast<float>(14.0 / 3.0));
  EXPECT_EQ(fill_with(MissingPolicy::Median), 3.0f);
  EXPECT_EQ(fill_with(MissingPolicy::MostFrequent), 1.0f);  // all tie: the smallest
  PreprocessOptions o = no_scaling();
  o.missing = MissingPolicy::MostFrequent;
  Preprocessor p(o);
  p.fit(table({4, 2, 4, kNaN, 2, 4}, 1));
  EXPECT_EQ(values(p.transform(table({kNaN}, 1))), (std::vector<float>{4}));
}

TEST(Preprocess, DropRowsCleansTrainingButTransformKeepsEveryRow) {
  PreprocessOptions o = no_scaling();
  o.missing = MissingPolicy::DropRows;
  Preprocessor p(o);
  const Dataset train = table({1, 2, kNaN, 3, 4, 5}, 2, {0, 1, 0});
  const Dataset tr = p.fit_transform(train);
  EXPECT_EQ(tr.size(), 2);
  EXPECT_EQ(values(tr), (std::vector<float>{1, 2, 4, 5}));
  EXPECT_EQ(tr.labels.to_vector<int64_t>(), (std::vector<int64_t>{0, 0}));
  // Statistics come from the kept rows: column 1 mean is (2+5)/2, not (2+3+5)/3.
  const Dataset te = p.transform(table({kNaN, kNaN}, 2));
  EXPECT_EQ(values(te), (std::vector<float>{2.5f, 3.5f}));
  expect_input_error([&] { Preprocessor(o).fit(table({kNaN, 1, 2, kNaN}, 2)); }, {"no training rows"});
}

TEST(Preprocess, DuplicateRowsRemovedOnRequest) {
  PreprocessOptions o = no_scaling();
  o.drop_duplicates = true;
  Preprocessor p(o);
  const Dataset train = table({1, 2, 1, 2, 3, 4, 1, 2}, 2, {0, 0, 1, 1});
  const Dataset tr = p.fit_transform(train);
  // Rows 0 and 1 are duplicates (same features, same label); row 3 differs from 0 by its label.
  EXPECT_EQ(values(tr), (std::vector<float>{1, 2, 3, 4, 1, 2}));
  EXPECT_EQ(tr.labels.to_vector<int64_t>(), (std::vector<int64_t>{0, 1, 1}));
  // Without the option nothing is dropped.
  EXPECT_EQ(Preprocessor(no_scaling()).fit_transform(train).size(), 4);
}

TEST(Preprocess, ConstantAndEmptyColumnsAreDropped) {
  const Dataset train = table({1, 5, kNaN, 2, 5, kNaN, 3, 5, kNaN}, 3);
  Preprocessor p;
  p.fit(train);
  EXPECT_EQ(p.output_feature_names(), (std::vector<std::string>{"x0"}));
  EXPECT_EQ(p.columns()[1].drop_reason, "constant");
  EXPECT_EQ(p.columns()[2].drop_reason, "all missing");
  EXPECT_EQ(p.transform(train).features.shape(), (Shape{3, 1}));
  PreprocessOptions keep;
  keep.drop_constant = false;
  Preprocessor q(keep);
  q.fit(train);
  EXPECT_EQ(q.output_feature_names(), (std::vector<std::string>{"x0", "x1"}));
  const auto out = values(q.transform(train));
  EXPECT_EQ(out[1], 0.0f);  // a constant column standardises to 0, not to NaN
  EXPECT_EQ(out[3], 0.0f);
}

TEST(Preprocess, OutliersClippedToTrainQuantiles) {
  std::vector<float> x;
  for (int i = 0; i <= 100; ++i) x.push_back(static_cast<float>(i));
  x.push_back(1000);
  PreprocessOptions o = no_scaling();
  o.clip_outliers = true;
  o.clip_low = 0.05;
  o.clip_high = 0.95;
  Preprocessor p(o);
  p.fit(table(x, 1));
  // 102 sorted values; quantile q sits at q*101 with linear interpolation.
  EXPECT_DOUBLE_EQ(p.columns()[0].clip_lo, 5.05);
  EXPECT_DOUBLE_EQ(p.columns()[0].clip_hi, 95.95);
  EXPECT_EQ(values(p.transform(table({-50, 50, 5000}, 1))), (std::vector<float>{5.05f, 50.0f, 95.95f}));
  expect_input_error([] {
    PreprocessOptions bad;
    bad.clip_low = 0.9;
    bad.clip_high = 0.1;
    Preprocessor q(bad);
  }, {"clip quantiles"});
}

TEST(Preprocess, OneHotWithReservedUnknownSlot) {
  // color codes: blue=0, green=1, red=2; green never appears in train.
  const Dataset train = table({2, 1.0f, 0, 2.0f, 2, 3.0f}, 2, {0, 1, 0});
  Preprocessor p(no_scaling(), color_schema());
  p.fit(train);
  EXPECT_EQ(p.output_feature_names(),
            (std::vector<std::string>{"color=blue", "color=red", "color=<unknown>", "x"}));
  EXPECT_EQ(p.num_outputs(), 4);
  // green (seen by the schema, not by train), -1 (new to the schema), 7 (out of range),
  // blue, missing (-> most frequent: red).
  const Dataset test = table({1, 0, -1, 0, 7, 0, 0, 0, kNaN, 0}, 2);
  EXPECT_EQ(values(p.transform(test)), (std::vector<float>{0, 0, 1, 0,  //
                                                           0, 0, 1, 0,  //
                                                           0, 0, 1, 0,  //
                                                           1, 0, 0, 0,  //
                                                           0, 1, 0, 0}));
  EXPECT_EQ(values(p.transform(train)), (std::vector<float>{0, 1, 0, 1, 1, 0, 0, 2, 0, 1, 0, 3}));
}

TEST(Preprocess, OrdinalEncodingAndCategoryCap) {
  PreprocessOptions o = no_scaling();
  o.encoding = Encoding::Ordinal;
  Preprocessor p(o, color_schema());
  p.fit(table({2, 1, 0, 2, 2, 3}, 2));
  EXPECT_EQ(p.output_feature_names(), (std::vector<std::string>{"color", "x"}));
  EXPECT_EQ(values(p.transform(table({1, 0, -1, 0, 0, 0, 2, 0, kNaN, 0}, 2))),
            (std::vector<float>{2, 0, 2, 0, 0, 0, 1, 0, 1, 0}));

  PreprocessOptions cap = no_scaling();
  cap.max_categories = 1;
  Preprocessor q(cap, color_schema());
  q.fit(table({2, 1, 0, 2, 2, 3}, 2));  // red twice, blue once: only red keeps a slot
  EXPECT_EQ(q.output_feature_names(), (std::vector<std::string>{"color=red", "color=<unknown>", "x"}));
  EXPECT_EQ(values(q.transform(table({0, 5}, 2))), (std::vector<float>{0, 1, 5}));
}

TEST(Preprocess, JsonRoundTripIsBitIdentical) {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(3.0f, 2.0f);
  std::vector<float> x;
  std::vector<int64_t> y;
  for (int i = 0; i < 200; ++i) {
    x.push_back(static_cast<float>(rng() % 3));                          // color
    x.push_back(i % 17 == 0 ? kNaN : normal(rng) * 1000.0f + 0.1f);       // x
    y.push_back(i % 2);
  }
  for (auto missing : {MissingPolicy::Mean, MissingPolicy::Median, MissingPolicy::DropRows}) {
    for (auto scaling : {Scaling::Standard, Scaling::MinMax}) {
      for (auto enc : {Encoding::OneHot, Encoding::Ordinal}) {
        PreprocessOptions o;
        o.missing = missing;
        o.scaling = scaling;
        o.encoding = enc;
        o.clip_outliers = true;
        o.drop_duplicates = true;
        Preprocessor p(o, color_schema());
        const Dataset train = table(x, 2, y);
        p.fit(train);
        const Preprocessor q = round_trip(p);
        EXPECT_EQ(q.to_json(), p.to_json());
        EXPECT_EQ(q.output_feature_names(), p.output_feature_names());
        const Dataset test = table({0, 1.2345678f, 1, kNaN, -1, -99999.0f, 2, 1e30f}, 2);
        EXPECT_TRUE(tt::bitwise_equal(p.transform(test).features, q.transform(test).features));
        EXPECT_TRUE(tt::bitwise_equal(p.transform(train).features, q.transform(train).features));
        EXPECT_TRUE(
            tt::bitwise_equal(p.fit_transform(train).features, q.transform(q.filter_rows(train)).features));
      }
    }
  }
}

TEST(Preprocess, ImagesScaledAndNormalisedPerChannelFromTrain) {
  std::mt19937 rng(1);
  const int64_t n = 20, c = 2, h = 3, w = 3;
  std::vector<uint8_t> px(static_cast<size_t>(n * c * h * w));
  for (size_t i = 0; i < px.size(); ++i) {
    const bool second = (i / (h * w)) % c == 1;
    px[i] = static_cast<uint8_t>(second ? 200 + rng() % 50 : rng() % 100);
  }
  Dataset train;
  train.features = Tensor::from_vector(px, {n, c, h, w});
  train.labels = Tensor::zeros({n}, DType::Int64);
  Preprocessor p;
  p.fit(train);
  ASSERT_TRUE(p.is_image());
  // Reference statistics, computed here independently.
  for (int64_t ch = 0; ch < c; ++ch) {
    double sum = 0, sq = 0;
    int64_t cnt = 0;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t k = 0; k < h * w; ++k) {
        const double v = px[static_cast<size_t>((i * c + ch) * h * w + k)] / 255.0;
        sum += v, sq += v * v, ++cnt;
      }
    const double mean = sum / cnt, sd = std::sqrt(sq / cnt - mean * mean);
    EXPECT_NEAR(p.image().mean[static_cast<size_t>(ch)], mean, 1e-12);
    EXPECT_NEAR(p.image().std[static_cast<size_t>(ch)], sd, 1e-9);
  }
  const Dataset tr = p.transform(train);
  EXPECT_EQ(tr.features.dtype(), DType::Float32);
  EXPECT_EQ(tr.features.shape(), (Shape{n, c, h, w}));
  const auto out = tr.features.to_vector<float>();
  for (int64_t ch = 0; ch < c; ++ch) {
    double sum = 0, sq = 0;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t k = 0; k < h * w; ++k) {
        const double v = out[static_cast<size_t>((i * c + ch) * h * w + k)];
        sum += v, sq += v * v;
      }
    EXPECT_NEAR(sum / (n * h * w), 0.0, 1e-5);
    EXPECT_NEAR(sq / (n * h * w), 1.0, 1e-4);
  }
  // A test image uses train's statistics: a white image maps to (1 - mean) / std.
  Dataset white;
  white.features = Tensor::full({1, c, h, w}, 255, DType::UInt8);
  const auto wv = p.transform(white).features.to_vector<float>();
  EXPECT_NEAR(wv[0], (1.0 - p.image().mean[0]) / p.image().std[0], 1e-5);
  EXPECT_NEAR(wv[h * w], (1.0 - p.image().mean[1]) / p.image().std[1], 1e-5);

  const Preprocessor q = round_trip(p);
  EXPECT_TRUE(tt::bitwise_equal(p.transform(white).features, q.transform(white).features));
  EXPECT_TRUE(tt::bitwise_equal(tr.features, q.transform(train).features));

  Dataset wrong;
  wrong.features = Tensor::zeros({1, c, h + 1, w}, DType::UInt8);
  expect_input_error([&] { p.transform(wrong); }, {"[2,3,3]", "[1,2,4,3]"});

  PreprocessOptions scale_only;
  scale_only.normalize_channels = false;
  Preprocessor s(scale_only);
  s.fit(train);
  EXPECT_EQ(s.transform(white).features.to_vector<float>()[0], 1.0f);
}

TEST(Preprocess, MisuseIsAnInputError) {
  Preprocessor p;
  expect_input_error([&] { p.transform(table({1, 2}, 2)); }, {"before fit"});
  p.fit(table({1, 2, 3, 4}, 2));
  expect_input_error([&] { p.transform(table({1, 2, 3}, 3)); }, {"2 feature columns", "[1,3]"});
  Preprocessor with_schema(PreprocessOptions{}, color_schema());
  expect_input_error([&] { with_schema.fit(table({1, 2, 3}, 3)); }, {"schema has 2"});
  expect_input_error([] { Preprocessor::from_json(nlohmann::json{{"format", "nope"}}); }, {"preprocessor"});
  auto j = p.to_json();
  j["columns"][0]["shift"] = "abc";
  expect_input_error([&] { Preprocessor::from_json(j); }, {"preprocessor: malformed JSON"});
  Dataset empty;
  expect_input_error([&] { Preprocessor().fit(empty); }, {"no features"});
}

TEST(Preprocess, CsvEndToEndWithUnseenCategoryAtInference) {
  namespace fs = std::filesystem;
  std::string tmpl = (fs::temp_directory_path() / "deft_pre_XXXXXX").string();
  ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
  const fs::path dir = tmpl;
  auto write = [&](const std::string& name, const std::string& text) {
    std::ofstream(dir / name, std::ios::binary) << text;
    return (dir / name).string();
  };
  const auto train_path = write("train.csv",
                                "city,rooms,price_band\n"
                                "paris,3,high\n"
                                "lyon,2,low\n"
                                "paris,NA,high\n"
                                "nice,4,high\n"
                                "lyon,1,low\n");
  TableSchema schema;
  const Dataset all = csv_to_dataset(read_csv(train_path), "price_band", {}, &schema);
  const Dataset train = all.subset(std::vector<int64_t>{0, 1, 2, 3});
  Preprocessor p(PreprocessOptions{}, schema);
  const Dataset tr = p.fit_transform(train);
  EXPECT_EQ(p.output_feature_names(),
            (std::vector<std::string>{"city=lyon", "city=nice", "city=paris", "city=<unknown>", "rooms"}));
  EXPECT_EQ(tr.class_names, (std::vector<std::string>{"high", "low"}));

  // A saved model reads a new file: unseen "rome" goes to the unknown slot.
  const Preprocessor loaded = Preprocessor::from_json(nlohmann::json::parse(p.to_json().dump()));
  const auto new_path = write("new.csv", "rooms,city\n3,rome\n2,lyon\n");
  const Dataset x = csv_to_features(read_csv(new_path, loaded.schema().csv_options()), loaded.schema());
  const auto out = values(loaded.transform(x));
  ASSERT_EQ(out.size(), 10u);
  EXPECT_EQ((std::vector<float>(out.begin(), out.begin() + 4)), (std::vector<float>{0, 0, 0, 1}));
  EXPECT_EQ((std::vector<float>(out.begin() + 5, out.begin() + 9)), (std::vector<float>{1, 0, 0, 0}));
  // rooms standardised with train's (imputed) statistics: train rooms 3,2,mean=3,4.
  const double mean = 3.0, sd = std::sqrt((0.0 + 1.0 + 0.0 + 1.0) / 4.0);
  EXPECT_EQ(out[4], static_cast<float>((3.0 - mean) / sd));
  EXPECT_EQ(out[9], static_cast<float>((2.0 - mean) / sd));
  std::error_code ec;
  fs::remove_all(dir, ec);
}
