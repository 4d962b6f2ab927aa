#include "deft/data/csv.h"

#include "deft/data/text.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <numeric>
#include <unordered_map>
#include <unordered_set>

#include <fmt/format.h>

#include "deft/tensor/error.h"

namespace deft::data {

namespace {

constexpr size_t kSniffBytes = 64 * 1024;  // text looked at for delimiter/header/decimal detection
constexpr size_t kSniffRecords = 100;
constexpr size_t kFileBuffer = 1 << 20;

const char* task_str(Task t) { return t == Task::Classification ? "classification" : "regression"; }

// ----------------------------------------------------------------------------
// Small text helpers

bool is_space(char c, char delim) { return c == ' ' || (c == '\t' && delim != '\t'); }

void trim_in_place(std::string& s, char delim) {
  size_t b = 0, e = s.size();
  while (b < e && is_space(s[b], delim)) ++b;
  while (e > b && is_space(s[e - 1], delim)) --e;
  if (b == 0 && e == s.size()) return;
  s.assign(s, b, e - b);
}

// Length of the valid UTF-8 prefix of s (s.size() when all of it is valid).
// Length of the longest valid UTF-8 prefix (the validator is shared with the text reader).
size_t utf8_valid_prefix(std::string_view s) {
  const size_t bad = find_invalid_utf8(s);
  return bad == std::string_view::npos ? s.size() : bad;
}

bool is_ascii(std::string_view s) {
  for (char c : s)
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  return true;
}

// A value quoted for an error message: at most ~40 bytes, cut on a UTF-8 boundary,
// control characters escaped, so the message is one readable, valid UTF-8 line.
std::string quote_value(std::string_view s) {
  std::string out = "\"";
  const size_t valid = utf8_valid_prefix(s);
  size_t i = 0;
  while (i < s.size()) {
    if (out.size() > 40) {
      out += "...";
      break;
    }
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (i >= valid || c < 0x20 || c == 0x7F) {
      out += fmt::format("\\x{:02x}", c);
      ++i;
    } else if (c == '"') {
      out += "\\\"";
      ++i;
    } else {
      size_t len = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
      out.append(s.substr(i, len));
      i += len;
    }
  }
  out += '"';
  return out;
}

std::string join_names(const std::vector<std::string>& names, size_t limit = 40) {
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) {
    if (i == limit) {
      out += fmt::format(", ... ({} in all)", names.size());
      break;
    }
    if (i) out += ", ";
    out += names[i];
  }
  return out;
}

// A finite decimal number; `decimal` is '.' or ','.
bool parse_number(std::string_view s, char decimal, double* out) {
  if (s.empty() || s.size() > 400) return false;
  size_t i = 0;
  if (s[0] == '+' || s[0] == '-') i = 1;
  if (i >= s.size()) return false;
  const char first = s[i];
  if (!((first >= '0' && first <= '9') || first == decimal)) return false;
  char buf[402];
  size_t n = 0;
  if (s[0] == '-') buf[n++] = '-';
  for (size_t k = i; k < s.size(); ++k) {
    char c = s[k];
    if (decimal == ',') {
      if (c == '.') return false;
      if (c == ',') c = '.';
    }
    buf[n++] = c;
  }
  buf[n] = '\0';
  double v = 0;
  const auto res = std::from_chars(buf, buf + n, v, std::chars_format::general);
  if (res.ptr != buf + n) return false;
  if (res.ec == std::errc::result_out_of_range) {
    // Underflow (e.g. 1e-400) is a number; overflow is not.
    errno = 0;
    v = std::strtod(buf, nullptr);
  } else if (res.ec != std::errc()) {
    return false;
  }
  if (!std::isfinite(v)) return false;
  if (out) *out = v;
  return true;
}

bool is_missing_value(std::string_view s, const std::vector<std::string>& missing) {
  for (const auto& m : missing)
    if (s == m) return true;
  return false;
}

// Shortest text for a number: whole numbers without a fraction ("3", not "3.0").
std::string number_text(double v) {
  if (std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 1e15)
    return fmt::format("{}", static_cast<long long>(v));
  return fmt::format("{}", v);
}

// ----------------------------------------------------------------------------
// Records

struct Record {
  std::vector<std::string> fields;
  std::vector<uint8_t> quoted;
  size_t n = 0;
  int64_t line = 0;

  std::string& add(bool q) {
    if (n == fields.size()) {
      fields.emplace_back();
      quoted.push_back(0);
    }
    fields[n].clear();
    quoted[n] = q;
    return fields[n++];
  }
};

// Splits text into records, reading a file in chunks or a string in memory.
class RecordReader {
 public:
  RecordReader(std::string_view text, const std::string& name, char delim)
      : name_(name), delim_(delim), cur_(text.data()), end_(text.data() + text.size()) {
    skip_bom();
  }
  RecordReader(std::FILE* f, const std::string& name, char delim) : name_(name), delim_(delim), file_(f) {
    buffer_.resize(kFileBuffer);
    refill();
    skip_bom();
  }

