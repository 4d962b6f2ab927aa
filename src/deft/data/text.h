// Text-classification data: labelled strings, kept raw for a tokenizer.
//
//   Dataset d = load_text_file("reviews.tsv");   // "pos<TAB>great film" per line
//   Dataset f = load_text_folder("reviews/");    // reviews/pos/001.txt, reviews/neg/...
//   d.texts[i]                   // the UTF-8 text of example i
//   d.class_names[d.labels[i]]   // its label (labels: int64 [N])
// features stay undefined; Dataset::size() counts the labels.
//
// load_text_file accepts, one example per line:
//   label<TAB>text        when the first example line holds a tab (TSV): split at
//                         the first tab, the text may hold further tabs;
//   label,text            otherwise (CSV-ish): split at the first comma, the text
//                         may hold further commas unquoted. Either field may be
//                         double-quoted ("a ""quoted"" word, with comma"); a
//                         quoted field spans one line only.
// With label_last, the label is the LAST field instead ("text<TAB>label",
// split at the last delimiter). A header line is skipped when its label field
// is one of label, labels, class, category, target, y (any case), or always /
// never when options.header says so. Blank lines are skipped; \r\n line ends,
// a UTF-8 BOM and spaces around the label are tolerated; the text is kept
// exactly. A line without the delimiter or with an empty label is an InputError
// "path:line: ...". Every byte must be valid UTF-8 (no overlongs, surrogates or
// code points past U+10FFFF): otherwise InputError "path:line: invalid UTF-8 at
// byte N".
//
// Class names are the distinct labels, sorted; when every label is an integer
// they sort by value ("2" before "10"). Empty input is an InputError.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "deft/data/dataset.h"

namespace deft::data {

struct TextFileOptions {
  enum class Header { Auto, Yes, No };
  Header header = Header::Auto;
  char delimiter = 0;       // 0: detect ('\t' if the first example line has a tab, else ',')
  bool label_last = false;  // "text<TAB>label" instead of "label<TAB>text"
};

Dataset load_text_file(const std::string& path, const TextFileOptions& options = {});

// dir/<class>/<file>.txt (any case; nested folders allowed; hidden entries
// skipped): one example per file, the whole file (BOM and trailing line breaks
// removed). Classes are the sub-folders, sorted by name; examples ordered by
// class, then path. InputError for a missing folder, no class folders, a class
// without .txt files, or invalid UTF-8 ("file:line: invalid UTF-8 at byte N").
Dataset load_text_folder(const std::string& dir);

// Offset of the first byte that is not part of valid UTF-8, or npos.
size_t find_invalid_utf8(std::string_view s);

}  // namespace deft::data
