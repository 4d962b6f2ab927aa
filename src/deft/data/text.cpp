#include "deft/data/text.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>

namespace deft::data {

namespace fs = std::filesystem;

size_t find_invalid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
      cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      cp = c & 0x07;
    } else {
      return i;  // continuation byte, overlong lead (C0/C1) or F5..FF
    }
    if (i + len > n) return i;
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
      return i;
    i += len;
  }
  return std::string_view::npos;
}

namespace {

std::string read_text(const std::string& path, const char* what) {
  std::error_code ec;
  if (!fs::exists(path, ec)) fail("{}: {} does not exist", what, path);
  if (fs::is_directory(path, ec)) fail("{}: {} is a folder, expected a file", what, path);
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) fail("{}: cannot read {}: {}", what, path, std::strerror(errno));
  std::string s;
  char buf[1 << 16];
  while (true) {
    const size_t n = std::fread(buf, 1, sizeof buf, f);
    s.append(buf, n);
    if (n < sizeof buf) break;
  }
  const bool bad = std::ferror(f) != 0;
  const int err = errno;
  std::fclose(f);
  if (bad) fail("{}: cannot read {}: {}", what, path, std::strerror(err));
  if (s.size() >= 3 && std::memcmp(s.data(), "\xEF\xBB\xBF", 3) == 0) s.erase(0, 3);
  return s;
}

std::string trim(std::string_view s) {
  const size_t b = s.find_first_not_of(" \t");
  if (b == std::string_view::npos) return "";
  const size_t e = s.find_last_not_of(" \t");
  return std::string(s.substr(b, e - b + 1));
}

// If `s` is exactly one double-quoted field ("..." with inner quotes doubled),
// its content; otherwise nothing.
bool unquote(std::string_view s, std::string* out) {
  if (s.size() < 2 || s.front() != '"' || s.back() != '"') return false;
  std::string r;
  for (size_t i = 1; i + 1 < s.size(); ++i) {
    if (s[i] == '"') {
      if (i + 2 < s.size() && s[i + 1] == '"') {
        r.push_back('"');
        ++i;
      } else {
        return false;  // a lone quote inside: not one quoted field
      }
    } else {
      r.push_back(s[i]);
    }
  }
  *out = std::move(r);
  return true;
}

std::string unquote_or_keep(std::string_view s) {
  std::string r;
  return unquote(s, &r) ? r : std::string(s);
}

bool is_integer(const std::string& s) {
  size_t i = s[0] == '-' || s[0] == '+' ? 1 : 0;
  if (i >= s.size() || s.size() - i > 18) return false;
  for (; i < s.size(); ++i)
    if (s[i] < '0' || s[i] > '9') return false;
  return true;
}

// Sorted class names (numerically when all are integers) and each label's index.
void assign_labels(const std::vector<std::string>& raw, Dataset& d) {
  std::set<std::string> distinct(raw.begin(), raw.end());
  std::vector<std::string> names(distinct.begin(), distinct.end());
  if (std::all_of(names.begin(), names.end(), is_integer))
    std::stable_sort(names.begin(), names.end(), [](const std::string& a, const std::string& b) {
      const long long va = std::stoll(a), vb = std::stoll(b);
      return va != vb ? va < vb : a < b;
    });
  std::map<std::string, int64_t> index;
  for (size_t i = 0; i < names.size(); ++i) index[names[i]] = static_cast<int64_t>(i);
  std::vector<int64_t> labels;
  labels.reserve(raw.size());
  for (const std::string& r : raw) labels.push_back(index.at(r));
  d.class_names = std::move(names);
  d.labels = Tensor::from_vector(labels);
  d.task = Task::Classification;
}

bool is_hidden(const fs::path& p) {
  const std::string n = p.filename().string();
  return !n.empty() && n[0] == '.';
}

}  // namespace

