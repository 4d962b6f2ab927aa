// libFuzzer target for the CSV reader and everything a parsed table feeds:
// table -> Dataset (last column as the target), the data report, the
// preprocessor (fit, transform, JSON round trip) and csv_to_features.
// Only deft::InputError (bad input, reported to the user) may escape deft;
// anything else -- a crash, a sanitizer report, another exception -- is a bug.
//
// The first byte picks reader options (delimiter, header mode, decimal mark,
// preprocessing choices); the rest is the file.
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -fopenmp -Isrc \
//     -I<build>/generated fuzz/fuzz_csv.cpp src/deft/data/{csv,dataset,preprocess,report}.cpp \
//     src/deft/tensor/*.cpp -ldnnl -lfmt -lz -o /tmp/fuzz_csv
//   /tmp/fuzz_csv -max_total_time=60
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "deft/data/csv.h"
#include "deft/data/preprocess.h"
#include "deft/data/report.h"
#include "deft/tensor/parallel.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  deft::set_num_threads(1);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace deft::data;
  if (size == 0) return 0;
  const uint8_t flags = data[0];
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);

  CsvOptions opts;
  const char delimiters[] = {0, ',', ';', '\t'};
  opts.delimiter = delimiters[flags & 3];
  opts.header = static_cast<HeaderMode>((flags >> 2) % 3);
  if (flags & 0x10) opts.decimal = opts.delimiter == ',' ? '.' : ',';

  try {
    const CsvTable t = parse_csv(text, "fuzz.csv", opts);
    (void)csv_report(t).dump();
    (void)format_report(csv_report(t));
    if (t.columns.empty()) return 0;

    TableSchema schema;
    TableOptions topts;
    if (flags & 0x20) topts.task = Task::Classification;
    const Dataset d = csv_to_dataset(t, t.columns.back().name, topts, &schema);
    const auto report = data_report(d, &schema);
    (void)report.dump();
    (void)format_report(report);

    PreprocessOptions popts;
    if (flags & 0x40) {
      popts.missing = MissingPolicy::DropRows;
      popts.drop_duplicates = true;
      popts.encoding = Encoding::Ordinal;
    }
    if (flags & 0x80) {
      popts.clip_outliers = true;
      popts.scaling = Scaling::MinMax;
      popts.max_categories = 2;
    }
    Preprocessor pre(popts, schema);
    const Dataset tr = pre.fit_transform(d);
    const Preprocessor again = Preprocessor::from_json(nlohmann::json::parse(pre.to_json().dump()));
    const Dataset x = csv_to_features(t, again.schema());
    (void)again.transform(x);
    (void)tr.size();
  } catch (const deft::InputError&) {
    // Bad input, reported properly.
  }
  return 0;
}
