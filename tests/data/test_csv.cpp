// CSV reader and table -> Dataset: real files written to a temp folder, one per
// oddity; parsed values compared with what was written; every error must be a
// deft::InputError naming the file and the line.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
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

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "deft_csv_XXXXXX").string();
    if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  // Writes `bytes` exactly (binary) and returns the file's path.
  std::string write(const std::string& name, const std::string& bytes) const {
    const fs::path p = path_ / name;
    std::ofstream f(p, std::ios::binary);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    return p.string();
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

std::vector<std::string> names_of(const CsvTable& t) { return t.column_names(); }

std::vector<std::string> texts(const CsvColumn& c) {
  std::vector<std::string> out;
  for (int64_t i = 0; i < static_cast<int64_t>(c.type == ColumnType::Numeric ? c.values.size() : c.codes.size()); ++i)
    out.push_back(c.text(i));
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------
// Reading

TEST(CsvRead, HeaderNumericAndCategoricalColumns) {
  TempDir dir;
  const auto path = dir.write("people.csv", "name,age,score\nbob,23,1.5\nalice,31,-2.25\ncarol,40,1e3\n");
  const CsvTable t = read_csv(path);
  EXPECT_EQ(t.path, path);
  EXPECT_TRUE(t.has_header);
  EXPECT_EQ(t.delimiter, ',');
  EXPECT_EQ(names_of(t), (std::vector<std::string>{"name", "age", "score"}));
  ASSERT_EQ(t.num_rows(), 3);
  const CsvColumn& name = t.column("name");
  EXPECT_EQ(name.type, ColumnType::Categorical);
  EXPECT_EQ(name.categories, (std::vector<std::string>{"alice", "bob", "carol"}));
  EXPECT_EQ(name.codes, (std::vector<int32_t>{1, 0, 2}));
  const CsvColumn& age = t.column("age");
  EXPECT_EQ(age.type, ColumnType::Numeric);
  EXPECT_EQ(age.values, (std::vector<double>{23, 31, 40}));
  EXPECT_TRUE(age.integral);
  const CsvColumn& score = t.column("score");
  EXPECT_EQ(score.values, (std::vector<double>{1.5, -2.25, 1000}));
  EXPECT_FALSE(score.integral);
  EXPECT_DOUBLE_EQ(score.min, -2.25);
  EXPECT_DOUBLE_EQ(score.max, 1000);
  EXPECT_DOUBLE_EQ(score.mean, (1.5 - 2.25 + 1000) / 3);
  EXPECT_EQ(t.row_lines, (std::vector<int64_t>{2, 3, 4}));
}

TEST(CsvRead, NoHeaderGivesGeneratedNames) {
  TempDir dir;
  const auto path = dir.write("nums.csv", "1,2,3\n4,5,6\n");
  const CsvTable t = read_csv(path);
  EXPECT_FALSE(t.has_header);
  EXPECT_EQ(names_of(t), (std::vector<std::string>{"col0", "col1", "col2"}));
  ASSERT_EQ(t.num_rows(), 2);
  EXPECT_EQ(t.columns[0].values, (std::vector<double>{1, 4}));
  EXPECT_EQ(t.columns[2].values, (std::vector<double>{3, 6}));
  EXPECT_EQ(t.row_lines, (std::vector<int64_t>{1, 2}));
}

TEST(CsvRead, NoHeaderWhenFirstRowMixesTextAndNumbers) {
  TempDir dir;
  const auto t = read_csv(dir.write("mixed.csv", "bob,23\nalice,31\n"));
  EXPECT_FALSE(t.has_header);
  EXPECT_EQ(t.num_rows(), 2);
  EXPECT_EQ(t.columns[0].categories, (std::vector<std::string>{"alice", "bob"}));
  EXPECT_EQ(t.columns[1].values, (std::vector<double>{23, 31}));
}

TEST(CsvRead, NoHeaderWhenFirstRowValueReappears) {
  TempDir dir;
  const auto t = read_csv(dir.write("cats.csv", "red,small\nred,large\nblue,small\n"));
  EXPECT_FALSE(t.has_header);
  EXPECT_EQ(t.num_rows(), 3);
  EXPECT_EQ(texts(t.columns[0]), (std::vector<std::string>{"red", "red", "blue"}));
}

TEST(CsvRead, HeaderModeCanBeForced) {
  TempDir dir;
  const auto path = dir.write("forced.csv", "1,2\n3,4\n");
  CsvOptions o;
  o.header = HeaderMode::Present;
  const auto t = read_csv(path, o);
  EXPECT_EQ(names_of(t), (std::vector<std::string>{"1", "2"}));
  EXPECT_EQ(t.num_rows(), 1);
  EXPECT_EQ(t.columns[0].values, (std::vector<double>{3}));

  const auto path2 = dir.write("forced2.csv", "a,b\nc,d\n");
  o.header = HeaderMode::Absent;
  const auto t2 = read_csv(path2, o);
  EXPECT_EQ(t2.num_rows(), 2);
  EXPECT_EQ(texts(t2.columns[0]), (std::vector<std::string>{"a", "c"}));
}

TEST(CsvRead, EmptyAndDuplicateHeaderNamesAreMadeUnique) {
  TempDir dir;
  CsvOptions o;
  o.header = HeaderMode::Present;
  const auto t = read_csv(dir.write("dup.csv", "a,a,,b\n1,2,3,4\n"), o);
  EXPECT_EQ(names_of(t), (std::vector<std::string>{"a", "a.1", "col2", "b"}));
}

TEST(CsvRead, SemicolonDelimiterWithDecimalComma) {
  TempDir dir;
  const auto t = read_csv(dir.write("eu.csv", "a;b;c\n1,5;2;x\n3,25;-4,0;y\n"));
  EXPECT_EQ(t.delimiter, ';');
  EXPECT_EQ(t.decimal, ',');
  EXPECT_TRUE(t.has_header);
  EXPECT_EQ(t.column("a").values, (std::vector<double>{1.5, 3.25}));
  EXPECT_EQ(t.column("b").values, (std::vector<double>{2, -4}));
  EXPECT_EQ(t.column("c").type, ColumnType::Categorical);
}

TEST(CsvRead, SemicolonDelimiterWithDecimalPoint) {
  TempDir dir;
  const auto t = read_csv(dir.write("semi.csv", "a;b\n1.5;2\n3.25;4\n"));
  EXPECT_EQ(t.delimiter, ';');
  EXPECT_EQ(t.decimal, '.');
  EXPECT_EQ(t.column("a").values, (std::vector<double>{1.5, 3.25}));
}

TEST(CsvRead, TabDelimiterKeepsCommasInFields) {
  TempDir dir;
  const auto t = read_csv(dir.write("t.tsv", "x\ty\n1\thello world\n2\tfoo, bar\n3\t a b \n"));
  EXPECT_EQ(t.delimiter, '\t');
  EXPECT_EQ(t.column("x").values, (std::vector<double>{1, 2, 3}));
  EXPECT_EQ(texts(t.column("y")), (std::vector<std::string>{"hello world", "foo, bar", "a b"}));
}

TEST(CsvRead, DelimiterCanBeForced) {
  TempDir dir;
  const auto path = dir.write("force.csv", "a;b,c\n1;2,3\n");
  CsvOptions o;
  o.delimiter = ',';
  o.decimal = '.';
  const auto t = read_csv(path, o);
  EXPECT_EQ(names_of(t), (std::vector<std::string>{"a;b", "c"}));
  EXPECT_EQ(texts(t.columns[0]), (std::vector<std::string>{"1;2"}));
  EXPECT_EQ(t.columns[1].values, (std::vector<double>{3}));
}

TEST(CsvRead, QuotedFieldsWithDelimitersNewlinesAndDoubledQuotes) {
  TempDir dir;
  const std::string text =
      "id,text\n"
      "1,\"a, b\"\n"
      "2,\"line1\nline2\"\n"
      "3,\"say \"\"hi\"\"\"\n"
      "4,\"\"\n"
      "5,  \" padded \"  \n"
      "6,it's 5'11\"\n";
  const auto t = read_csv(dir.write("quoted.csv", text));
  EXPECT_TRUE(t.has_header);
  ASSERT_EQ(t.num_rows(), 6);
  const CsvColumn& c = t.column("text");
  EXPECT_EQ(texts(c), (std::vector<std::string>{"a, b", "line1\nline2", "say \"hi\"", "", " padded ",
                                                "it's 5'11\""}));
  EXPECT_TRUE(c.is_missing(3));  // "" is missing
  EXPECT_EQ(c.missing, 1);
  EXPECT_EQ(t.row_lines, (std::vector<int64_t>{2, 3, 5, 6, 7, 8}));
}

TEST(CsvRead, QuotedFieldsKeepSpacesAndQuotedNumbersAreNumbers) {
  TempDir dir;
  const auto t = read_csv(dir.write("q.csv", "a,b\n\"1.5\",\" x \"\n\"2\", y\n"));
  EXPECT_EQ(t.column("a").values, (std::vector<double>{1.5, 2}));
  EXPECT_EQ(texts(t.column("b")), (std::vector<std::string>{" x ", "y"}));
}

TEST(CsvRead, CrlfLineEndings) {
  TempDir dir;
  const auto t = read_csv(dir.write("crlf.csv", "a,b\r\n1,\"x\r\ny\"\r\n3,z\r\n"));
  EXPECT_TRUE(t.has_header);
  ASSERT_EQ(t.num_rows(), 2);
  EXPECT_EQ(t.column("a").values, (std::vector<double>{1, 3}));
  EXPECT_EQ(texts(t.column("b")), (std::vector<std::string>{"x\r\ny", "z"}));
  EXPECT_EQ(t.row_lines, (std::vector<int64_t>{2, 4}));
  // No stray '\r' in the last field of a line.
  EXPECT_EQ(t.column("b").categories.back(), "z");
}

TEST(CsvRead, CrlfErrorsNameTheRightLine) {
  TempDir dir;
  const auto path = dir.write("crlf_bad.csv", "a,b\r\n1,2\r\n\r\n3\r\n");
  expect_input_error([&] { read_csv(path); }, {path + ":4: expected 2 fields, got 1"});
}

TEST(CsvRead, Utf8BomIsStrippedAndUtf8Kept) {
  TempDir dir;
  const auto t = read_csv(dir.write("bom.csv", "\xEF\xBB\xBFname,v\nZ\xC3\xBCrich,1\n\xE6\x9D\xB1\xE4\xBA\xAC,2\n"));
  EXPECT_TRUE(t.has_header);
  EXPECT_EQ(names_of(t), (std::vector<std::string>{"name", "v"}));
  EXPECT_EQ(texts(t.column("name")), (std::vector<std::string>{"Z\xC3\xBCrich", "\xE6\x9D\xB1\xE4\xBA\xAC"}));
}

TEST(CsvRead, InvalidUtf8IsAnErrorWithTheLine) {
  TempDir dir;
  const auto path = dir.write("latin1.csv", "name,v\nok,1\nZ\xFCrich,2\n");
  expect_input_error([&] { read_csv(path); }, {path + ":3:", "UTF-8"});
}

TEST(CsvRead, EveryMissingValueSpelling) {
  TempDir dir;
  const std::vector<std::string> spellings = {"", "NA", "N/A", "n/a", "NaN", "nan", "?", "null", "NULL"};
  std::string text = "v,c\n";
  for (const auto& s : spellings) text += s + "," + s + "\n";
  text += "5,red\n";
  const auto t = read_csv(dir.write("missing.csv", text));
  ASSERT_EQ(t.num_rows(), static_cast<int64_t>(spellings.size()) + 1);
  const CsvColumn& v = t.column("v");
  EXPECT_EQ(v.type, ColumnType::Numeric);
  EXPECT_EQ(v.missing, static_cast<int64_t>(spellings.size()));
  for (size_t i = 0; i < spellings.size(); ++i) EXPECT_TRUE(std::isnan(v.values[i])) << spellings[i];
  EXPECT_EQ(v.values.back(), 5);
  EXPECT_DOUBLE_EQ(v.mean, 5);
  const CsvColumn& c = t.column("c");
  EXPECT_EQ(c.type, ColumnType::Categorical);
  EXPECT_EQ(c.missing, static_cast<int64_t>(spellings.size()));
  EXPECT_EQ(c.categories, (std::vector<std::string>{"red"}));
}

TEST(CsvRead, MissingValueSpellingsAreConfigurable) {
  TempDir dir;
  CsvOptions o;
  o.missing_values = {"-"};
  const auto t = read_csv(dir.write("custom.csv", "a,b\n1,NA\n-,x\n"), o);
  EXPECT_TRUE(std::isnan(t.column("a").values[1]));
  EXPECT_EQ(t.column("a").missing, 1);
  EXPECT_EQ(t.column("b").categories, (std::vector<std::string>{"NA", "x"}));
  EXPECT_EQ(t.column("b").missing, 0);
}

TEST(CsvRead, WhitespaceIsTrimmedAndBlankLinesSkipped) {
  TempDir dir;
  const auto t = read_csv(dir.write("ws.csv", "a , b\n\n 1 , bob \n   \n2,\tann\n\n"));
  EXPECT_EQ(names_of(t), (std::vector<std::string>{"a", "b"}));
  ASSERT_EQ(t.num_rows(), 2);
  EXPECT_EQ(t.column("a").values, (std::vector<double>{1, 2}));
  EXPECT_EQ(texts(t.column("b")), (std::vector<std::string>{"bob", "ann"}));
  EXPECT_EQ(t.row_lines, (std::vector<int64_t>{3, 5}));
}

TEST(CsvRead, NumberSyntax) {
  TempDir dir;
  const auto t = read_csv(dir.write("n.csv", "a,b,c,d\n+5,-.5,1e-3,inf\n7,.25,2E2,1\n"));
  EXPECT_EQ(t.column("a").values, (std::vector<double>{5, 7}));
  EXPECT_EQ(t.column("b").values, (std::vector<double>{-0.5, 0.25}));
  EXPECT_EQ(t.column("c").values, (std::vector<double>{1e-3, 200}));
  EXPECT_EQ(t.column("d").type, ColumnType::Categorical);  // "inf" is text
}

TEST(CsvRead, TrailingDelimiterMakesAnEmptyColumn) {
  TempDir dir;
  const auto t = read_csv(dir.write("trail.csv", "a,b,\n1,2,\n3,4,\n"));
  ASSERT_EQ(t.num_columns(), 3);
  EXPECT_EQ(t.columns[2].name, "col2");
  EXPECT_EQ(t.columns[2].missing, 2);
  EXPECT_EQ(t.column("b").values, (std::vector<double>{2, 4}));
}

TEST(CsvRead, ForcedTypes) {
  TempDir dir;
  CsvOptions o;
  o.column_types["zip"] = ColumnType::Categorical;
  const auto t = read_csv(dir.write("zip.csv", "zip,v\n02134,1\n10001,2\n"), o);
  EXPECT_EQ(t.column("zip").type, ColumnType::Categorical);
  EXPECT_EQ(t.column("zip").categories, (std::vector<std::string>{"02134", "10001"}));
}

TEST(CsvRead, NonNumericInForcedNumericColumnNamesFileLineAndField) {
  TempDir dir;
  const auto path = dir.write("ages.csv", "name,age\nbob,23\nalice,abc\n");
  CsvOptions o;
  o.column_types["age"] = ColumnType::Numeric;
  expect_input_error([&] { read_csv(path, o); }, {path + ":3: field \"age\": expected a number, got \"abc\""});
  // Without forcing, the column is simply categorical.
  EXPECT_EQ(read_csv(path).column("age").type, ColumnType::Categorical);
}

TEST(CsvRead, ForcedTypeForUnknownColumnIsAnError) {
  TempDir dir;
  const auto path = dir.write("u.csv", "a,b\n1,2\n");
  CsvOptions o;
  o.column_types["nope"] = ColumnType::Numeric;
  expect_input_error([&] { read_csv(path, o); }, {path, "\"nope\"", "a, b"});
}

TEST(CsvRead, RaggedRowsNameFileAndLine) {
  TempDir dir;
  const auto short_row = dir.write("short.csv", "a,b,c\n1,2,3\n4,5\n");
  expect_input_error([&] { read_csv(short_row); }, {short_row + ":3: expected 3 fields, got 2"});
  const auto long_row = dir.write("long.csv", "a,b\n1,2\n3,4\n5,6,7\n");
  expect_input_error([&] { read_csv(long_row); }, {long_row + ":4: expected 2 fields, got 3"});
  // A quoted newline earlier moves the line count on.
  const auto after_quote = dir.write("afterq.csv", "a,b\n1,\"x\ny\"\n2\n");
  expect_input_error([&] { read_csv(after_quote); }, {after_quote + ":4: expected 2 fields, got 1"});
}

TEST(CsvRead, UnterminatedQuoteNamesTheLineWhereItStarted) {
  TempDir dir;
  const auto path = dir.write("unterminated.csv", "a,b\n1,2\n3,\"oops\n4,5\n6,7\n");
  expect_input_error([&] { read_csv(path); }, {path + ":3: unterminated quoted field"});
}

TEST(CsvRead, CharacterAfterClosingQuoteIsAnError) {
  TempDir dir;
  const auto path = dir.write("afterclose.csv", "a,b\n1,\"x\"y\n");
  expect_input_error([&] { read_csv(path); }, {path + ":2:", "closing quote"});
}

TEST(CsvRead, EmptyFileAndHeaderOnly) {
  TempDir dir;
  const auto empty = dir.write("empty.csv", "");
  expect_input_error([&] { read_csv(empty); }, {empty + ": the file is empty"});
  const auto blank = dir.write("blank.csv", "\xEF\xBB\xBF\n\r\n  \n");
  expect_input_error([&] { read_csv(blank); }, {blank + ": the file is empty"});
  const auto header = dir.write("header.csv", "a,b,c\n");
  expect_input_error([&] { read_csv(header); }, {header + ": only a header row (a, b, c), no data rows"});
}

TEST(CsvRead, MissingFileAndFolderAreInputErrors) {
  TempDir dir;
  const std::string missing = (dir.path() / "nope.csv").string();
  expect_input_error([&] { read_csv(missing); }, {missing, "cannot open"});
  expect_input_error([&] { read_csv(dir.path().string()); }, {dir.path().string(), "folder"});
}

TEST(CsvRead, ParseCsvInMemoryUsesTheName) {
  const auto t = parse_csv("x,y\n1,2\n", "mem.csv");
  EXPECT_EQ(t.path, "mem.csv");
  EXPECT_EQ(t.column("y").values, (std::vector<double>{2}));
  expect_input_error([] { parse_csv("x,y\n1\n", "mem.csv"); }, {"mem.csv:2: expected 2 fields, got 1"});
}

TEST(CsvRead, LargeFileStreamsAcrossBuffers) {
  // ~4 MB: past the 1 MiB read buffer and the 64 KiB sniffing window, with
  // quoted fields (some holding newlines) landing on every buffer boundary.
  TempDir dir;
  const int64_t n = 150000;
  std::string text = "id,value,label,note\n";
  double sum = 0;
  int64_t line = 2;
  std::vector<int64_t> expect_lines;
  for (int64_t i = 0; i < n; ++i) {
    const double v = static_cast<double>(i % 1000) * 0.5 - 7;
    sum += v;
    expect_lines.push_back(line);
    const bool multiline = i % 97 == 0;
    text += std::to_string(i) + "," + std::to_string(v) + ",\"cls" + std::to_string(i % 3) + "\"," +
            (multiline ? "\"a,\nb\"" : "plain") + "\n";
    line += multiline ? 2 : 1;
  }
  const auto path = dir.write("big.csv", text);
  const CsvTable t = read_csv(path);
  ASSERT_EQ(t.num_rows(), n);
  EXPECT_EQ(t.row_lines, expect_lines);
  double got = 0;
  for (double v : t.column("value").values) got += v;
  EXPECT_DOUBLE_EQ(got, sum);
  EXPECT_EQ(t.column("label").categories, (std::vector<std::string>{"cls0", "cls1", "cls2"}));
  EXPECT_EQ(t.column("note").categories, (std::vector<std::string>{"a,\nb", "plain"}));
  EXPECT_EQ(t.column("id").values.back(), static_cast<double>(n - 1));

  // A bad row at the very end still names its line.
  const auto bad = dir.write("big_bad.csv", text + "1,2\n");
  expect_input_error([&] { read_csv(bad); }, {bad + ":" + std::to_string(line) + ": expected 4 fields, got 2"});
}

TEST(CsvRead, ReportListsInferredTypes) {
  const auto t = parse_csv("a,b,c\n1,x,\n3,y,\n5,x,\n?,NA,\n", "r.csv");
  const auto r = csv_report(t);
  EXPECT_EQ(r["rows"], 4);
  EXPECT_EQ(r["header"], true);
  EXPECT_EQ(r["delimiter"], ",");
  ASSERT_EQ(r["columns"].size(), 3u);
  EXPECT_EQ(r["columns"][0]["name"], "a");
  EXPECT_EQ(r["columns"][0]["type"], "numeric");
  EXPECT_EQ(r["columns"][0]["missing"], 1);
  EXPECT_DOUBLE_EQ(r["columns"][0]["min"].get<double>(), 1);
  EXPECT_DOUBLE_EQ(r["columns"][0]["max"].get<double>(), 5);
  EXPECT_DOUBLE_EQ(r["columns"][0]["mean"].get<double>(), 3);
  EXPECT_EQ(r["columns"][1]["type"], "categorical");
  EXPECT_EQ(r["columns"][1]["distinct"], 2);
  EXPECT_EQ(r["columns"][1]["missing"], 1);
  EXPECT_EQ(r["columns"][2]["missing"], 4);
  EXPECT_TRUE(r["columns"][2]["mean"].is_null());
}

TEST(CsvRead, NaturalOrder) {
  EXPECT_TRUE(natural_less("item2", "item10"));
  EXPECT_FALSE(natural_less("item10", "item2"));
  EXPECT_TRUE(natural_less("a", "b"));
  EXPECT_TRUE(natural_less("a", "a1"));
  EXPECT_TRUE(natural_less("2", "10"));
  EXPECT_TRUE(natural_less("a01", "a1") != natural_less("a1", "a01"));
  EXPECT_FALSE(natural_less("x", "x"));
  std::vector<std::string> v = {"c10", "c9", "b", "c1", "a100", "a20"};
  std::sort(v.begin(), v.end(), [](const std::string& a, const std::string& b) { return natural_less(a, b); });
  EXPECT_EQ(v, (std::vector<std::string>{"a20", "a100", "b", "c1", "c9", "c10"}));
}

// ---------------------------------------------------------------------------
// Table -> Dataset

TEST(CsvDataset, CategoricalTargetGivesClassification) {
  TempDir dir;
  const auto t = read_csv(dir.write("iris.csv",
                                    "sepal,color,species\n"
                                    "5.1,red,setosa\n"
                                    "7.0,blue,versicolor\n"
                                    "6.3,,virginica\n"
                                    "4.9,red,setosa\n"));
  TableSchema s;
  const Dataset d = csv_to_dataset(t, "species", {}, &s);
  EXPECT_EQ(d.task, Task::Classification);
  EXPECT_EQ(d.class_names, (std::vector<std::string>{"setosa", "versicolor", "virginica"}));
  EXPECT_EQ(d.labels.dtype(), DType::Int64);
  EXPECT_EQ(d.labels.to_vector<int64_t>(), (std::vector<int64_t>{0, 1, 2, 0}));
  EXPECT_EQ(d.feature_names, (std::vector<std::string>{"sepal", "color"}));
  EXPECT_EQ(d.features.shape(), (Shape{4, 2}));
  const auto x = d.features.to_vector<float>();
  EXPECT_EQ(x[0], 5.1f);
  EXPECT_EQ(x[2], 7.0f);
  // color: categories blue=0, red=1; missing = NaN.
  EXPECT_EQ(x[1], 1.0f);
  EXPECT_EQ(x[3], 0.0f);
  EXPECT_TRUE(std::isnan(x[5]));
  ASSERT_EQ(s.features.size(), 2u);
  EXPECT_EQ(s.features[1].type, ColumnType::Categorical);
  EXPECT_EQ(s.features[1].categories, (std::vector<std::string>{"blue", "red"}));
  EXPECT_EQ(s.target, "species");
  EXPECT_EQ(s.rows_read, 4);
  EXPECT_EQ(s.dropped_missing_target, 0);
}

TEST(CsvDataset, FewWholeNumberTargetsGiveClassesSortedNumerically) {
  std::string text = "x,y\n";
  const int ys[] = {10, 2, 0, 2, 10, 0};
  for (int i = 0; i < 6; ++i) text += std::to_string(i) + "," + std::to_string(ys[i]) + "\n";
  const auto d = csv_to_dataset(parse_csv(text, "m.csv"), "y");
  EXPECT_EQ(d.task, Task::Classification);
  EXPECT_EQ(d.class_names, (std::vector<std::string>{"0", "2", "10"}));
  EXPECT_EQ(d.labels.to_vector<int64_t>(), (std::vector<int64_t>{2, 1, 0, 1, 2, 0}));
}

TEST(CsvDataset, ContinuousOrManyValuedTargetsGiveRegression) {
  const auto d = csv_to_dataset(parse_csv("x,price\n1,2.5\n2,3.75\n3,-1\n", "p.csv"), "price");
  EXPECT_EQ(d.task, Task::Regression);
  EXPECT_EQ(d.labels.dtype(), DType::Float32);
  EXPECT_EQ(d.labels.to_vector<float>(), (std::vector<float>{2.5f, 3.75f, -1.0f}));
  EXPECT_TRUE(d.class_names.empty());

  // Whole numbers, but 30 distinct over 40 rows: more than 10 and more than 5% of rows.
  std::string text = "x,age\n";
  for (int i = 0; i < 40; ++i) text += std::to_string(i) + "," + std::to_string(20 + i % 30) + "\n";
  EXPECT_EQ(csv_to_dataset(parse_csv(text, "a.csv"), "age").task, Task::Regression);
  // 12 distinct over 1000 rows (<= 5%): classes.
  std::string text2 = "x,k\n";
  for (int i = 0; i < 1000; ++i) text2 += std::to_string(i) + "," + std::to_string(i % 12) + "\n";
  EXPECT_EQ(csv_to_dataset(parse_csv(text2, "k.csv"), "k").task, Task::Classification);
  // The task can be forced.
  TableOptions o;
  o.task = Task::Regression;
  EXPECT_EQ(csv_to_dataset(parse_csv(text2, "k.csv"), "k", o).task, Task::Regression);
}

TEST(CsvDataset, RowsWithMissingTargetAreDroppedAndCounted) {
  TableSchema s;
  const auto d = csv_to_dataset(parse_csv("x,y\n1,a\n2,\n3,b\n4,NA\n5,a\n", "m.csv"), "y", {}, &s);
  EXPECT_EQ(d.size(), 3);
  EXPECT_EQ(d.features.to_vector<float>(), (std::vector<float>{1, 3, 5}));
  EXPECT_EQ(d.labels.to_vector<int64_t>(), (std::vector<int64_t>{0, 1, 0}));
  EXPECT_EQ(s.dropped_missing_target, 2);
  EXPECT_EQ(s.rows_read, 5);
}

TEST(CsvDataset, Errors) {
  const auto t = parse_csv("a,b,label\n1,2,x\n3,4,y\n", "e.csv");
  expect_input_error([&] { csv_to_dataset(t, "target"); }, {"e.csv", "\"target\"", "a, b, label"});
  TableOptions reg;
  reg.task = Task::Regression;
  expect_input_error([&] { csv_to_dataset(t, "label", reg); }, {"e.csv:2:", "categorical"});
  TableOptions ig;
  ig.ignore = {"zzz"};
  expect_input_error([&] { csv_to_dataset(t, "label", ig); }, {"e.csv", "\"zzz\""});
  ig.ignore = {"a", "b"};
  expect_input_error([&] { csv_to_dataset(t, "label", ig); }, {"e.csv", "no feature columns"});
  expect_input_error([] { csv_to_dataset(parse_csv("a,b\n1,\n2,\n", "n.csv"), "b"); }, {"n.csv", "no values"});
  expect_input_error([] { csv_to_dataset(parse_csv("a,b\n1,0\n1e300,1\n", "big.csv"), "b"); },
                     {"big.csv:3: field \"a\"", "float32"});
}

TEST(CsvDataset, IgnoredColumnsAreLeftOut) {
  TableOptions o;
  o.ignore = {"id"};
  const auto d = csv_to_dataset(parse_csv("id,x,y\n100,1.5,a\n101,2.5,b\n", "i.csv"), "y", o);
  EXPECT_EQ(d.feature_names, (std::vector<std::string>{"x"}));
  EXPECT_EQ(d.features.to_vector<float>(), (std::vector<float>{1.5f, 2.5f}));
}

TEST(CsvDataset, NewFileEncodedWithTheTrainingSchema) {
  TempDir dir;
  TableSchema s;
  csv_to_dataset(read_csv(dir.write("train.csv", "x,color,y\n1,red,no\n2,blue,yes\n3,green,no\n")), "y", {}, &s);
  // Columns reordered, an extra column, an unseen category, a missing value, no target.
  const auto path = dir.write("new.csv", "extra,color,x\n9,blue,10\n9,purple,11\n9,,12\n");
  const Dataset d = csv_to_features(read_csv(path, s.csv_options()), s);
  EXPECT_FALSE(d.labels.defined());
  EXPECT_EQ(d.feature_names, (std::vector<std::string>{"x", "color"}));
  const auto x = d.features.to_vector<float>();
  ASSERT_EQ(x.size(), 6u);
  EXPECT_EQ(x[0], 10.0f);
  EXPECT_EQ(x[1], 0.0f);   // blue
  EXPECT_EQ(x[3], -1.0f);  // purple: unknown to the schema
  EXPECT_TRUE(std::isnan(x[5]));
  // With the target present, labels come out in the training classes.
  const auto with_y = dir.write("eval.csv", "x,color,y\n5,red,yes\n6,red,\n7,blue,no\n");
  const Dataset e = csv_to_features(read_csv(with_y, s.csv_options()), s);
  EXPECT_EQ(e.size(), 2);
  EXPECT_EQ(e.labels.to_vector<int64_t>(), (std::vector<int64_t>{1, 0}));

  const auto missing_col = dir.write("nocol.csv", "color\nred\n");
  expect_input_error([&] { csv_to_features(read_csv(missing_col), s); }, {missing_col, "trained with: x;", "the file has: color"});
  const auto bad_class = dir.write("badclass.csv", "x,color,y\n5,red,maybe\n");
  expect_input_error([&] { csv_to_features(read_csv(bad_class), s); }, {bad_class + ":2:", "\"maybe\""});
  const auto bad_num = dir.write("badnum.csv", "x,color\n5,red\nfive,red\n");
  expect_input_error([&] { csv_to_features(read_csv(bad_num), s); },
                     {bad_num + ":3: field \"x\": expected a number, got \"five\""});
  expect_input_error([&] { read_csv(bad_num, s.csv_options()); },
                     {bad_num + ":3: field \"x\": expected a number, got \"five\""});
}

TEST(CsvDataset, SchemaJsonRoundTrip) {
  TableSchema s;
  csv_to_dataset(parse_csv("x,c,y\n1,a,0\n2,b,1\n", "s.csv"), "y", {}, &s);
  const TableSchema r = TableSchema::from_json(nlohmann::json::parse(s.to_json().dump()));
  EXPECT_EQ(r.to_json(), s.to_json());
  ASSERT_EQ(r.features.size(), 2u);
  EXPECT_EQ(r.features[1].categories, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(r.class_names, (std::vector<std::string>{"0", "1"}));
  expect_input_error([] { TableSchema::from_json(nlohmann::json{{"features", 3}}); }, {"table schema"});
}

// A small, deterministic stand-in for fuzz/fuzz_csv.cpp that runs in every test
// run: mutated CSV text may only ever raise deft::InputError, never crash or
// throw anything else, through reading, table -> Dataset and preprocessing.
TEST(CsvRead, MutatedInputsOnlyEverRaiseInputError) {
  const std::vector<std::string> seeds = {
      "name,age,score\nbob,23,1.5\nalice,NA,2\n",
      "a;b;c\n1,5;2;x\n3,25;-4,0;y\n",
      "id,text\n1,\"a, b\"\n2,\"line1\nline2\"\n3,\"say \"\"hi\"\"\"\n",
      "x\ty\r\n1\tred\r\n2\t\r\n2\tblue\r\n",
      "\xEF\xBB\xBF" "c,x,y\nred,1,0\nblue,?,1\nred,3,0\nred,3,0\n",
  };
  const std::string alphabet = std::string(",;\t\"\n\r a1.-eNA?9") + std::string("\xEF\xBB\xBF\xC3\xFF\0", 6);
  std::mt19937 rng(42);
  int parsed = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    std::string text = seeds[rng() % seeds.size()];
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      const size_t pos = text.empty() ? 0 : rng() % text.size();
      const char ch = alphabet[rng() % alphabet.size()];
      switch (rng() % 3) {
        case 0: if (!text.empty()) text[pos] = ch; break;
        case 1: text.insert(text.begin() + static_cast<std::ptrdiff_t>(pos), ch); break;
        default: if (!text.empty()) text.erase(pos, 1); break;
      }
    }
    try {
      const CsvTable t = parse_csv(text, "mutant.csv");
      ++parsed;
      TableSchema schema;
      const Dataset d = csv_to_dataset(t, t.columns.back().name, {}, &schema);
      Preprocessor p(PreprocessOptions{}, schema);
      const Dataset out = p.fit_transform(d);
      const Preprocessor q = Preprocessor::from_json(nlohmann::json::parse(p.to_json().dump()));
      ASSERT_EQ(q.transform(d).features.shape(), p.transform(d).features.shape()) << text;
    } catch (const InputError& e) {
      const std::string msg = e.what();
      ASSERT_TRUE(msg.rfind("mutant.csv", 0) == 0 || msg.rfind("preprocessor:", 0) == 0)
          << "error names neither the file nor the step: " << msg;
    }
  }
  EXPECT_GT(parsed, 500);  // the mutations are small: most inputs still parse
}
