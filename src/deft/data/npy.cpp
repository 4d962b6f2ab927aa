#include "deft/data/npy.h"

#include <zlib.h>

#include <algorithm>
#include <bit>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <optional>

#include "deft/data/gzip.h"
#include "deft/tensor/bytes.h"
#include "deft/tensor/file_io.h"
#include "deft/tensor/kernels.h"
#include "deft/tensor/text_util.h"

namespace deft::data {

static_assert(std::endian::native == std::endian::little, "the NPY reader assumes a little-endian host");

namespace fs = std::filesystem;

namespace {

constexpr size_t kMaxNpyDims = 4;

struct NpyHeader {
  std::string descr;
  bool fortran_order = false;
  Shape shape;
};

// Parses the header dict, a Python literal such as
//   {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
// Exactly the three keys, each once; values a string, True/False and a tuple of
// non-negative ints. Anything else is an InputError naming the byte offset.
class HeaderParser {
 public:
  HeaderParser(const std::string& text, size_t base, const std::string& name)
      : s_(text), base_(base), name_(name) {}

  NpyHeader parse() {
    NpyHeader h;
    bool seen_descr = false, seen_order = false, seen_shape = false;
    ws();
    expect('{');
    ws();
    while (peek() != '}') {
      const std::string key = string_literal();
      ws();
      expect(':');
      ws();
      if (key == "descr") {
        if (seen_descr) bad("duplicate key 'descr'");
        seen_descr = true;
        if (peek() == '[') {
          fail("{}: structured dtypes (a list as 'descr') are not supported, at byte {}", name_, base_ + i_);
        }
        h.descr = string_literal();
      } else if (key == "fortran_order") {
        if (seen_order) bad("duplicate key 'fortran_order'");
        seen_order = true;
        h.fortran_order = boolean();
      } else if (key == "shape") {
        if (seen_shape) bad("duplicate key 'shape'");
        seen_shape = true;
        h.shape = tuple();
      } else {
        bad(fmt::format("unexpected key '{}'", ascii_excerpt(key)));
      }
      ws();
      if (peek() == ',') {
        ++i_;
        ws();
      } else if (peek() != '}') {
        bad("expected ',' or '}'");
      }
    }
    ++i_;  // '}'
    ws();
    if (i_ != s_.size()) bad("unexpected text after the closing '}'");
    if (!seen_descr || !seen_order || !seen_shape) {
      fail("{}: invalid .npy header: missing key '{}' (header: {})", name_,
           !seen_descr ? "descr" : !seen_order ? "fortran_order" : "shape", ascii_excerpt(s_));
    }
    return h;
  }

 private:
  [[noreturn]] void bad(const std::string& what) const {
    fail("{}: invalid .npy header: {}, at byte {} (header: {})", name_, what, base_ + i_, ascii_excerpt(s_));
  }
  char peek() const { return i_ < s_.size() ? s_[i_] : '\0'; }
  void ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
  }
  void expect(char c) {
    if (peek() != c || i_ >= s_.size()) bad(fmt::format("expected '{}'", c));
    ++i_;
  }
  std::string string_literal() {
    const char q = peek();
    if (q != '\'' && q != '"') bad("expected a quoted string");
    ++i_;
    std::string out;
    while (i_ < s_.size() && s_[i_] != q) {
      const unsigned char c = static_cast<unsigned char>(s_[i_]);
      if (c == '\\' || c < 0x20 || c >= 0x7f) bad("unsupported character in string");
      out += s_[i_++];
    }
    if (i_ >= s_.size()) bad("unterminated string");
    ++i_;
    return out;
  }
  bool boolean() {
    if (s_.compare(i_, 4, "True") == 0) {
      i_ += 4;
      return true;
    }
    if (s_.compare(i_, 5, "False") == 0) {
      i_ += 5;
      return false;
    }
    bad("expected True or False");
  }
  int64_t integer() {
    if (!std::isdigit(static_cast<unsigned char>(peek()))) bad("expected a non-negative integer");
    int64_t v = 0;
    int digits = 0;
    while (std::isdigit(static_cast<unsigned char>(peek()))) {
      if (++digits > 15) bad("dimension too large");
      v = v * 10 + (s_[i_++] - '0');
    }
    if (peek() == 'L') ++i_;  // Python 2 long literal, written by old numpy
    return v;
  }
  Shape tuple() {
    Shape shape;
    expect('(');
    ws();
    bool trailing_comma = false;
    while (peek() != ')') {
      if (shape.size() == kMaxNpyDims) {
        fail("{}: arrays with more than {} dims are not supported (header: {})", name_, kMaxNpyDims,
             ascii_excerpt(s_));
      }
      shape.push_back(integer());
      ws();
      trailing_comma = false;
      if (peek() == ',') {
        ++i_;
        ws();
        trailing_comma = true;
      } else if (peek() != ')') {
        bad("expected ',' or ')' in shape");
      }
    }
    if (shape.size() == 1 && !trailing_comma) bad("shape (n) must be written (n,)");
    ++i_;  // ')'
    return shape;
  }

