// Data reports: JSON contents checked against what the data holds, and the human table.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "deft/data/csv.h"
#include "deft/data/report.h"

using namespace deft;
using namespace deft::data;

namespace {

bool contains(const std::string& s, const std::string& piece) { return s.find(piece) != std::string::npos; }

}  // namespace

TEST(DataReport, TableWithSchemaClassBalanceAndMissing) {
  const CsvTable t = parse_csv(
      "age,city,label\n"
      "30,paris,yes\n"
      "NA,lyon,no\n"
      "50,paris,yes\n"
      "20,,yes\n"
      "40,nice,\n",
      "people.csv");
  TableSchema schema;
  const Dataset d = csv_to_dataset(t, "label", {}, &schema);
  const auto r = data_report(d, &schema);
  EXPECT_EQ(r["kind"], "table");
  EXPECT_EQ(r["rows"], 4);
  EXPECT_EQ(r["num_columns"], 2);
  EXPECT_EQ(r["missing_total"], 2);
  const auto& age = r["columns"][0];
  EXPECT_EQ(age["name"], "age");
  EXPECT_EQ(age["type"], "numeric");
  EXPECT_EQ(age["missing"], 1);
  EXPECT_DOUBLE_EQ(age["min"].get<double>(), 20);
  EXPECT_DOUBLE_EQ(age["max"].get<double>(), 50);
  EXPECT_DOUBLE_EQ(age["mean"].get<double>(), (30 + 50 + 20) / 3.0);
  const auto& city = r["columns"][1];
  EXPECT_EQ(city["type"], "categorical");
  EXPECT_EQ(city["missing"], 1);
  EXPECT_EQ(city["distinct"], 2);  // paris, lyon among the kept rows
  EXPECT_EQ(city["top"][0]["value"], "paris");
  EXPECT_EQ(city["top"][0]["count"], 2);
  const auto& target = r["target"];
  EXPECT_EQ(target["name"], "label");
  EXPECT_EQ(target["task"], "classification");
  EXPECT_EQ(target["num_classes"], 2);
  EXPECT_EQ(target["dropped_missing"], 1);
  EXPECT_EQ(target["classes"][0]["name"], "no");
  EXPECT_EQ(target["classes"][0]["count"], 1);
  EXPECT_EQ(target["classes"][1]["name"], "yes");
  EXPECT_EQ(target["classes"][1]["count"], 3);
  EXPECT_DOUBLE_EQ(target["classes"][1]["fraction"].get<double>(), 0.75);

  const std::string text = format_report(r);
  EXPECT_TRUE(contains(text, "people.csv")) << text;
  EXPECT_TRUE(contains(text, "classification, 2 classes (target \"label\")")) << text;
  EXPECT_TRUE(contains(text, "1 rows with no target value")) << text;
  EXPECT_TRUE(contains(text, "age     numeric")) << text;
  EXPECT_TRUE(contains(text, "city    categorical  1        2")) << text;
  EXPECT_TRUE(contains(text, "top: paris (2), lyon (1)")) << text;
  EXPECT_TRUE(contains(text, "  yes    3          75.0%")) << text;
  EXPECT_TRUE(contains(text, "  no     1          25.0%")) << text;
}

TEST(DataReport, WithoutSchemaEveryColumnIsNumeric) {
  Dataset d;
  d.name = "arr";
  d.features = Tensor::from_vector(std::vector<float>{1, std::numeric_limits<float>::quiet_NaN(), 3, 4}, {2, 2});
  d.feature_names = {"a", "b"};
  d.task = Task::Regression;
  d.labels = Tensor::from_vector(std::vector<float>{0.5f, 1.5f});
  const auto r = data_report(d);
  EXPECT_EQ(r["columns"][1]["name"], "b");
  EXPECT_EQ(r["columns"][1]["type"], "numeric");
  EXPECT_EQ(r["columns"][1]["missing"], 1);
  EXPECT_DOUBLE_EQ(r["columns"][1]["mean"].get<double>(), 4);
  EXPECT_EQ(r["target"]["task"], "regression");
  EXPECT_DOUBLE_EQ(r["target"]["min"].get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(r["target"]["max"].get<double>(), 1.5);
  EXPECT_DOUBLE_EQ(r["target"]["mean"].get<double>(), 1.0);
  EXPECT_FALSE(r["target"].contains("name"));
  const std::string text = format_report(r);
  EXPECT_TRUE(contains(text, "target      min 0.5, max 1.5, mean 1")) << text;
}

TEST(DataReport, ImagesShapePixelsAndBalance) {
  Dataset d;
  d.name = "tiny";
  std::vector<uint8_t> px(3 * 1 * 2 * 2);
  for (size_t i = 0; i < px.size(); ++i) px[i] = static_cast<uint8_t>(i * 20);  // 0..220
  d.features = Tensor::from_vector(px, {3, 1, 2, 2});
  d.labels = Tensor::from_vector(std::vector<int64_t>{0, 1, 1});
  d.class_names = {"T-shirt/top", "Trouser"};
  const auto r = data_report(d);
  EXPECT_EQ(r["kind"], "image");
  EXPECT_EQ(r["rows"], 3);
  EXPECT_EQ(r["image"]["shape"], (std::vector<int64_t>{1, 2, 2}));
  EXPECT_EQ(r["image"]["dtype"], "uint8");
  EXPECT_DOUBLE_EQ(r["image"]["pixel_min"].get<double>(), 0);
  EXPECT_DOUBLE_EQ(r["image"]["pixel_max"].get<double>(), 220);
  EXPECT_DOUBLE_EQ(r["image"]["pixel_mean"].get<double>(), 110);
  EXPECT_EQ(r["target"]["classes"][0]["name"], "T-shirt/top");
  EXPECT_EQ(r["target"]["classes"][0]["count"], 1);
  EXPECT_EQ(r["target"]["classes"][1]["count"], 2);
  const std::string text = format_report(r);
  EXPECT_TRUE(contains(text, "1x2x2 (CxHxW), uint8")) << text;
  EXPECT_TRUE(contains(text, "min 0, max 220, mean 110")) << text;
  EXPECT_TRUE(contains(text, "T-shirt/top")) << text;
}

TEST(DataReport, LabelsOutsideTheClassesAreCountedNotFatal) {
  Dataset d;
  d.features = Tensor::zeros({3, 1});
  d.labels = Tensor::from_vector(std::vector<int64_t>{0, 5, -1});
  d.class_names = {"a", "b"};
  const auto r = data_report(d);
  EXPECT_EQ(r["target"]["invalid_labels"], 2);
  EXPECT_TRUE(contains(format_report(r), "2 labels outside the class range"));
}

TEST(DataReport, FormatsTheCsvInferenceReport) {
  const auto t = parse_csv("x;y\n1,5;a\n2,5;b\n", "eu.csv");
  const std::string text = format_report(csv_report(t));
  EXPECT_TRUE(contains(text, "delimiter ;, decimal ,, header row")) << text;
  EXPECT_TRUE(contains(text, "x       numeric      0                  1.5        2.5        2")) << text;
  EXPECT_TRUE(contains(text, "y       categorical  0        2")) << text;
}
