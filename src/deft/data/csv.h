// CSV tables: read delimited text into typed columns, then turn a table into a Dataset.
//
// The reader detects the delimiter (',' ';' or tab), a header row, the decimal
// mark and, per column, numeric vs categorical; it handles RFC 4180 quoting,
// CRLF, a UTF-8 BOM and missing-value spellings. It streams the file (two passes:
// one to infer types and check the shape, one to fill columns), so the memory
// used is the finished columns: 8 bytes per numeric cell, 4 per categorical cell.
//
//   CsvTable t = read_csv("iris.csv");                   // everything detected
//   std::cout << format_report(csv_report(t));            // what was inferred (report.h)
//   TableSchema schema;                                   // keep it: preprocessing needs it
//   Dataset d = csv_to_dataset(t, "species", {}, &schema);
//   Preprocessor pre({}, schema);                         // preprocess.h
//   // Inference on a new file, encoded the way the model was trained:
//   Dataset x = csv_to_features(read_csv("new.csv", schema.csv_options()), schema);
//
// Every problem with the file throws deft::InputError naming the file and the
// line, e.g. "data.csv:17: expected 5 fields, got 4" or
// "data.csv:9: field \"age\": expected a number, got \"abc\"".
//
// Conventions (decisions, documented once here):
//  - Lines are counted from 1 and "\n", "\r\n" and a lone "\r" each end a line.
//    An error names the line where the offending record starts.
//  - Blank lines (nothing but spaces/tabs) are skipped, wherever they are.
//  - Unquoted fields are trimmed of surrounding spaces and tabs (spaces only when
//    tab is the delimiter); quoted fields are kept exactly. A quote opens a quoted
//    field only as the field's first character (after any spaces); elsewhere it is
//    an ordinary character. After a closing quote only spaces may come before the
//    delimiter. A quoted empty field ("") is missing like an empty one.
//  - Text must be UTF-8 (a leading BOM is dropped); other bytes are an error that
//    says how to convert the file.
//  - A number is a finite decimal number (sign, digits, '.', exponent), e.g. "-1.5e3";
//    "inf", hex and thousands separators are text. With decimal ',' ("3,14"),
//    '.' is not accepted.
//  - Delimiter detection: the candidate that splits most of the first 100 records
//    (first 64 KiB) into the same number (>= 2) of fields; ties go to tab, then
//    ';' (whose files often write "3,14"), then ','. No candidate: one column.
//  - Header detection (HeaderMode::Auto): the first row is a header when each of
//    its fields is not a missing-value spelling, not a number, distinct from the
//    others, and does not reappear in its column among the next 100 rows (e.g.
//    "name,age" over "bob,23"; but not "red,blue" over "red,green"). An empty
//    name is allowed only over a column that is empty there too (a trailing ',').
//    Without a header the columns are named col0, col1, ...; empty or duplicate
//    header names become colN / "name.1".
//  - Column types: a column is numeric when every non-missing value is a number
//    (a column with no values at all is numeric, all NaN), else categorical.
//    CsvOptions::column_types forces a type by column name.
//  - Categories and class names are sorted naturally ("item2" < "item10").
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "deft/data/dataset.h"

namespace deft::data {

enum class ColumnType { Auto, Numeric, Categorical };
const char* column_type_name(ColumnType t);  // "auto", "numeric", "categorical"

enum class HeaderMode { Auto, Present, Absent };

// The default missing-value spellings: "", NA, N/A, n/a, NaN, nan, ?, null, NULL.
std::vector<std::string> default_missing_values();

struct CsvOptions {
  char delimiter = 0;  // 0: detect among ',' ';' '\t' from the first lines; or one of those, or '|'
  HeaderMode header = HeaderMode::Auto;
  // 0: '.' unless the delimiter is not ',' and the numbers of the first lines are
  // all written with a comma ("3,14"). Otherwise '.' or ','.
  char decimal = 0;
  // Values (after trimming) that mean "missing"; compared exactly.
  std::vector<std::string> missing_values = default_missing_values();
  // Force a column's type by name (generated names col0.. when there is no
  // header). A non-number in a column forced numeric is an error naming the line.
  std::map<std::string, ColumnType> column_types;
};

struct CsvColumn {
  std::string name;
  ColumnType type = ColumnType::Numeric;  // Numeric or Categorical, never Auto
  std::vector<double> values;             // numeric: one per row, NaN when missing
  std::vector<int32_t> codes;             // categorical: index into categories, -1 when missing
  std::vector<std::string> categories;    // categorical: the distinct values, natural order
  int64_t missing = 0;                    // rows with a missing value
  // Numeric columns, over the non-missing values (NaN when there are none).
  double min = 0, max = 0, mean = 0;
  bool integral = false;  // numeric: every non-missing value is a whole number