  const std::string& s_;
  size_t i_ = 0;
  size_t base_;
  const std::string& name_;
};

// How the elements of a descr are stored and what they load as.
enum class Elem { F4, F8, I1, I2, I4, I8, U1, U2, U4, B1 };

struct ElemType {
  Elem elem;
  size_t size;
  DType dtype;
};

ElemType parse_descr(const std::string& descr, const std::string& name) {
  if (descr.size() >= 2 && descr[1] == 'O') {
    fail("{}: object arrays (dtype '{}', pickled Python objects) are not supported", name,
         ascii_excerpt(descr));
  }
  if (descr.size() < 3) fail("{}: unsupported dtype '{}' in .npy header", name, ascii_excerpt(descr));
  const char order = descr[0];
  const std::string body = descr.substr(1);
  static const struct {
    const char* body;
    ElemType type;
  } kTypes[] = {
      {"f4", {Elem::F4, 4, DType::Float32}}, {"f8", {Elem::F8, 8, DType::Float32}},
      {"i1", {Elem::I1, 1, DType::Int64}},   {"i2", {Elem::I2, 2, DType::Int64}},
      {"i4", {Elem::I4, 4, DType::Int64}},   {"i8", {Elem::I8, 8, DType::Int64}},
      {"u1", {Elem::U1, 1, DType::UInt8}},   {"u2", {Elem::U2, 2, DType::Int64}},
      {"u4", {Elem::U4, 4, DType::Int64}},   {"b1", {Elem::B1, 1, DType::UInt8}},
  };
  for (const auto& t : kTypes) {
    if (body != t.body) continue;
    if (order == '<' || order == '=' || (t.type.size == 1 && (order == '|' || order == '>'))) return t.type;
    if (order == '>') {
      fail("{}: big-endian data (dtype '{}') is not supported; save it with arr.astype('<{}')", name,
           descr, body);
    }
    break;
  }
  fail("{}: unsupported dtype '{}' (supported: <f4 <f8 <i8 <i4 <i2 |i1 <u2 <u4 |u1 |b1)", name,
       ascii_excerpt(descr));
}

void decode(Elem e, const uint8_t* p, int64_t n, const Tensor& out) {
  switch (e) {
    case Elem::F4: std::memcpy(out.data<float>(), p, static_cast<size_t>(n) * 4); break;
    case Elem::F8: convert_le<double>(p, n, out.data<float>()); break;
    case Elem::I1: convert_le<int8_t>(p, n, out.data<int64_t>()); break;
    case Elem::I2: convert_le<int16_t>(p, n, out.data<int64_t>()); break;
    case Elem::I4: convert_le<int32_t>(p, n, out.data<int64_t>()); break;
    case Elem::I8: std::memcpy(out.data<int64_t>(), p, static_cast<size_t>(n) * 8); break;
    case Elem::U2: convert_le<uint16_t>(p, n, out.data<int64_t>()); break;
    case Elem::U4: convert_le<uint32_t>(p, n, out.data<int64_t>()); break;
    case Elem::U1:
    case Elem::B1: std::memcpy(out.data<uint8_t>(), p, static_cast<size_t>(n)); break;
  }
}

const char* npy_descr(DType t) {
  switch (t) {
    case DType::Float32: return "<f4";
    case DType::Int64: return "<i8";
    case DType::UInt8: return "|u1";
  }
  return "?";
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// ---- ZIP ----------------------------------------------------------------------------

constexpr uint32_t kEocdSig = 0x06054b50;
constexpr uint32_t kZip64LocatorSig = 0x07064b50;
constexpr uint32_t kCentralSig = 0x02014b50;
constexpr uint32_t kLocalSig = 0x04034b50;
constexpr size_t kEocdSize = 22;
constexpr size_t kCentralSize = 46;
constexpr size_t kLocalSize = 30;

[[noreturn]] void zip64_unsupported(const std::string& name) {
  fail("{}: ZIP64 archives (entries or archives over 4 GiB) are not supported; "
       "split the arrays into smaller .npz/.npy files",
       name);
}

// ---- datasets from arrays ------------------------------------------------------------

std::optional<std::string> find_key(const std::map<std::string, Tensor>& a, std::initializer_list<const char*> keys) {
  for (const char* k : keys) {
    if (a.count(k)) return std::string(k);
  }
  return std::nullopt;
}

Tensor make_features(const Tensor& x, const std::string& what) {
  const Shape& s = x.shape();
  switch (s.size()) {
    case 1: return kernel::reshape(x, {s[0], 1}).to(DType::Float32);
    case 2: return x.dtype() == DType::Float32 ? x : x.to(DType::Float32);
    case 3: {
      Tensor v = kernel::reshape(x, {s[0], 1, s[1], s[2]});
      return v.dtype() == DType::Int64 ? v.to(DType::Float32) : v;
    }
    case 4: {
      const auto is_channels = [](int64_t c) { return c == 1 || c == 3 || c == 4; };
      Tensor v = x;
      if (is_channels(s[3]) && !is_channels(s[1])) v = kernel::contiguous(kernel::permute(x, {0, 3, 1, 2}));
      return v.dtype() == DType::Int64 ? v.to(DType::Float32) : v;
    }
    default: fail("{}: features need 1 to 4 dims [N,...], got shape {}", what, shape_str(s));
  }
}

struct Labels {
  Tensor t;
  bool classification = true;
};

Labels make_labels(const Tensor& y, const std::string& what, int64_t n, const std::string& xwhat) {
  Tensor t = y;
  if (t.dim() == 2 && t.shape()[1] == 1) t = kernel::reshape(t, {t.shape()[0]});
  if (t.dim() != 1) fail("{}: labels need shape [N], got {}", what, shape_str(y.shape()));
  if (t.shape()[0] != n) fail("{}: {} examples but {} has {} labels", xwhat, n, what, t.shape()[0]);
  Labels out;
  if (t.dtype() == DType::Float32) {
    out.t = t;
    out.classification = false;
    return out;
  }
  out.t = t.dtype() == DType::Int64 ? kernel::contiguous(t) : t.to(DType::Int64);
  const int64_t* p = out.t.data<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    if (p[i] < 0) fail("{}: label {} at index {} is negative", what, p[i], i);
  }
  return out;
}

}  // namespace

