// Data reports: what a dataset holds, as JSON and as a human-readable table.
// Backs `deft data inspect PATH [--target y] [--json]`.
//
//   TableSchema schema;
//   CsvTable t = read_csv("iris.csv");
//   Dataset d = csv_to_dataset(t, "species", {}, &schema);
//   nlohmann::json r = data_report(d, &schema);   // --json: print r.dump(2)
//   std::cout << format_report(r);                 // otherwise
//   std::cout << format_report(csv_report(t));     // what the CSV reader inferred (csv.h)
//
// data_report() keys (absent when they do not apply):
//   "name", "source", "kind" ("table" | "image" | "text"), "rows",
//   "num_columns", "missing_total",
//   "columns": [{"name", "type" ("numeric" | "categorical"), "missing",
//                numeric: "min", "max", "mean" (null when all missing);
//                categorical: "distinct", "top": [{"value", "count"}] (5 most frequent)}]
//              (tables; categorical only when the schema says so, else every column is numeric;
//               missing = NaN or ±inf),
//   "image": {"shape": [C,H,W], "dtype", "pixel_min", "pixel_max", "pixel_mean", "channel_mean": [...]},
//   "text": {"mean_length", "max_length"} (bytes),
//   "target": {"name" (schema's target, if any), "task" ("classification" | "regression"),
//              "dropped_missing" (rows dropped for a missing target, from the schema),
//              classification: "num_classes", "classes": [{"name", "count", "fraction"}],
//                              "invalid_labels" (labels outside the class range, if any);
//              regression: "min", "max", "mean"}
//   (no "target" for unlabeled data).
// format_report() also prints csv_report() JSON (it adds "delimiter", "decimal", "header").
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "deft/data/csv.h"
#include "deft/data/dataset.h"

namespace deft::data {

nlohmann::json data_report(const Dataset& d, const TableSchema* schema = nullptr);
std::string format_report(const nlohmann::json& report);

}  // namespace deft::data
