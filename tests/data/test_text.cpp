// Text-classification readers on real files written by the test.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "data_test_util.h"
#include "deft/data/text.h"

namespace deft::data {
namespace {

using deft::test_util::expect_input_error;

namespace fs = std::filesystem;

class TextTempDir {
 public:
  TextTempDir() {
    static std::atomic<int> counter{0};
    path_ = fs::temp_directory_path() /
            ("deft_test_text_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TextTempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TextTempDir(const TextTempDir&) = delete;
  TextTempDir& operator=(const TextTempDir&) = delete;
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }
  std::string str() const { return path_.string(); }
  // Writes `content` to `name` (creating folders) and returns the path.
  std::string write(const std::string& name, const std::string& content) const {
    const fs::path p = path_ / name;
    fs::create_directories(p.parent_path());
    std::ofstream f(p, std::ios::binary);
    f << content;
    return p.string();
  }

 private:
  fs::path path_;
};

std::vector<std::string> label_names(const Dataset& d) {
  std::vector<std::string> out;
  for (int64_t l : d.labels.to_vector<int64_t>()) out.push_back(d.class_names[static_cast<size_t>(l)]);
  return out;
}

TEST(TextUtf8, FindsTheFirstInvalidByte) {
  const size_t npos = std::string_view::npos;
  EXPECT_EQ(find_invalid_utf8(""), npos);
  EXPECT_EQ(find_invalid_utf8("plain ascii"), npos);
  EXPECT_EQ(find_invalid_utf8("h\xC3\xA9llo \xE2\x9C\x93 \xF0\x9F\x98\x80 \xF4\x8F\xBF\xBF"),
            npos);                                       // é ✓ 😀 U+10FFFF
  EXPECT_EQ(find_invalid_utf8("ab\xFF"), 2u);            // never valid
  EXPECT_EQ(find_invalid_utf8("a\x80"), 1u);             // lone continuation byte
  EXPECT_EQ(find_invalid_utf8("\xC0\x80"), 0u);          // overlong NUL
  EXPECT_EQ(find_invalid_utf8("x\xE0\x80\xAF"), 1u);     // overlong 3-byte
  EXPECT_EQ(find_invalid_utf8("\xED\xA0\x80"), 0u);      // UTF-16 surrogate
  EXPECT_EQ(find_invalid_utf8("\xF4\x90\x80\x80"), 0u);  // past U+10FFFF
  EXPECT_EQ(find_invalid_utf8("ok\xE2\x9C"), 2u);        // truncated sequence
  EXPECT_EQ(find_invalid_utf8("\xC3\x28"), 0u);          // bad continuation
}

TEST(TextFile, TabSeparatedWithHeaderBomCrlfAndBlankLines) {
  TextTempDir dir;
  const std::string path = dir.write("data.tsv",
                                     "\xEF\xBB\xBFlabel\ttext\r\n"
                                     "pos\tA great film, truly.\r\n"
                                     "\r\n"
                                     "neg\tDull\tand long\r\n"
                                     "  pos \t  spaces kept  \r\n"
                                     "neg\t\r\n"
                                     "neu\tcaf\xC3\xA9 \xE2\x9C\x93\n");
  const Dataset d = load_text_file(path);
  EXPECT_EQ(d.class_names, (std::vector<std::string>{"neg", "neu", "pos"}));
  EXPECT_EQ(d.texts, (std::vector<std::string>{"A great film, truly.", "Dull\tand long", "  spaces kept  ",
                                               "", "caf\xC3\xA9 \xE2\x9C\x93"}));
  EXPECT_EQ(label_names(d), (std::vector<std::string>{"pos", "neg", "pos", "neg", "neu"}));
  EXPECT_EQ(d.size(), 5);
  EXPECT_FALSE(d.features.defined());
  EXPECT_EQ(d.labels.dtype(), DType::Int64);
  // Subsets carry the texts along.
  const Dataset s = d.subset(std::vector<int64_t>{4, 0});
  EXPECT_EQ(s.texts, (std::vector<std::string>{"caf\xC3\xA9 \xE2\x9C\x93", "A great film, truly."}));
}

TEST(TextFile, CommaFormWithQuotes) {
  TextTempDir dir;
  const std::string path = dir.write("data.csv",
                                     "class,sentence\n"
                                     "spam,Buy now, cheap, cheap\n"
                                     "\"ham\",\"He said \"\"hi\"\", then left\"\n"
                                     "\"a,b\",label with a comma\n"
                                     "ham,\"unbalanced\" quotes stay as they are\n");
  const Dataset d = load_text_file(path);
  EXPECT_EQ(d.class_names, (std::vector<std::string>{"a,b", "ham", "spam"}));
  EXPECT_EQ(d.texts,
            (std::vector<std::string>{"Buy now, cheap, cheap", "He said \"hi\", then left",
                                      "label with a comma", "\"unbalanced\" quotes stay as they are"}));
  EXPECT_EQ(label_names(d), (std::vector<std::string>{"spam", "ham", "a,b", "ham"}));
}

TEST(TextFile, IntegerLabelsSortNumericallyAndNoHeaderNeeded) {
  TextTempDir dir;
  const std::string path = dir.write("n.tsv", "10\tten\n2\ttwo\n1\tone\n2\tdeux\n");
  const Dataset d = load_text_file(path);
  EXPECT_EQ(d.class_names, (std::vector<std::string>{"1", "2", "10"}));
  EXPECT_EQ(d.labels.to_vector<int64_t>(), (std::vector<int64_t>{2, 1, 0, 1}));
}

TEST(TextFile, LabelLastAndHeaderOptions) {
  TextTempDir dir;
  const std::string path = dir.write("sst.tsv", "sentence\tlabel\nit is fine\t1\nawful\tand bad\t0\n");
  const Dataset d = load_text_file(path, {.label_last = true});
  EXPECT_EQ(d.texts, (std::vector<std::string>{"it is fine", "awful\tand bad"}));
  EXPECT_EQ(label_names(d), (std::vector<std::string>{"1", "0"}));
  // header = No: the first line is an example.
  const std::string p2 = dir.write("h.tsv", "label\ttext\nx\ty\n");
  EXPECT_EQ(load_text_file(p2, {.header = TextFileOptions::Header::No}).texts.size(), 2u);
  // header = Yes: skipped even when it does not look like one.
  const std::string p3 = dir.write("h3.tsv", "kind\tcontent\nx\ty\n");
  EXPECT_EQ(load_text_file(p3, {.header = TextFileOptions::Header::Yes}).texts,
            (std::vector<std::string>{"y"}));
  EXPECT_EQ(load_text_file(p3).texts.size(), 2u);
}

TEST(TextFile, BadLinesNamePathAndLine) {
  TextTempDir dir;
  const std::string no_tab = dir.write("a.tsv", "pos\tgood\nneg\tbad\njust some text\n");
  expect_input_error([&] { load_text_file(no_tab); }, {no_tab + ":3:", "label<TAB>text"});
  const std::string no_comma = dir.write("b.csv", "pos,good\n\nno comma here\n");
  expect_input_error([&] { load_text_file(no_comma); }, {no_comma + ":3:", "label,text"});
  const std::string empty_label = dir.write("c.tsv", "pos\tgood\n\tno label\n");
  expect_input_error([&] { load_text_file(empty_label); }, {empty_label + ":2:", "empty label"});
  const std::string open_quote = dir.write("d.csv", "\"pos,good\n");
  expect_input_error([&] { load_text_file(open_quote); }, {open_quote + ":1:", "quote"});
}

TEST(TextFile, InvalidUtf8NamesPathLineAndByte) {
  TextTempDir dir;
  const std::string path = dir.write("bad.tsv", "pos\tfine\nneg\tbad \xC0\x80 bytes\n");
  expect_input_error([&] { load_text_file(path); }, {path + ":2:", "invalid UTF-8", "byte 9"});
  const std::string latin1 = dir.write("latin1.tsv", "pos\tcaf\xE9\n");
  expect_input_error([&] { load_text_file(latin1); }, {latin1 + ":1:", "invalid UTF-8"});
}

TEST(TextFile, EmptyOrMissing) {
  TextTempDir dir;
  const std::string empty = dir.write("empty.tsv", "");
  expect_input_error([&] { load_text_file(empty); }, {empty, "no examples"});
  const std::string header_only = dir.write("h.tsv", "label\ttext\n\n");
  expect_input_error([&] { load_text_file(header_only); }, {header_only, "no examples"});
  expect_input_error([&] { load_text_file(dir / "missing.tsv"); }, {dir / "missing.tsv", "does not exist"});
  expect_input_error([&] { load_text_file(dir.str()); }, {dir.str(), "folder"});
}

TEST(TextFolder, OneExamplePerFile) {
  TextTempDir dir;
  dir.write("pos/b.txt", "second positive\n");
  dir.write("pos/a.txt", "first positive\r\n\r\n");
  dir.write("pos/nested/c.TXT", "\xEF\xBB\xBFthird, with BOM\nand two lines");
  dir.write("pos/notes.md", "ignored");
  dir.write("pos/.hidden.txt", "ignored");
  dir.write("neg/x.txt", "negative \xF0\x9F\x98\x9E");
  dir.write("neg/empty.txt", "");
  fs::create_directories(dir / ".cache");
  dir.write("top.txt", "not in a class");
  const Dataset d = load_text_folder(dir.str());
  EXPECT_EQ(d.class_names, (std::vector<std::string>{"neg", "pos"}));
  EXPECT_EQ(d.texts, (std::vector<std::string>{"", "negative \xF0\x9F\x98\x9E", "first positive",
                                               "second positive", "third, with BOM\nand two lines"}));
  EXPECT_EQ(d.labels.to_vector<int64_t>(), (std::vector<int64_t>{0, 0, 1, 1, 1}));
}

TEST(TextFolder, Errors) {
  TextTempDir dir;
  expect_input_error([&] { load_text_folder(dir.str()); }, {dir.str(), "no class sub-folders"});
  expect_input_error([&] { load_text_folder(dir / "missing"); }, {dir / "missing", "does not exist"});
  dir.write("a/one.txt", "fine");
  dir.write("b/readme.md", "no txt here");
  expect_input_error([&] { load_text_folder(dir.str()); }, {dir / "b", "no .txt files"});
  fs::remove_all(dir / "b");
  const std::string bad = dir.write("a/two.txt", "line one\nline two \xFF\n");
  expect_input_error([&] { load_text_folder(dir.str()); }, {bad + ":2:", "invalid UTF-8", "byte 10"});
}

}  // namespace
}  // namespace deft::data