// ---- NPY ------------------------------------------------------------------------------

Tensor parse_npy(const uint8_t* data, size_t size, const std::string& name) {
  if (size == 0) fail("{}: empty file, expected a .npy header", name);
  static const uint8_t kMagic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
  if (size < 10 || std::memcmp(data, kMagic, 6) != 0) {
    fail("{}: not a .npy file (missing the \\x93NUMPY magic), at byte 0", name);
  }
  const int major = data[6], minor = data[7];
  size_t preamble = 0, header_len = 0;
  if (major == 1 && minor == 0) {
    preamble = 10;
    header_len = le16(data + 8);
  } else if ((major == 2 || major == 3) && minor == 0) {
    if (size < 12) fail("{}: truncated .npy preamble ({} bytes)", name, size);
    preamble = 12;
    header_len = le32(data + 8);
  } else {
    fail("{}: unsupported .npy format version {}.{} (1.0, 2.0 and 3.0 are), at byte 6", name, major, minor);
  }
  if (header_len > size - preamble) {
    fail("{}: truncated .npy header: {} header bytes declared, {} in the file", name, header_len,
         size - preamble);
  }
  const std::string text(reinterpret_cast<const char*>(data + preamble), header_len);
  const NpyHeader h = HeaderParser(text, preamble, name).parse();
  const ElemType et = parse_descr(h.descr, name);
  if (h.fortran_order) {
    fail("{}: fortran_order arrays are not supported; save np.ascontiguousarray(arr) instead", name);
  }
  const uint64_t payload = size - preamble - header_len;
  uint64_t numel = 1;
  bool overflow = false;
  for (int64_t d : h.shape) overflow = __builtin_mul_overflow(numel, static_cast<uint64_t>(d), &numel) || overflow;
  if (std::find(h.shape.begin(), h.shape.end(), 0) != h.shape.end()) {
    // Empty, but the other dims still size the strides: they must stay representable.
    uint64_t extent = 1;
    for (int64_t d : h.shape) {
      if (d != 0 && (__builtin_mul_overflow(extent, static_cast<uint64_t>(d), &extent) || extent > (uint64_t{1} << 59))) {
        fail("{}: .npy shape {} is too large (its product overflows)", name, shape_str(h.shape));
      }
    }
    numel = 0;
    overflow = false;
  }
  uint64_t expected = 0;
  if (overflow || __builtin_mul_overflow(numel, uint64_t{et.size}, &expected)) {
    fail("{}: .npy shape {} of '{}' needs more than 2^64 data bytes, file has {} (truncated)", name,
         shape_str(h.shape), h.descr, payload);
  }
  if (payload != expected) {
    fail("{}: .npy shape {} of '{}' needs {} data bytes, file has {} ({}), at byte {}", name,
         shape_str(h.shape), h.descr, expected, payload, payload < expected ? "truncated" : "trailing data",
         preamble + header_len + std::min(payload, expected));
  }
  Tensor out = Tensor::empty(h.shape, et.dtype);
  if (numel > 0) decode(et.elem, data + preamble + header_len, static_cast<int64_t>(numel), out);
  return out;
}