  // The next non-blank record; false at the end of the text.
  bool next(Record& r) {
    for (;;) {
      if (peek() == EOF) return false;
      r.n = 0;
      r.line = line_;
      read_record(r);
      if (r.n == 1 && !r.quoted[0] && r.fields[0].empty()) continue;  // blank line
      return true;
    }
  }

 private:
  void skip_bom() {
    if (end_ - cur_ >= 3 && std::memcmp(cur_, "\xEF\xBB\xBF", 3) == 0) cur_ += 3;
  }

  bool refill() {
    if (!file_) return false;
    const size_t got = std::fread(buffer_.data(), 1, buffer_.size(), file_);
    if (got == 0) {
      if (std::ferror(file_)) fail<>("{}: read error: {}", name_, std::strerror(errno));
      return false;
    }
    cur_ = buffer_.data();
    end_ = cur_ + got;
    return true;
  }

  int peek() {
    if (cur_ == end_ && !refill()) return EOF;
    return static_cast<unsigned char>(*cur_);
  }
  int get() {
    const int c = peek();
    if (c != EOF) ++cur_;
    return c;
  }
  // After '\r' or '\n' was peeked: consume one line break.
  void consume_newline() {
    const int c = get();
    if (c == '\r' && peek() == '\n') get();
    ++line_;
  }

  void read_record(Record& r) {
    for (;;) {
      int c;
      while ((c = peek()) != EOF && is_space(static_cast<char>(c), delim_)) get();  // trimmed anyway
      if (c == '"') {
        std::string& f = r.add(true);
        const int64_t start_line = line_;
        get();
        for (;;) {
          c = get();
          if (c == EOF)
            fail<>("{}:{}: unterminated quoted field: the quote opened on this line is never closed", name_,
                   start_line);
          if (c == '"') {
            if (peek() == '"') {
              get();
              f.push_back('"');
              continue;
            }
            break;
          }
          if (c == '\n') {
            ++line_;
          } else if (c == '\r' && peek() != '\n') {
            ++line_;
          }
          f.push_back(static_cast<char>(c));
        }
        while ((c = peek()) != EOF && is_space(static_cast<char>(c), delim_)) get();
        if (c == EOF) return;
        if (c == delim_) {
          get();
          continue;
        }
        if (c == '\n' || c == '\r') {
          consume_newline();
          return;
        }
        fail<>("{}:{}: field {}: unexpected {} after a closing quote (write a quote inside a quoted field as \"\")",
               name_, line_, r.n, quote_value(std::string(1, static_cast<char>(c))));
      }
      std::string& f = r.add(false);
      for (;;) {
        if (cur_ == end_ && !refill()) {
          trim_in_place(f, delim_);
          return;
        }
        const char* p = cur_;
        while (p < end_ && *p != delim_ && *p != '\n' && *p != '\r') ++p;
        f.append(cur_, p);
        cur_ = p;
        if (p == end_) continue;
        break;
      }
      trim_in_place(f, delim_);
      c = peek();
      if (c == delim_) {
        get();
        continue;
      }
      consume_newline();
      return;
    }
  }

  const std::string& name_;
  char delim_;
  std::FILE* file_ = nullptr;
  std::vector<char> buffer_;
  const char* cur_ = nullptr;
  const char* end_ = nullptr;
  int64_t line_ = 1;
};

// Where the text comes from: a file (opened afresh for each pass) or memory.
class TextSource {
 public:
  TextSource(std::string_view text, std::string name) : text_(text), name_(std::move(name)), in_memory_(true) {}
  explicit TextSource(std::string path) : name_(std::move(path)), in_memory_(false) {
    std::error_code ec;
    if (std::filesystem::is_directory(name_, ec)) fail<>("{}: is a folder, not a CSV file", name_);
  }
  ~TextSource() { close(); }
  TextSource(const TextSource&) = delete;
  TextSource& operator=(const TextSource&) = delete;

  const std::string& name() const { return name_; }

  std::unique_ptr<RecordReader> open(char delim) {
    if (in_memory_) return std::make_unique<RecordReader>(text_, name_, delim);
    close();
    file_ = std::fopen(name_.c_str(), "rb");
    if (!file_) fail<>("{}: cannot open: {}", name_, std::strerror(errno));
    return std::make_unique<RecordReader>(file_, name_, delim);
  }

