#include "deft/data/inspect.h"

#include <filesystem>

#include <fmt/format.h>

#include "deft/data/csv.h"
#include "deft/data/registry.h"
#include "deft/data/report.h"
#include "deft/data/split.h"

namespace deft::data {

bool is_table_path(const std::string& path) {
  const std::string ext = std::filesystem::path(path).extension().string();
  return ext == ".csv" || ext == ".tsv" || ext == ".CSV" || ext == ".TSV";
}

nlohmann::json inspect_data(const std::string& name_or_path, const InspectOptions& o) {
  nlohmann::json out;
  out["source"] = name_or_path;
  if (is_table_path(name_or_path)) {
    out["format"] = "csv";
    const CsvTable table = read_csv(name_or_path);
    out["csv"] = csv_report(table);
    if (!o.target.empty()) {
      TableSchema schema;
      const Dataset d = csv_to_dataset(table, o.target, {}, &schema);
      out["splits"]["all"] = data_report(d, &schema);
    }
    return out;
  }
  const DatasetSplits s = load_dataset(name_or_path, {.target = o.target, .resize = o.resize});
  out["format"] = is_dataset_name(name_or_path) ? "registered dataset" : "path";
  out["splits"]["train"] = data_report(s.train);
  if (s.validation) out["splits"]["validation"] = data_report(*s.validation);
  if (s.test) out["splits"]["test"] = data_report(*s.test);
  out["split_sizes"] = describe_splits(s);
  if (!s.test)
    out["note"] = "no test split of its own: training holds out 20% (stratified, seeded) as the test split";
  return out;
}

std::string format_inspection(const nlohmann::json& r) {
  // fmt rather than operator+ chains: GCC 12 reports a false -Wrestrict on those.
  std::string text = fmt::format("source: {} ({})\n", r.value("source", std::string()),
                                 r.value("format", std::string()));
  if (r.contains("split_sizes")) text += fmt::format("splits: {}\n", r["split_sizes"].get<std::string>());
  if (r.contains("note")) text += fmt::format("note: {}\n", r["note"].get<std::string>());
  if (r.contains("csv")) text += fmt::format("\n{}", format_report(r["csv"]));
  if (r.contains("splits"))
    for (const char* name : {"all", "train", "validation", "test"})
      if (r["splits"].contains(name)) text += fmt::format("\n== {}\n{}", name, format_report(r["splits"][name]));
  return text;
}

}  // namespace deft::data