Tensor read_npy(const std::string& path) {
  const std::vector<uint8_t> bytes = read_file_maybe_gzip(path);
  return parse_npy(bytes.data(), bytes.size(), path);
}

std::vector<uint8_t> encode_npy(const Tensor& t) {
  DEFT_CHECK(t.defined(), "encode_npy: undefined tensor");
  const Tensor c = t.contiguous_copy();
  std::string shape = "(";
  for (size_t i = 0; i < c.shape().size(); ++i) {
    shape += std::to_string(c.shape()[i]);
    if (c.shape().size() == 1 || i + 1 < c.shape().size()) shape += c.shape().size() == 1 ? "," : ", ";
  }
  shape += ")";
  std::string header =
      fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}", npy_descr(c.dtype()), shape);
  // np.save pads so that the data starts at a multiple of 64, ending with '\n'.
  const size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  DEFT_CHECK(header.size() <= 0xffff, "encode_npy: header too long for shape {}", shape_str(c.shape()));
  const size_t nbytes = static_cast<size_t>(c.numel()) * dtype_size(c.dtype());
  std::vector<uint8_t> out(10 + header.size() + nbytes);
  const uint8_t pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, static_cast<uint8_t>(header.size() & 0xff),
                           static_cast<uint8_t>(header.size() >> 8)};
  std::memcpy(out.data(), pre, 10);
  std::memcpy(out.data() + 10, header.data(), header.size());
  if (nbytes > 0) std::memcpy(out.data() + 10 + header.size(), c.raw_data(), nbytes);
  return out;
}

void write_npy(const std::string& path, const Tensor& t) { write_file_atomically(path, encode_npy(t)); }

// ---- NPZ ------------------------------------------------------------------------------