  // The first bytes (BOM included; the reader drops it) and whether that is all of it.
  std::string_view sample(bool* complete) {
    if (in_memory_) {
      *complete = text_.size() <= kSniffBytes;
      return text_.substr(0, kSniffBytes);
    }
    std::FILE* f = std::fopen(name_.c_str(), "rb");
    if (!f) fail<>("{}: cannot open: {}", name_, std::strerror(errno));
    sample_.resize(kSniffBytes + 1);
    const size_t got = std::fread(sample_.data(), 1, sample_.size(), f);
    const bool err = std::ferror(f);
    std::fclose(f);
    if (err) fail<>("{}: read error", name_);
    *complete = got <= kSniffBytes;
    sample_.resize(std::min(got, kSniffBytes));
    return sample_;
  }

 private:
  void close() {
    if (file_) std::fclose(file_);
    file_ = nullptr;
  }

  std::string_view text_;
  std::string name_;
  bool in_memory_;
  std::FILE* file_ = nullptr;
  std::string sample_;
};

// ----------------------------------------------------------------------------
// Sniffing

std::vector<std::vector<std::string>> sample_records(std::string_view sample, bool complete,
                                                     const std::string& name, char delim) {
  std::vector<std::vector<std::string>> out;
  RecordReader reader(sample, name, delim);
  Record r;
  try {
    while (out.size() <= kSniffRecords && reader.next(r))
      out.emplace_back(r.fields.begin(), r.fields.begin() + static_cast<std::ptrdiff_t>(r.n));
  } catch (const InputError&) {
    // A quote or record cut by the end of the sample, or a real error the full
    // pass will report with its line: judge on the records read so far.
    return out;
  }
  if (!complete && !out.empty()) out.pop_back();  // may be cut short
  return out;
}

char detect_delimiter(std::string_view sample, bool complete, const std::string& name) {
  // Ties in consistency go to tab, then ';' (files with ';' often hold "3,14").
  const char candidates[] = {'\t', ';', ','};
  char best = ',';
  double best_frac = -1;
  for (char d : candidates) {
    const auto recs = sample_records(sample, complete, name, d);
    if (recs.empty()) continue;
    std::map<size_t, size_t> counts;
    for (const auto& r : recs) ++counts[r.size()];
    size_t mode = 0, mode_n = 0;
    for (const auto& [fields, n] : counts)
      if (n > mode_n || (n == mode_n && fields > mode)) mode = fields, mode_n = n;
    if (mode < 2) continue;
    const double frac = static_cast<double>(mode_n) / static_cast<double>(recs.size());
    if (frac > best_frac + 1e-12) best = d, best_frac = frac;
  }
  return best;
}

char detect_decimal(const std::vector<std::vector<std::string>>& recs) {
  size_t dot = 0, comma = 0;
  for (const auto& r : recs)
    for (const auto& f : r) {
      if (f.find('.') != std::string::npos && parse_number(f, '.', nullptr)) ++dot;
      if (f.find(',') != std::string::npos && parse_number(f, ',', nullptr)) ++comma;
    }
  return comma > 0 && dot == 0 ? ',' : '.';
}

bool detect_header(const std::vector<std::vector<std::string>>& recs, const CsvOptions& opts, char decimal) {
  if (recs.empty()) return false;
  const auto& first = recs[0];
  std::unordered_set<std::string> seen;
  for (size_t j = 0; j < first.size(); ++j) {
    const std::string& f = first[j];
    if (f.empty()) {
      // An unnamed column (e.g. after a trailing delimiter) is fine if it is empty below too.
      for (size_t i = 1; i < recs.size(); ++i)
        if (j < recs[i].size() && !is_missing_value(recs[i][j], opts.missing_values)) return false;
      if (first.size() == 1) return false;
      continue;
    }
    if (is_missing_value(f, opts.missing_values) || parse_number(f, decimal, nullptr)) return false;
    if (!seen.insert(f).second) return false;
  }
  if (seen.empty()) return false;
  for (size_t i = 1; i < recs.size(); ++i)
    for (size_t j = 0; j < std::min(first.size(), recs[i].size()); ++j)
      if (!first[j].empty() && recs[i][j] == first[j]) return false;
  return true;
}

// ----------------------------------------------------------------------------
// The two passes

CsvTable parse(TextSource& src, const CsvOptions& opts) {
  const std::string& name = src.name();
  DEFT_CHECK(opts.delimiter == 0 || opts.delimiter == ',' || opts.delimiter == ';' || opts.delimiter == '\t' ||
                 opts.delimiter == '|',
             "{}: unsupported delimiter {}; use ',', ';', tab or '|'", name, quote_value(std::string(1, opts.delimiter)));
  DEFT_CHECK(opts.decimal == 0 || opts.decimal == '.' || opts.decimal == ',', "{}: decimal mark must be '.' or ','",
             name);

  CsvTable t;
  t.path = name;
  bool complete = false;
  const std::string_view sample = src.sample(&complete);
  t.delimiter = opts.delimiter ? opts.delimiter : detect_delimiter(sample, complete, name);
  const auto recs = sample_records(sample, complete, name, t.delimiter);
  t.decimal = opts.decimal ? opts.decimal : (t.delimiter == ',' ? '.' : detect_decimal(recs));
  DEFT_CHECK(!(t.decimal == ',' && t.delimiter == ','), "{}: the decimal mark and the delimiter are both ','", name);
  switch (opts.header) {
    case HeaderMode::Present: t.has_header = true; break;
    case HeaderMode::Absent: t.has_header = false; break;
    case HeaderMode::Auto: t.has_header = detect_header(recs, opts, t.decimal); break;
  }

  // Pass 1: shape, names, UTF-8, which columns hold only numbers.
  auto reader = src.open(t.delimiter);
  Record r;
  if (!reader->next(r)) fail<>("{}: the file is empty (no rows)", name);
  const size_t ncols = r.n;
  auto check_utf8 = [&](const Record& rec) {
    for (size_t j = 0; j < rec.n; ++j) {
      const std::string& f = rec.fields[j];
      if (is_ascii(f)) continue;
      const size_t ok = utf8_valid_prefix(f);
      if (ok != f.size())
        fail<>("{}:{}: field {} is not valid UTF-8 (byte 0x{:02x}); deft reads UTF-8 text: convert the file, e.g. "
               "iconv -f latin1 -t utf-8",
               name, rec.line, j + 1, static_cast<unsigned char>(f[ok]));
    }
  };
  std::vector<std::string> names(ncols);
  bool have_row = true;
  if (t.has_header) {
    check_utf8(r);
    std::unordered_set<std::string> used;
    for (size_t j = 0; j < ncols; ++j) {
      std::string n = r.fields[j];
      if (n.empty()) n = fmt::format("col{}", j);
      if (used.count(n)) {
        int k = 1;
        while (used.count(fmt::format("{}.{}", n, k))) ++k;
        n = fmt::format("{}.{}", n, k);
      }
      used.insert(n);
      names[j] = n;
    }
    have_row = reader->next(r);
    if (!have_row) {
      std::vector<std::string> shown(names.begin(), names.end());
      fail<>("{}: only a header row ({}), no data rows", name, join_names(shown, 10));
    }
  } else {
    for (size_t j = 0; j < ncols; ++j) names[j] = fmt::format("col{}", j);
  }

  std::vector<ColumnType> forced(ncols, ColumnType::Auto);
  for (const auto& [col, type] : opts.column_types) {
    const auto it = std::find(names.begin(), names.end(), col);
    if (it == names.end())
      fail<>("{}: a type is given for column \"{}\", which the file does not have; the columns are: {}", name, col,
             join_names(names));
    forced[static_cast<size_t>(it - names.begin())] = type;
  }

  auto check_shape = [&](const Record& rec) {
    if (rec.n != ncols) fail<>("{}:{}: expected {} fields, got {}", name, rec.line, ncols, rec.n);
  };
  auto not_a_number = [&](const Record& rec, size_t j) {
    fail<>("{}:{}: field \"{}\": expected a number, got {}", name, rec.line, names[j], quote_value(rec.fields[j]));
  };

  std::vector<uint8_t> numeric(ncols, 1);
  for (size_t j = 0; j < ncols; ++j) numeric[j] = forced[j] != ColumnType::Categorical;
  int64_t rows = 0;
  while (have_row) {
    check_shape(r);
    check_utf8(r);
    for (size_t j = 0; j < ncols; ++j) {
      if (!numeric[j]) continue;
      const std::string& f = r.fields[j];
      if (is_missing_value(f, opts.missing_values) || parse_number(f, t.decimal, nullptr)) continue;
      if (forced[j] == ColumnType::Numeric) not_a_number(r, j);
      numeric[j] = 0;
    }
    ++rows;
    have_row = reader->next(r);
  }

  // Pass 2: fill the columns.
  t.columns.resize(ncols);
  std::vector<std::unordered_map<std::string, int32_t>> dicts(ncols);
  for (size_t j = 0; j < ncols; ++j) {
    CsvColumn& c = t.columns[j];
    c.name = names[j];
    c.type = numeric[j] ? ColumnType::Numeric : ColumnType::Categorical;
    if (numeric[j])
      c.values.reserve(static_cast<size_t>(rows));
    else
      c.codes.reserve(static_cast<size_t>(rows));
  }
  t.row_lines.reserve(static_cast<size_t>(rows));
  reader = src.open(t.delimiter);
  have_row = reader->next(r);
  if (!have_row) fail<>("{}: the file changed while it was read", name);
  if (t.has_header) have_row = reader->next(r);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  while (have_row) {
    check_shape(r);
    t.row_lines.push_back(r.line);
    for (size_t j = 0; j < ncols; ++j) {
      CsvColumn& c = t.columns[j];
      const std::string& f = r.fields[j];
      const bool miss = is_missing_value(f, opts.missing_values);
      if (miss) ++c.missing;
      if (c.type == ColumnType::Numeric) {
        double v = nan;
        if (!miss && !parse_number(f, t.decimal, &v)) not_a_number(r, j);  // only if the file changed
        c.values.push_back(v);
      } else if (miss) {
        c.codes.push_back(-1);
      } else {
        auto [it, inserted] = dicts[j].try_emplace(f, static_cast<int32_t>(c.categories.size()));
        if (inserted) {
          DEFT_CHECK(c.categories.size() < static_cast<size_t>(std::numeric_limits<int32_t>::max()),
                     "{}: column \"{}\" has too many distinct values", name, c.name);
          c.categories.push_back(f);
        }
        c.codes.push_back(it->second);
      }
    }
    have_row = reader->next(r);
  }
  if (t.num_rows() != rows) fail<>("{}: the file changed while it was read", name);

  for (CsvColumn& c : t.columns) {
    if (c.type == ColumnType::Categorical) {
      // Natural order of the categories; remap the codes.
      std::vector<int32_t> order(c.categories.size());
      std::iota(order.begin(), order.end(), 0);
      std::sort(order.begin(), order.end(),
                [&](int32_t a, int32_t b) { return natural_less(c.categories[static_cast<size_t>(a)],
                                                                c.categories[static_cast<size_t>(b)]); });
      std::vector<int32_t> remap(order.size());
      std::vector<std::string> sorted(order.size());
      for (size_t k = 0; k < order.size(); ++k) {
        remap[static_cast<size_t>(order[k])] = static_cast<int32_t>(k);
        sorted[k] = std::move(c.categories[static_cast<size_t>(order[k])]);
      }
      c.categories = std::move(sorted);
      for (int32_t& code : c.codes)
        if (code >= 0) code = remap[static_cast<size_t>(code)];
    } else {
      double lo = std::numeric_limits<double>::infinity(), hi = -lo, sum = 0;
      int64_t n = 0;
      bool integral = true;
      for (double v : c.values) {
        if (std::isnan(v)) continue;
        lo = std::min(lo, v);
        hi = std::max(hi, v);
        sum += v;
        ++n;
        if (integral && (v != std::floor(v) || std::fabs(v) > 9007199254740992.0)) integral = false;
      }
      c.min = n ? lo : nan;
      c.max = n ? hi : nan;
      c.mean = n ? sum / static_cast<double>(n) : nan;
      c.integral = n > 0 && integral;
    }
  }
  return t;
}

const char* delimiter_text(char d) {
  switch (d) {
    case ',': return ",";
    case ';': return ";";
    case '\t': return "tab";
    case '|': return "|";
    default: return "?";
  }
}

// Float value of a table cell that must fit float32.
float to_float(const CsvTable& t, const CsvColumn& c, int64_t row, double v) {
  if (std::fabs(v) > static_cast<double>(std::numeric_limits<float>::max()))
    fail<>("{}:{}: field \"{}\": value {} does not fit in float32", t.path, t.row_lines[static_cast<size_t>(row)],
           c.name, v);
  return static_cast<float>(v);
}

[[noreturn]] void fail_first_non_number(const CsvTable& t, const CsvColumn& c, const std::string& role) {
  for (int64_t i = 0; i < t.num_rows(); ++i) {
    if (c.is_missing(i)) continue;
    const std::string s = c.text(i);
    if (!parse_number(s, t.decimal, nullptr))
      fail<>("{}:{}: {} \"{}\": expected a number, got {}", t.path, t.row_lines[static_cast<size_t>(i)], role,
             c.name, quote_value(s));
  }
  fail<>("{}: {} \"{}\" must be numeric", t.path, role, c.name);
}

nlohmann::json json_number(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }

}  // namespace