Dataset load_text_file(const std::string& path, const TextFileOptions& options) {
  const std::string content = read_text(path, "text file");
  DEFT_CHECK(options.delimiter == 0 || options.delimiter == '\t' || options.delimiter == ',' ||
                 options.delimiter == ';' || options.delimiter == '|',
             "text file: unsupported delimiter '{}'", options.delimiter);
  char delim = options.delimiter;
  bool header_pending = options.header != TextFileOptions::Header::No;
  std::vector<std::string> raw_labels;
  Dataset d;
  d.name = path;
  d.source = path;
  size_t pos = 0;
  int64_t line_no = 0;
  while (pos < content.size()) {
    size_t end = content.find('\n', pos);
    if (end == std::string::npos) end = content.size();
    std::string_view line(content.data() + pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (const size_t bad = find_invalid_utf8(line); bad != std::string_view::npos)
      fail("{}:{}: invalid UTF-8 at byte {} (0x{:02x})", path, line_no, bad + 1,
           static_cast<unsigned>(static_cast<unsigned char>(line[bad])));
    if (line.find_first_not_of(" \t") == std::string_view::npos) continue;
    if (delim == 0) delim = line.find('\t') != std::string_view::npos ? '\t' : ',';
    const char* form = delim == '\t' ? (options.label_last ? "text<TAB>label" : "label<TAB>text")
                                     : (options.label_last ? "text,label" : "label,text");

    std::string label, text;
    if (!options.label_last) {
      const std::string_view lead = line.substr(std::min(line.find_first_not_of(' '), line.size()));
      size_t split;
      if (!lead.empty() && lead.front() == '"') {
        // Quoted label: find its closing quote (doubled quotes are escapes).
        size_t i = 1;
        while (true) {
          i = lead.find('"', i);
          if (i == std::string_view::npos) fail("{}:{}: unterminated quote in the label", path, line_no);
          if (i + 1 < lead.size() && lead[i + 1] == '"') {
            i += 2;
            continue;
          }
          break;
        }
        split = lead.find(delim, i + 1);
        if (split != std::string_view::npos && !trim(lead.substr(i + 1, split - i - 1)).empty())
          fail("{}:{}: unexpected text after the quoted label", path, line_no);
      } else {
        split = lead.find(delim);
      }
      if (split == std::string_view::npos)
        fail("{}:{}: expected '{}', found no {} in the line", path, line_no, form,
             delim == '\t' ? "tab" : "delimiter");
      label = unquote_or_keep(trim(lead.substr(0, split)));
      text = unquote_or_keep(lead.substr(split + 1));
    } else {
      const size_t split = line.rfind(delim);
      if (split == std::string_view::npos)
        fail("{}:{}: expected '{}', found no {} in the line", path, line_no, form,
             delim == '\t' ? "tab" : "delimiter");
      label = unquote_or_keep(trim(line.substr(split + 1)));
      text = unquote_or_keep(line.substr(0, split));
    }
    if (header_pending) {
      header_pending = false;
      std::string l = label;
      for (char& c : l) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      static const std::set<std::string> kHeaderNames = {"label",    "labels", "class",
                                                         "category", "target", "y"};
      if (options.header == TextFileOptions::Header::Yes || kHeaderNames.count(l)) continue;
    }
    if (label.empty()) fail("{}:{}: empty label (expected '{}')", path, line_no, form);
    raw_labels.push_back(std::move(label));
    d.texts.push_back(std::move(text));
  }
  if (d.texts.empty()) fail("text file: {} holds no examples (expected one 'label<TAB>text' per line)", path);
  assign_labels(raw_labels, d);
  return d;
}

Dataset load_text_folder(const std::string& dir) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) fail("text folder: {} does not exist", dir);
  if (!fs::is_directory(dir, ec)) fail("text folder: {} is not a folder", dir);
  Dataset d;
  d.name = dir;
  d.source = dir;
  std::vector<std::string> raw_labels;
  try {
    std::vector<fs::path> class_dirs;
    for (const fs::directory_entry& e : fs::directory_iterator(dir))
      if (!is_hidden(e.path()) && e.is_directory()) class_dirs.push_back(e.path());
    std::sort(class_dirs.begin(), class_dirs.end(), [](const fs::path& a, const fs::path& b) {
      return a.filename().string() < b.filename().string();
    });
    if (class_dirs.empty())
      fail("text folder: {} has no class sub-folders (expected {}/<class>/<file>.txt)", dir, dir);
    for (const fs::path& cd : class_dirs) {
      std::vector<std::string> files;
      for (auto it = fs::recursive_directory_iterator(cd, fs::directory_options::follow_directory_symlink);
           it != fs::recursive_directory_iterator(); ++it) {
        if (is_hidden(it->path())) {
          if (it->is_directory()) it.disable_recursion_pending();
          continue;
        }
        std::string ext = it->path().extension().string();
        for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (it->is_regular_file() && ext == ".txt") files.push_back(it->path().string());
      }
      if (files.empty()) fail("text folder: class folder {} holds no .txt files", cd.string());
      std::sort(files.begin(), files.end());
      const std::string cls = cd.filename().string();
      for (const std::string& f : files) {
        std::string s = read_text(f, "text folder");
        if (const size_t bad = find_invalid_utf8(s); bad != std::string_view::npos) {
          const size_t line_start = s.rfind('\n', bad == 0 ? 0 : bad - 1);
          const int64_t line = 1 + std::count(s.begin(), s.begin() + static_cast<std::ptrdiff_t>(bad), '\n');
          const size_t col = line_start == std::string::npos || bad == 0 ? bad + 1 : bad - line_start;
          fail("{}:{}: invalid UTF-8 at byte {} (0x{:02x})", f, line, col,
               static_cast<unsigned>(static_cast<unsigned char>(s[bad])));
        }
        while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
        d.texts.push_back(std::move(s));
        raw_labels.push_back(cls);
      }
    }
  } catch (const fs::filesystem_error& e) {
    fail("text folder: cannot list {}: {}", e.path1().string(), e.code().message());
  }
  // Folder names sort as strings (not numerically) so labels follow folder order.
  std::vector<std::string> names;
  for (const std::string& l : raw_labels)
    if (names.empty() || names.back() != l) names.push_back(l);
  std::map<std::string, int64_t> index;
  for (size_t i = 0; i < names.size(); ++i) index[names[i]] = static_cast<int64_t>(i);
  std::vector<int64_t> labels;
  for (const std::string& l : raw_labels) labels.push_back(index.at(l));
  d.class_names = std::move(names);
  d.labels = Tensor::from_vector(labels);
  d.task = Task::Classification;
  return d;
}

}  // namespace deft::data