std::map<std::string, Tensor> parse_npz(const uint8_t* data, size_t size, const std::string& name) {
  if (size == 0) fail("{}: empty file, expected an .npz (ZIP) archive", name);
  // The end-of-central-directory record: last 22 bytes, or before a comment of up to 64 KiB.
  size_t eocd = SIZE_MAX;
  if (size >= kEocdSize) {
    const size_t lowest = size - kEocdSize > 0xffff ? size - kEocdSize - 0xffff : 0;
    for (size_t pos = size - kEocdSize + 1; pos-- > lowest;) {
      if (le32(data + pos) == kEocdSig && pos + kEocdSize + le16(data + pos + 20) == size) {
        eocd = pos;
        break;
      }
    }
  }
  if (eocd == SIZE_MAX) {
    fail("{}: not an .npz (ZIP) archive: no end-of-central-directory record{}", name,
         size >= 4 && le32(data) == kLocalSig ? " (truncated archive?)" : "");
  }
  const uint8_t* e = data + eocd;
  const uint16_t disk = le16(e + 4), cd_disk = le16(e + 6), n_disk = le16(e + 8), n_total = le16(e + 10);
  const uint32_t cd_size = le32(e + 12), cd_offset = le32(e + 16);
  if (n_total == 0xffff || cd_size == 0xffffffffu || cd_offset == 0xffffffffu ||
      (eocd >= 20 && le32(data + eocd - 20) == kZip64LocatorSig)) {
    zip64_unsupported(name);
  }
  if (disk != 0 || cd_disk != 0 || n_disk != n_total) {
    fail("{}: multi-part ZIP archives are not supported, at byte {}", name, eocd);
  }
  if (uint64_t{cd_offset} + cd_size > eocd) {
    fail("{}: corrupt ZIP: central directory at byte {} ({} bytes) runs past its end record at byte {}", name,
         cd_offset, cd_size, eocd);
  }

  std::map<std::string, Tensor> out;
  size_t p = cd_offset;
  const size_t cd_end = size_t{cd_offset} + cd_size;
  for (unsigned k = 0; k < n_total; ++k) {
    if (p + kCentralSize > cd_end || le32(data + p) != kCentralSig) {
      fail("{}: corrupt ZIP: bad central directory entry {} of {}, at byte {}", name, k + 1, n_total, p);
    }
    const uint8_t* c = data + p;
    const uint16_t flags = le16(c + 8), method = le16(c + 10);
    const uint32_t crc = le32(c + 16), csize = le32(c + 20), usize = le32(c + 24);
    const uint16_t nlen = le16(c + 28), xlen = le16(c + 30), clen = le16(c + 32);
    const uint32_t local = le32(c + 42);
    const size_t next = p + kCentralSize + nlen + xlen + clen;
    if (next > cd_end) {
      fail("{}: corrupt ZIP: central directory entry {} runs past the directory, at byte {}", name, k + 1, p);
    }
    const std::string entry(reinterpret_cast<const char*>(c + kCentralSize), nlen);
    const std::string where = fmt::format("{}: entry '{}'", name, ascii_excerpt(entry));
    p = next;
    if (csize == 0xffffffffu || usize == 0xffffffffu || local == 0xffffffffu) zip64_unsupported(name);
    if (!entry.empty() && entry.back() == '/') continue;  // a folder
    if (!ends_with(entry, ".npy")) continue;              // not an array (np.load ignores these too)
    if (flags & 1) fail("{}: encrypted ZIP entries are not supported", where);
    if (method != 0 && method != 8) {
      fail("{}: ZIP compression method {} is not supported (stored and deflate are)", where, method);
    }
    if (uint64_t{local} + kLocalSize > cd_offset || le32(data + local) != kLocalSig) {
      fail("{}: corrupt ZIP: no local header at byte {}", where, local);
    }
    const uint64_t start = uint64_t{local} + kLocalSize + le16(data + local + 26) + le16(data + local + 28);
    if (start + csize > cd_offset) {
      fail("{}: corrupt ZIP: {} bytes of data at byte {} run past the central directory at byte {}", where,
           csize, start, cd_offset);
    }
    const uint8_t* body = data + start;
    std::vector<uint8_t> inflated;
    if (method == 8) {
      inflated = inflate_raw(body, csize, usize, where);
      body = inflated.data();
    } else if (csize != usize) {
      fail("{}: corrupt ZIP: stored entry has compressed size {} but size {}", where, csize, usize);
    }
    const uint32_t actual_crc =
        static_cast<uint32_t>(crc32(0L, usize ? body : Z_NULL, static_cast<uInt>(usize)));
    if (actual_crc != crc) {
      fail("{}: corrupt ZIP: CRC-32 mismatch (stored {:08x}, data {:08x}), data at byte {}", where, crc,
           actual_crc, start);
    }
    std::string key = entry.substr(0, entry.size() - 4);
    if (out.count(key)) fail("{}: duplicate array '{}'", name, ascii_excerpt(key));
    out.emplace(std::move(key), parse_npy(body, usize, where));
  }
  if (p != cd_end) {
    fail("{}: corrupt ZIP: central directory holds {} bytes after its {} entries, at byte {}", name, cd_end - p,
         n_total, p);
  }
  return out;
}

std::map<std::string, Tensor> read_npz(const std::string& path) {
  // Read as stored: an .npz is a ZIP, never gzip (read_file_maybe_gzip only decodes 1f 8b data).
  const std::vector<uint8_t> bytes = read_file_maybe_gzip(path);
  return parse_npz(bytes.data(), bytes.size(), path);
}

// ---- datasets ------------------------------------------------------------------------------