// ----------------------------------------------------------------------------

const char* column_type_name(ColumnType t) {
  switch (t) {
    case ColumnType::Auto: return "auto";
    case ColumnType::Numeric: return "numeric";
    case ColumnType::Categorical: return "categorical";
  }
  return "?";
}

std::vector<std::string> default_missing_values() {
  return {"", "NA", "N/A", "n/a", "NaN", "nan", "?", "null", "NULL"};
}

bool CsvColumn::is_missing(int64_t row) const {
  const auto i = static_cast<size_t>(row);
  return type == ColumnType::Numeric ? std::isnan(values[i]) : codes[i] < 0;
}

std::string CsvColumn::text(int64_t row) const {
  if (is_missing(row)) return {};
  const auto i = static_cast<size_t>(row);
  return type == ColumnType::Numeric ? number_text(values[i]) : categories[static_cast<size_t>(codes[i])];
}

int64_t CsvTable::column_index(const std::string& name) const {
  for (size_t j = 0; j < columns.size(); ++j)
    if (columns[j].name == name) return static_cast<int64_t>(j);
  return -1;
}

std::vector<std::string> CsvTable::column_names() const {
  std::vector<std::string> out;
  for (const auto& c : columns) out.push_back(c.name);
  return out;
}

const CsvColumn& CsvTable::column(const std::string& name) const {
  const int64_t j = column_index(name);
  if (j < 0) fail<>("{}: no column named \"{}\"; the columns are: {}", path, name, join_names(column_names()));
  return columns[static_cast<size_t>(j)];
}