  bool is_numeric() const { return type == ColumnType::Numeric; }
  bool is_missing(int64_t row) const;
  // The value of `row` as text: the category, or the number (shortest form); "" if missing.
  std::string text(int64_t row) const;
};

struct CsvTable {
  std::string path;  // the file (or the name given to parse_csv), used in messages
  char delimiter = ',';
  char decimal = '.';
  bool has_header = false;
  std::vector<CsvColumn> columns;
  std::vector<int64_t> row_lines;  // the line where each data row starts

  int64_t num_rows() const { return static_cast<int64_t>(row_lines.size()); }
  int64_t num_columns() const { return static_cast<int64_t>(columns.size()); }
  int64_t column_index(const std::string& name) const;  // -1 when absent
  // The column called `name`; InputError listing the available names when absent.
  const CsvColumn& column(const std::string& name) const;
  std::vector<std::string> column_names() const;
};

// Reads a file. InputError when it cannot be opened or is not a valid table.
CsvTable read_csv(const std::string& path, const CsvOptions& opts = {});
// The same, on text in memory; `name` stands for the path in messages.
CsvTable parse_csv(std::string_view text, const std::string& name, const CsvOptions& opts = {});

// What was inferred, as JSON: {"source", "rows", "delimiter", "decimal", "header",
// "columns": [{"name", "type", "missing", and "distinct" (categorical) or
// "min", "max", "mean" (numeric; null when all missing)}]}. report.h's
// format_report() prints it.
nlohmann::json csv_report(const CsvTable& t);

// Natural order: runs of digits compare as numbers ("a2" < "a10"), the rest bytewise;
// ties (e.g. "a01" vs "a1") broken bytewise. A strict weak order.
bool natural_less(std::string_view a, std::string_view b);

// ---------------------------------------------------------------------------
// Table -> Dataset

// One feature column of a Dataset made from a table: how its float values are coded.
struct FeatureColumn {
  std::string name;
  ColumnType type = ColumnType::Numeric;  // Numeric or Categorical
  // Categorical: the feature value v means categories[v]; NaN means missing, and
  // -1 (only from csv_to_features) a value the schema has never seen.
  std::vector<std::string> categories;
};

// The side structure that goes with a Dataset made from a table (Dataset itself
// has no room for it): which feature columns are categorical codes and what the
// codes mean, the target and its classes. The Preprocessor needs it to encode
// categoricals and stores it, so a saved model can read new CSV files.
struct TableSchema {
  std::vector<FeatureColumn> features;  // one per Dataset feature column, same order
  std::string target;                   // "" when the data has no target
  Task task = Task::Classification;
  std::vector<std::string> class_names;  // classification: index -> name
  int64_t rows_read = 0;                 // rows in the table
  int64_t dropped_missing_target = 0;    // rows dropped because the target was missing

  bool empty() const { return features.empty(); }
  int64_t num_categorical() const;
  // Options that read a new file with these columns' types forced (so, e.g., zip
  // codes "02134" stay categories even if a new file holds only digits).
  CsvOptions csv_options(CsvOptions base = {}) const;
  nlohmann::json to_json() const;
  static TableSchema from_json(const nlohmann::json& j);  // InputError if malformed
};

struct TableOptions {
  // Unset: classification when the target is categorical, or numeric with whole
  // values only and few distinct ones: distinct <= always_classes, or distinct <=
  // max_classes and distinct <= max_class_fraction * rows. Else regression.
  // (E.g. 0/1 or 1..5 ratings -> classes; prices, ages over few rows -> regression.)
  std::optional<Task> task;
  int64_t always_classes = 10;
  int64_t max_classes = 50;
  double max_class_fraction = 0.05;
  std::vector<std::string> ignore;  // columns left out of the features (ids, leaks)
};

// Features: every column but the target and `ignore`, in table order, float32
// [N, F]: numeric values (NaN when missing) or categorical codes (see
// FeatureColumn). Labels: int64 class indices into class_names (natural order of
// the target's values, e.g. "0","1","2" or "cat","dog") or float32 targets.
// Rows whose target is missing are dropped (counted in schema->dropped_missing_target).
// InputError when the target is absent (listing the columns), has no values, or a
// value does not fit in float32.
Dataset csv_to_dataset(const CsvTable& t, const std::string& target, const TableOptions& opts = {},
                       TableSchema* schema = nullptr);

// Features of a new table laid out and coded as `schema` says (columns found by
// name, extra columns ignored; categories the schema does not know become -1).
// When the table has the schema's target, rows missing it are dropped and labels
// are filled (a class never seen in training is an error); otherwise the result
// is unlabeled with every row.
Dataset csv_to_features(const CsvTable& t, const TableSchema& schema);

}  // namespace deft::data