DatasetSplits dataset_from_arrays(const std::map<std::string, Tensor>& arrays, const std::string& source) {
  struct SplitKeys {
    const char* split;
    std::optional<std::string> x, y;
  };
  SplitKeys keys[] = {
      {"train", find_key(arrays, {"x_train", "x"}), find_key(arrays, {"y_train", "y"})},
      {"validation", find_key(arrays, {"x_val", "x_valid", "x_validation"}),
       find_key(arrays, {"y_val", "y_valid", "y_validation"})},
      {"test", find_key(arrays, {"x_test"}), find_key(arrays, {"y_test"})},
  };
  if (!keys[0].x) {
    std::string names;
    for (const auto& [k, v] : arrays) names += (names.empty() ? "" : ", ") + ascii_excerpt(k);
    fail("{}: no array named x or x_train (arrays: {}); name the features x (and labels y), or "
         "x_train/y_train with optional x_test/y_test",
         source, names.empty() ? "none" : names);
  }
  const bool labeled = keys[0].y.has_value();
  for (const SplitKeys& s : keys) {
    if (s.y && !s.x) fail("{}: labels '{}' without features (x_{})", source, *s.y, s.split);
    if (s.x && labeled && !s.y) fail("{}: features '{}' have no labels (y_{})", source, *s.x, s.split);
    if (s.x && !labeled && s.y) fail("{}: '{}' holds labels but the training split has none", source, *s.y);
  }

  DatasetSplits out;
  int64_t top = -1;
  std::optional<bool> classification;
  for (const SplitKeys& s : keys) {
    if (!s.x) continue;
    Dataset d;
    d.name = source;
    d.source = source;
    const std::string xwhat = fmt::format("{}: {}", source, *s.x);
    d.features = make_features(arrays.at(*s.x), xwhat);
    if (s.y) {
      Labels l = make_labels(arrays.at(*s.y), fmt::format("{}: {}", source, *s.y), d.features.shape()[0], xwhat);
      if (classification && *classification != l.classification) {
        fail("{}: '{}' holds {} labels but the training labels are {}", source, *s.y,
             l.classification ? "integer" : "floating-point", *classification ? "integers" : "floating point");
      }
      classification = l.classification;
      d.labels = l.t;
      d.task = l.classification ? Task::Classification : Task::Regression;
      if (l.classification) {
        const int64_t* p = l.t.data<int64_t>();
        for (int64_t i = 0, n = l.t.numel(); i < n; ++i) top = std::max(top, p[i]);
      }
    }
    if (s.split == std::string("train")) {
      out.train = std::move(d);
    } else if (s.split == std::string("validation")) {
      out.validation = std::move(d);
    } else {
      out.test = std::move(d);
    }
  }
  for (Dataset* d : {&out.train, out.validation ? &*out.validation : nullptr, out.test ? &*out.test : nullptr}) {
    if (d == nullptr) continue;
    if (d != &out.train && d->features.dim() > 1 &&
        !std::equal(d->features.shape().begin() + 1, d->features.shape().end(),
                    out.train.features.shape().begin() + 1, out.train.features.shape().end())) {
      fail("{}: training examples have shape {} but another split's have {}", source,
           shape_str(Shape(out.train.features.shape().begin() + 1, out.train.features.shape().end())),
           shape_str(Shape(d->features.shape().begin() + 1, d->features.shape().end())));
    }
    if (d->task == Task::Classification && d->labels.defined()) {
      for (int64_t k = 0; k <= top; ++k) d->class_names.push_back(std::to_string(k));
    }
  }
  return out;
}

DatasetSplits load_npz_dataset(const std::string& path) { return dataset_from_arrays(read_npz(path), path); }

DatasetSplits load_npy_folder(const std::string& dir) {
  static const char* kNames[] = {"x",       "y",       "x_train",      "y_train",      "x_test", "y_test",
                                 "x_val",   "y_val",   "x_valid",      "y_valid",      "x_validation",
                                 "y_validation"};
  std::map<std::string, Tensor> arrays;
  for (const char* n : kNames) {
    const fs::path p = fs::path(dir) / (std::string(n) + ".npy");
    std::error_code ec;
    if (fs::is_regular_file(p, ec)) arrays.emplace(n, read_npy(p.string()));
  }
  return dataset_from_arrays(arrays, dir);
}

DatasetSplits load_npy_file(const std::string& path) { return dataset_from_arrays({{"x", read_npy(path)}}, path); }

}  // namespace deft::data