CsvTable read_csv(const std::string& path, const CsvOptions& opts) {
  TextSource src(path);
  return parse(src, opts);
}

CsvTable parse_csv(std::string_view text, const std::string& name, const CsvOptions& opts) {
  TextSource src(text, name);
  return parse(src, opts);
}

nlohmann::json csv_report(const CsvTable& t) {
  nlohmann::json cols = nlohmann::json::array();
  for (const auto& c : t.columns) {
    nlohmann::json j = {{"name", c.name}, {"type", column_type_name(c.type)}, {"missing", c.missing}};
    if (c.is_numeric()) {
      j["min"] = json_number(c.min);
      j["max"] = json_number(c.max);
      j["mean"] = json_number(c.mean);
    } else {
      j["distinct"] = c.categories.size();
    }
    cols.push_back(std::move(j));
  }
  return {{"source", t.path},
          {"kind", "table"},
          {"rows", t.num_rows()},
          {"num_columns", t.num_columns()},
          {"delimiter", delimiter_text(t.delimiter)},
          {"decimal", std::string(1, t.decimal)},
          {"header", t.has_header},
          {"columns", std::move(cols)}};
}

bool natural_less(std::string_view a, std::string_view b) {
  auto digit = [](char c) { return c >= '0' && c <= '9'; };
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    if (digit(a[i]) && digit(b[j])) {
      size_t ie = i, je = j;
      while (ie < a.size() && digit(a[ie])) ++ie;
      while (je < b.size() && digit(b[je])) ++je;
      size_t is = i, js = j;
      while (is + 1 < ie && a[is] == '0') ++is;
      while (js + 1 < je && b[js] == '0') ++js;
      const std::string_view na = a.substr(is, ie - is), nb = b.substr(js, je - js);
      if (na.size() != nb.size()) return na.size() < nb.size();
      if (na != nb) return na < nb;
      i = ie;
      j = je;
    } else if (!digit(a[i]) && !digit(b[j])) {
      size_t ie = i, je = j;
      while (ie < a.size() && !digit(a[ie])) ++ie;
      while (je < b.size() && !digit(b[je])) ++je;
      const std::string_view ta = a.substr(i, ie - i), tb = b.substr(j, je - j);
      if (ta != tb) return ta < tb;
      i = ie;
      j = je;
    } else {
      return static_cast<unsigned char>(a[i]) < static_cast<unsigned char>(b[j]);
    }
  }
  if ((i < a.size()) != (j < b.size())) return i >= a.size();  // a ran out first
  return a < b;
}

