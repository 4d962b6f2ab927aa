// `deft data inspect`: what a dataset (a registered name or any supported path)
// holds, as JSON, per split. The CLI prints format_inspection() or the JSON.
//
//   nlohmann::json r = inspect_data("fashion-mnist", {});
//   nlohmann::json c = inspect_data("table.csv", {.target = "y"});
//   std::cout << format_inspection(r);
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace deft::data {

struct InspectOptions {
  std::string target;  // CSV: the label column ("" = report columns only)
  std::string resize;  // image folders: "HxW" when sizes differ
};

// {"source", "format", "splits": {"train": data_report, "test": ...},
//  "csv": csv_report (CSV only), "split_sizes": "train 60000 · test 10000"}
nlohmann::json inspect_data(const std::string& name_or_path, const InspectOptions& options);
std::string format_inspection(const nlohmann::json& inspection);

// True when the path names a delimited text table (.csv, .tsv, .csv.gz is not supported).
bool is_table_path(const std::string& path);

}  // namespace deft::data