// ----------------------------------------------------------------------------
// Table -> Dataset

int64_t TableSchema::num_categorical() const {
  return std::count_if(features.begin(), features.end(),
                       [](const FeatureColumn& f) { return f.type == ColumnType::Categorical; });
}

CsvOptions TableSchema::csv_options(CsvOptions base) const {
  for (const auto& f : features) base.column_types[f.name] = f.type;
  return base;
}

nlohmann::json TableSchema::to_json() const {
  nlohmann::json feats = nlohmann::json::array();
  for (const auto& f : features) {
    nlohmann::json j = {{"name", f.name}, {"type", column_type_name(f.type)}};
    if (f.type == ColumnType::Categorical) j["categories"] = f.categories;
    feats.push_back(std::move(j));
  }
  return {{"features", std::move(feats)},
          {"target", target},
          {"task", task_str(task)},
          {"class_names", class_names},
          {"rows_read", rows_read},
          {"dropped_missing_target", dropped_missing_target}};
}

TableSchema TableSchema::from_json(const nlohmann::json& j) {
  try {
    TableSchema s;
    for (const auto& f : j.at("features")) {
      FeatureColumn c;
      c.name = f.at("name").get<std::string>();
      const auto type = f.at("type").get<std::string>();
      if (type == "numeric") {
        c.type = ColumnType::Numeric;
      } else if (type == "categorical") {
        c.type = ColumnType::Categorical;
        c.categories = f.at("categories").get<std::vector<std::string>>();
      } else {
        fail<>("table schema: unknown column type \"{}\"", type);
      }
      s.features.push_back(std::move(c));
    }
    s.target = j.at("target").get<std::string>();
    const auto task = j.at("task").get<std::string>();
    if (task == "classification")
      s.task = Task::Classification;
    else if (task == "regression")
      s.task = Task::Regression;
    else
      fail<>("table schema: unknown task \"{}\"", task);
    s.class_names = j.at("class_names").get<std::vector<std::string>>();
    s.rows_read = j.value("rows_read", int64_t{0});
    s.dropped_missing_target = j.value("dropped_missing_target", int64_t{0});
    return s;
  } catch (const nlohmann::json::exception& e) {
    fail<>("table schema: malformed JSON: {}", e.what());
  }
}

Dataset csv_to_dataset(const CsvTable& t, const std::string& target, const TableOptions& opts, TableSchema* schema_out) {
  const int64_t tidx = t.column_index(target);
  if (tidx < 0)
    fail<>("{}: no column named \"{}\" to use as the target; the columns are: {}", t.path, target,
           join_names(t.column_names()));
  for (const auto& ig : opts.ignore)
    if (t.column_index(ig) < 0)
      fail<>("{}: cannot ignore column \"{}\": there is no such column; the columns are: {}", t.path, ig,
             join_names(t.column_names()));
  const CsvColumn& tc = t.columns[static_cast<size_t>(tidx)];

  std::vector<int64_t> rows;
  rows.reserve(static_cast<size_t>(t.num_rows()));
  for (int64_t i = 0; i < t.num_rows(); ++i)
    if (!tc.is_missing(i)) rows.push_back(i);
  if (rows.empty()) fail<>("{}: the target column \"{}\" has no values", t.path, target);
  const auto n = static_cast<int64_t>(rows.size());

  TableSchema schema;
  schema.target = target;
  schema.rows_read = t.num_rows();
  schema.dropped_missing_target = t.num_rows() - n;

  // Task and labels.
  Tensor labels;
  if (!tc.is_numeric()) {
    if (opts.task && *opts.task == Task::Regression)
      fail<>("{}:{}: target \"{}\" is categorical (e.g. {}), so it cannot be a regression target", t.path,
             t.row_lines[static_cast<size_t>(rows[0])], target, quote_value(tc.text(rows[0])));
    schema.task = Task::Classification;
    schema.class_names = tc.categories;
    std::vector<int64_t> y(rows.size());
    for (size_t k = 0; k < rows.size(); ++k) y[k] = tc.codes[static_cast<size_t>(rows[k])];
    labels = Tensor::from_vector(y);
  } else {
    std::vector<double> distinct;
    bool few = tc.integral;
    const double limit = std::max<double>(static_cast<double>(opts.always_classes),
                                          std::min<double>(static_cast<double>(opts.max_classes),
                                                           opts.max_class_fraction * static_cast<double>(n)));
    if (few) {
      std::unordered_set<double> seen;
      for (int64_t i : rows) {
        seen.insert(tc.values[static_cast<size_t>(i)]);
        if (static_cast<double>(seen.size()) > limit) {
          few = false;
          break;
        }
      }
    }
    schema.task = opts.task ? *opts.task : (few ? Task::Classification : Task::Regression);
    if (schema.task == Task::Classification) {
      for (int64_t i : rows) distinct.push_back(tc.values[static_cast<size_t>(i)]);
      std::sort(distinct.begin(), distinct.end());
      distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
      for (double v : distinct) schema.class_names.push_back(number_text(v));
      std::vector<int64_t> y(rows.size());
      for (size_t k = 0; k < rows.size(); ++k)
        y[k] = std::lower_bound(distinct.begin(), distinct.end(), tc.values[static_cast<size_t>(rows[k])]) -
               distinct.begin();
      labels = Tensor::from_vector(y);
    } else {
      std::vector<float> y(rows.size());
      for (size_t k = 0; k < rows.size(); ++k)
        y[k] = to_float(t, tc, rows[k], tc.values[static_cast<size_t>(rows[k])]);
      labels = Tensor::from_vector(y);
    }
  }

  // Features.
  std::vector<size_t> cols;
  for (size_t j = 0; j < t.columns.size(); ++j) {
    if (static_cast<int64_t>(j) == tidx) continue;
    if (std::find(opts.ignore.begin(), opts.ignore.end(), t.columns[j].name) != opts.ignore.end()) continue;
    cols.push_back(j);
    const CsvColumn& c = t.columns[j];
    schema.features.push_back({c.name, c.type, c.categories});
  }
  if (cols.empty()) fail<>("{}: no feature columns besides the target \"{}\"", t.path, target);
  const auto f = static_cast<int64_t>(cols.size());
  Tensor x = Tensor::empty({n, f});
  float* xp = x.data<float>();
  const float fnan = std::numeric_limits<float>::quiet_NaN();
  for (size_t k = 0; k < cols.size(); ++k) {
    const CsvColumn& c = t.columns[cols[k]];
    for (int64_t r = 0; r < n; ++r) {
      const auto i = static_cast<size_t>(rows[static_cast<size_t>(r)]);
      float v;
      if (c.is_numeric())
        v = std::isnan(c.values[i]) ? fnan : to_float(t, c, rows[static_cast<size_t>(r)], c.values[i]);
      else
        v = c.codes[i] < 0 ? fnan : static_cast<float>(c.codes[i]);
      xp[r * f + static_cast<int64_t>(k)] = v;
    }
  }

  Dataset d;
  d.name = t.path;
  d.source = t.path;
  d.features = x;
  d.labels = labels;
  d.task = schema.task;
  d.class_names = schema.class_names;
  for (const auto& fc : schema.features) d.feature_names.push_back(fc.name);
  if (schema_out) *schema_out = std::move(schema);
  return d;
}

Dataset csv_to_features(const CsvTable& t, const TableSchema& schema) {
  std::vector<std::string> absent;
  std::vector<size_t> cols;
  for (const auto& fc : schema.features) {
    const int64_t j = t.column_index(fc.name);
    if (j < 0)
      absent.push_back(fc.name);
    else
      cols.push_back(static_cast<size_t>(j));
  }
  if (!absent.empty())
    fail<>("{}: missing column(s) the model was trained with: {}; the file has: {}", t.path, join_names(absent),
           join_names(t.column_names()));

  const int64_t tidx = schema.target.empty() ? -1 : t.column_index(schema.target);
  std::vector<int64_t> rows;
  for (int64_t i = 0; i < t.num_rows(); ++i)
    if (tidx < 0 || !t.columns[static_cast<size_t>(tidx)].is_missing(i)) rows.push_back(i);
  const auto n = static_cast<int64_t>(rows.size());
  const auto f = static_cast<int64_t>(cols.size());

  Dataset d;
  d.name = t.path;
  d.source = t.path;
  d.task = schema.task;
  d.class_names = schema.class_names;
  for (const auto& fc : schema.features) d.feature_names.push_back(fc.name);

  Tensor x = Tensor::empty({n, f});
  float* xp = x.data<float>();
  const float fnan = std::numeric_limits<float>::quiet_NaN();
  for (size_t k = 0; k < cols.size(); ++k) {
    const FeatureColumn& fc = schema.features[k];
    const CsvColumn& c = t.columns[cols[k]];
    if (fc.type == ColumnType::Numeric) {
      if (!c.is_numeric()) fail_first_non_number(t, c, "field");
      for (int64_t r = 0; r < n; ++r) {
        const auto i = static_cast<size_t>(rows[static_cast<size_t>(r)]);
        xp[r * f + static_cast<int64_t>(k)] =
            std::isnan(c.values[i]) ? fnan : to_float(t, c, rows[static_cast<size_t>(r)], c.values[i]);
      }
    } else {
      std::unordered_map<std::string, int64_t> index;
      for (size_t q = 0; q < fc.categories.size(); ++q) index.emplace(fc.categories[q], static_cast<int64_t>(q));
      auto lookup = [&](const std::string& s) -> float {
        const auto it = index.find(s);
        return it == index.end() ? -1.0f : static_cast<float>(it->second);
      };
      std::vector<float> by_code;
      if (!c.is_numeric())
        for (const auto& cat : c.categories) by_code.push_back(lookup(cat));
      for (int64_t r = 0; r < n; ++r) {
        const auto row = rows[static_cast<size_t>(r)];
        float v = fnan;
        if (!c.is_missing(row))
          v = c.is_numeric() ? lookup(c.text(row)) : by_code[static_cast<size_t>(c.codes[static_cast<size_t>(row)])];
        xp[r * f + static_cast<int64_t>(k)] = v;
      }
    }
  }
  d.features = x;

  if (tidx >= 0) {
    const CsvColumn& tc = t.columns[static_cast<size_t>(tidx)];
    if (schema.task == Task::Classification) {
      std::unordered_map<std::string, int64_t> index;
      for (size_t q = 0; q < schema.class_names.size(); ++q) index.emplace(schema.class_names[q], static_cast<int64_t>(q));
      std::vector<int64_t> y(rows.size());
      for (size_t r = 0; r < rows.size(); ++r) {
        const std::string s = tc.text(rows[r]);
        const auto it = index.find(s);
        if (it == index.end())
          fail<>("{}:{}: target \"{}\": class {} was not among the training classes ({})", t.path,
                 t.row_lines[static_cast<size_t>(rows[r])], tc.name, quote_value(s), join_names(schema.class_names, 20));
        y[r] = it->second;
      }
      d.labels = Tensor::from_vector(y);
    } else {
      if (!tc.is_numeric()) fail_first_non_number(t, tc, "target");
      std::vector<float> y(rows.size());
      for (size_t r = 0; r < rows.size(); ++r)
        y[r] = to_float(t, tc, rows[r], tc.values[static_cast<size_t>(rows[r])]);
      d.labels = Tensor::from_vector(y);
    }
  }
  return d;
}

}  // namespace deft::data
