#include "deft/tensor/safetensors.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <set>
#include <unordered_set>

#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "deft/tensor/bytes.h"
#include "deft/tensor/file_io.h"
#include "deft/tensor/text_util.h"

namespace deft {

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian and is copied as is: a big-endian host needs byte swaps");

namespace {

constexpr size_t kMaxDims = 64;  // far beyond any model; bounds what a hostile header can make us allocate
// Shapes with a 0 still size the strides of the empty tensor: keep the other dims' product representable.
constexpr uint64_t kMaxExtent = uint64_t{1} << 62;

// ---- dtypes ----------------------------------------------------------------------------

enum class Conv { Copy, F16, BF16, F64, I8, I16, I32, U16, U32, U64 };

struct StoredType {
  const char* name;
  size_t size;
  DType loads_as;
  Conv conv;
};

constexpr StoredType kStoredTypes[] = {
    {"F32", 4, DType::Float32, Conv::Copy}, {"F16", 2, DType::Float32, Conv::F16},
    {"BF16", 2, DType::Float32, Conv::BF16}, {"F64", 8, DType::Float32, Conv::F64},
    {"I64", 8, DType::Int64, Conv::Copy},   {"I32", 4, DType::Int64, Conv::I32},
    {"I16", 2, DType::Int64, Conv::I16},    {"I8", 1, DType::Int64, Conv::I8},
    {"U64", 8, DType::Int64, Conv::U64},    {"U32", 4, DType::Int64, Conv::U32},
    {"U16", 2, DType::Int64, Conv::U16},    {"U8", 1, DType::UInt8, Conv::Copy},
    {"BOOL", 1, DType::UInt8, Conv::Copy},
};

const StoredType* find_stored_type(const std::string& name) {
  for (const StoredType& t : kStoredTypes) {
    if (name == t.name) return &t;
  }
  return nullptr;
}

const char* stored_name(DType t) {
  switch (t) {
    case DType::Float32: return "F32";
    case DType::Int64: return "I64";
    case DType::UInt8: return "U8";
  }
  fail<Error>("write_safetensors: unhandled dtype {}", static_cast<int>(t));
}

// IEEE half -> float, exact (every half is a float).
float half_to_float(uint16_t h) {
  const uint32_t sign = uint32_t{h & 0x8000u} << 16;
  const uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ffu;
  if (exp == 0) {  // zero or subnormal: mant * 2^-24
    const float v = std::ldexp(static_cast<float>(mant), -24);
    return sign ? -v : v;
  }
  const uint32_t bits = exp == 31 ? sign | 0x7f800000u | (mant << 13) : sign | ((exp + 112) << 23) | (mant << 13);
  return std::bit_cast<float>(bits);
}

// ---- messages ---------------------------------------------------------------------------

// A short, printable excerpt of an untrusted name for error messages. Control
// characters and invalid bytes are escaped; valid UTF-8 text is kept. Text that
// may not be UTF-8 goes through ascii_excerpt (text_util.h) instead.
std::string printable(std::string_view s, size_t max = 80) {
  std::string out;
  for (size_t i = 0; i < s.size() && i < max; ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f || c == '\\') {
      out += fmt::format("\\x{:02x}", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  if (s.size() > max) out += "...";
  return out;
}

// ---- header ------------------------------------------------------------------------------

struct Entry {
  std::string name;
  std::string dtype;
  Shape shape;
  std::vector<uint64_t> offsets;
  bool has_dtype = false, has_shape = false, has_offsets = false;
  const StoredType* type = nullptr;
  uint64_t nbytes = 0;
};

struct Header {
  std::vector<Entry> entries;  // header order until validate() sorts them by offset
  std::map<std::string, std::string> metadata;
};

// Streams the header JSON (nlohmann's SAX interface) straight into Entries, so
// the schema is enforced as it is read: duplicate keys (which a DOM parse would
// silently merge) are caught, and a hostile header never becomes a large DOM.
class HeaderReader : public nlohmann::json_sax<nlohmann::json> {
 public:
  HeaderReader(const std::string& file, Header& out) : file_(file), out_(out) {}

  bool null() override { return scalar("null"); }
  bool boolean(bool) override { return scalar("a boolean"); }
  bool number_integer(number_integer_t v) override {
    if (v >= 0) return number_unsigned(static_cast<number_unsigned_t>(v));
    return scalar(fmt::format("the negative number {}", v));
  }
  bool number_unsigned(number_unsigned_t v) override {
    if (skip_ > 0) return true;
    const Ctx c = top();
    if (c == Ctx::Shape) {
      Entry& e = out_.entries.back();
      if (e.shape.size() == kMaxDims) fail("{}: shape has more than {} dims", where(), kMaxDims);
      if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        fail("{}: shape dimension {} is too large", where(), v);
      }
      e.shape.push_back(static_cast<int64_t>(v));
      return true;
    }
    if (c == Ctx::Offsets) {
      Entry& e = out_.entries.back();
      if (e.offsets.size() == 2) fail("{}: data_offsets must be [begin, end], got more than 2 numbers", where());
      e.offsets.push_back(v);
      return true;
    }
    return scalar(fmt::format("the number {}", v));
  }
  bool number_float(number_float_t, const string_t& s) override {
    return scalar(fmt::format("the number {}", ascii_excerpt(s, 40)));
  }
  bool string(string_t& v) override {
    if (skip_ > 0) return true;
    const Ctx c = top();
    if (c == Ctx::Tensor && field_ == "dtype") {
      out_.entries.back().dtype = std::move(v);
      return true;
    }
    if (c == Ctx::Metadata) {
      out_.metadata[key_] = std::move(v);
      return true;
    }
    return scalar("a string");
  }
  bool binary(binary_t&) override { return scalar("binary data"); }

  bool start_object(std::size_t) override {
    if (skip_ > 0 || skip_unknown_field()) return ++skip_, true;
    if (stack_.empty()) return push(Ctx::Root);
    if (top() == Ctx::Root) {
      field_.clear();
      return push(key_ == "__metadata__" ? Ctx::Metadata : Ctx::Tensor);
    }
    return scalar("an object");
  }
  bool key(string_t& k) override {
    if (skip_ > 0) return true;
    switch (top()) {
      case Ctx::Root:
        if (!root_keys_.insert(k).second) {
          fail("{}: duplicate {} '{}' in the header", file_, k == "__metadata__" ? "key" : "tensor name",
               printable(k));
        }
        if (k != "__metadata__") {
          out_.entries.emplace_back();
          out_.entries.back().name = k;
        }
        key_ = std::move(k);
        break;
      case Ctx::Tensor: {
        Entry& e = out_.entries.back();
        bool* seen = k == "dtype" ? &e.has_dtype : k == "shape" ? &e.has_shape : k == "data_offsets" ? &e.has_offsets : nullptr;
        if (seen != nullptr) {
          if (*seen) fail("{}: duplicate field '{}'", where(), k);
          *seen = true;
        }
        field_ = std::move(k);
        break;
      }
      case Ctx::Metadata:
        if (out_.metadata.count(k)) fail("{}: duplicate metadata key '{}'", file_, printable(k));
        key_ = std::move(k);
        break;
      default: break;  // arrays have no keys
    }
    return true;
  }
  bool end_object() override {
    if (skip_ > 0) return --skip_, true;
    if (top() == Ctx::Tensor) {
      const Entry& e = out_.entries.back();
      const char* missing = !e.has_dtype ? "dtype" : !e.has_shape ? "shape" : !e.has_offsets ? "data_offsets" : nullptr;
      if (missing != nullptr) fail("{}: no '{}' field", where(), missing);
    }
    stack_.pop_back();
    return true;
  }
  bool start_array(std::size_t) override {
    if (skip_ > 0 || skip_unknown_field()) return ++skip_, true;
    if (!stack_.empty() && top() == Ctx::Tensor && field_ == "shape") return push(Ctx::Shape);
    if (!stack_.empty() && top() == Ctx::Tensor && field_ == "data_offsets") return push(Ctx::Offsets);
    return scalar("an array");
  }
  bool end_array() override {
    if (skip_ > 0) return --skip_, true;
    if (top() == Ctx::Offsets && out_.entries.back().offsets.size() != 2) {
      fail("{}: data_offsets must be [begin, end], got {} number(s)", where(), out_.entries.back().offsets.size());
    }
    stack_.pop_back();
    return true;
  }
  bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception& ex) override {
    // nlohmann's message reads "[json.exception.parse_error.101] parse error at line 1, column 9: ...".
    std::string what = ex.what();
    const size_t close = what.find("] ");
    if (close != std::string::npos) what = what.substr(close + 2);
    fail("{}: the header is not valid JSON: {} (near byte {} of the file)", file_, ascii_excerpt(what, 200),
         8 + position);
  }

 private:
  enum class Ctx { Root, Tensor, Metadata, Shape, Offsets };

  Ctx top() const { return stack_.back(); }
  bool push(Ctx c) {
    stack_.push_back(c);
    return true;
  }
  // A value of a field the format does not define: ignored, whatever it holds.
  bool skip_unknown_field() const {
    return !stack_.empty() && top() == Ctx::Tensor && field_ != "dtype" && field_ != "shape" &&
           field_ != "data_offsets";
  }
  std::string where() const { return fmt::format("{}: tensor '{}'", file_, printable(out_.entries.back().name)); }

  // A value of a kind the schema does not allow where it appeared.
  bool scalar(const std::string& got) {
    if (skip_ > 0 || skip_unknown_field()) return true;
    if (stack_.empty()) fail("{}: the header must be a JSON object, got {}", file_, got);
    switch (top()) {
      case Ctx::Root:
        if (key_ == "__metadata__") fail("{}: '__metadata__' must be an object of strings, got {}", file_, got);
        fail("{}: its entry must be an object with dtype, shape and data_offsets, got {}", where(), got);
      case Ctx::Tensor:
        if (field_ == "dtype") fail("{}: dtype must be a string such as \"F32\", got {}", where(), got);
        if (field_ == "shape") fail("{}: shape must be an array of non-negative integers, got {}", where(), got);
        fail("{}: data_offsets must be [begin, end], got {}", where(), got);
      case Ctx::Metadata:
        fail("{}: metadata '{}' must be a string (safetensors metadata maps strings to strings), got {}", file_,
             printable(key_), got);
      case Ctx::Shape: fail("{}: shape must hold non-negative integers, got {}", where(), got);
      case Ctx::Offsets: fail("{}: data_offsets must hold non-negative integers, got {}", where(), got);
    }
    return false;
  }

  const std::string& file_;
  Header& out_;
  std::vector<Ctx> stack_;
  std::unordered_set<std::string> root_keys_;
  std::string key_;    // the current key of the root object or of __metadata__
  std::string field_;  // the current field of a tensor entry
  int skip_ = 0;       // open containers inside an ignored field's value
};

// Checks the 8-byte length against the file; returns N.
uint64_t header_length(const uint8_t* first8, uint64_t file_size, const std::string& file) {
  if (file_size < 8) {
    fail("{}: not a safetensors file: {} bytes, too short for the 8-byte header length", file, file_size);
  }
  uint64_t n = 0;
  std::memcpy(&n, first8, 8);
  if (n > kSafetensorsMaxHeader) {
    fail("{}: header length {} exceeds the limit of {} bytes (not a safetensors file?)", file, n,
         kSafetensorsMaxHeader);
  }
  if (n > file_size - 8) {
    fail("{}: header length {} runs past the end of the file ({} bytes; truncated?)", file, n, file_size);
  }
  return n;
}

Header parse_header(std::string_view json, const std::string& file) {
  if (json.empty() || json[0] != '{') {
    fail("{}: the header must start with '{{' (a JSON object), got '{}' (not a safetensors file?)", file,
         ascii_excerpt(json.substr(0, 16)));
  }
  Header h;
  HeaderReader reader(file, h);
  nlohmann::json::sax_parse(json.begin(), json.end(), &reader);
  return h;
}

// Checks each entry against its dtype and shape, then that the entries, sorted by
// offset, tile the data buffer of `buffer_size` bytes exactly.
void validate(Header& h, uint64_t buffer_size, uint64_t file_size, const std::string& file) {
  for (Entry& e : h.entries) {
    const std::string where = fmt::format("{}: tensor '{}'", file, printable(e.name));
    e.type = find_stored_type(e.dtype);
    if (e.type == nullptr) {
      static const std::set<std::string> kKnown = {"F8_E5M2", "F8_E4M3", "F8_E8M0", "F6_E2M3", "F6_E3M2", "F4",
                                                   "C64"};
      fail("{}: {} dtype '{}' (supported: F32 F16 BF16 F64 I64 I32 I16 I8 U64 U32 U16 U8 BOOL)", where,
           kKnown.count(e.dtype) ? "unsupported" : "unknown", printable(e.dtype, 20));
    }
    uint64_t numel = 1, extent = 1;
    bool overflow = false;
    for (int64_t d : e.shape) {
      const uint64_t u = static_cast<uint64_t>(d);
      overflow = __builtin_mul_overflow(numel, u, &numel) || overflow;
      if (u != 0 && (__builtin_mul_overflow(extent, u, &extent) || extent > kMaxExtent)) {
        fail("{}: shape {} is too large (its product overflows)", where, shape_str(e.shape));
      }
    }
    if (numel == 0) overflow = false;
    if (overflow || __builtin_mul_overflow(numel, uint64_t{e.type->size}, &e.nbytes)) {
      fail("{}: shape {} of {} needs more than 2^64 bytes", where, shape_str(e.shape), e.dtype);
    }
    const uint64_t begin = e.offsets[0], end = e.offsets[1];
    if (end < begin) fail("{}: data_offsets [{}, {}] end before they begin", where, begin, end);
    if (end - begin != e.nbytes) {
      fail("{}: shape {} of {} needs {} bytes but data_offsets [{}, {}] span {}", where, shape_str(e.shape),
           e.dtype, e.nbytes, begin, end, end - begin);
    }
  }
  // Empty tensors share an offset with their neighbour; stable_sort keeps header order among them.
  std::stable_sort(h.entries.begin(), h.entries.end(), [](const Entry& a, const Entry& b) {
    return a.offsets < b.offsets;
  });
  uint64_t covered = 0;
  const Entry* prev = nullptr;
  for (const Entry& e : h.entries) {
    const uint64_t begin = e.offsets[0], end = e.offsets[1];
    const std::string where = fmt::format("{}: tensor '{}'", file, printable(e.name));
    if (begin < covered) {
      fail("{}: data_offsets [{}, {}] overlap tensor '{}' [{}, {}]", where, begin, end, printable(prev->name),
           prev->offsets[0], prev->offsets[1]);
    }
    if (begin > covered) {
      if (prev == nullptr) {
        fail("{}: data_offsets [{}, {}] leave a gap: the first tensor must start at byte 0 of the data buffer",
             where, begin, end);
      }
      fail("{}: data_offsets [{}, {}] leave a gap of {} bytes after tensor '{}' [{}, {}]", where, begin, end,
           begin - covered, printable(prev->name), prev->offsets[0], prev->offsets[1]);
    }
    covered = end;
    prev = &e;
  }
  if (covered > buffer_size) {
    fail("{}: truncated: tensor '{}' ends at byte {} of the data buffer but the file holds only {} data bytes "
         "({} bytes in all, {} expected)",
         file, printable(prev->name), covered, buffer_size, file_size, file_size - buffer_size + covered);
  }
  if (covered < buffer_size) {
    fail("{}: {} bytes of trailing data after the last tensor (the tensors cover {} of the {} data bytes)", file,
         buffer_size - covered, covered, buffer_size);
  }
}

void decode(const Entry& e, const uint8_t* p, const Tensor& out, const std::string& file) {
  const int64_t n = out.numel();
  switch (e.type->conv) {
    case Conv::Copy: std::memcpy(out.raw_data(), p, e.nbytes); break;
    case Conv::F64: convert_le<double>(p, n, out.data<float>()); break;
    case Conv::I8: convert_le<int8_t>(p, n, out.data<int64_t>()); break;
    case Conv::I16: convert_le<int16_t>(p, n, out.data<int64_t>()); break;
    case Conv::I32: convert_le<int32_t>(p, n, out.data<int64_t>()); break;
    case Conv::U16: convert_le<uint16_t>(p, n, out.data<int64_t>()); break;
    case Conv::U32: convert_le<uint32_t>(p, n, out.data<int64_t>()); break;
    case Conv::U64: {
      int64_t* o = out.data<int64_t>();
      for (int64_t i = 0; i < n; ++i) {
        uint64_t v;
        std::memcpy(&v, p + i * 8, 8);
        if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
          fail("{}: tensor '{}': U64 value {} at index {} does not fit int64", file, printable(e.name), v, i);
        }
        o[i] = static_cast<int64_t>(v);
      }
      break;
    }
    case Conv::F16: {
      float* o = out.data<float>();
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, p + i * 2, 2);
        o[i] = half_to_float(h);
      }
      break;
    }
    case Conv::BF16: {
      float* o = out.data<float>();
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, p + i * 2, 2);
        o[i] = std::bit_cast<float>(uint32_t{h} << 16);
      }
      break;
    }
  }
}

// Builds the tensors of a validated header. `read(offset, dst, n)` fills `dst`
// from the data buffer; stored-as-loaded tensors are read straight into their storage.
template <class Read>
SafetensorsFile load(Header h, const std::string& file, Read&& read) {
  SafetensorsFile f;
  f.source = file;
  f.metadata = std::move(h.metadata);
  f.tensors.reserve(h.entries.size());
  std::vector<uint8_t> staging;
  for (Entry& e : h.entries) {
    Tensor t = Tensor::empty(e.shape, e.type->loads_as);
    if (e.nbytes > 0) {
      if (e.type->conv == Conv::Copy) {
        read(e.offsets[0], t.raw_data(), static_cast<size_t>(e.nbytes));
      } else {
        staging.resize(static_cast<size_t>(e.nbytes));
        read(e.offsets[0], staging.data(), staging.size());
        decode(e, staging.data(), t, file);
      }
    }
    f.tensors.emplace_back(std::move(e.name), std::move(t));
    f.stored_dtypes.push_back(std::move(e.dtype));
  }
  return f;
}

// ---- writing ---------------------------------------------------------------------------

std::string json_string(const std::string& s, const char* what) {
  try {
    return nlohmann::json(s).dump();
  } catch (const nlohmann::json::exception&) {
    fail("write_safetensors: {} '{}' is not valid UTF-8", what, ascii_excerpt(s, 120));
  }
}

// The 8-byte length and the padded header for `tensors`, after checking them.
std::string encode_header(const std::vector<std::pair<std::string, Tensor>>& tensors,
                          const std::map<std::string, std::string>& metadata,
                          const std::map<std::string, std::string>& stored_dtypes) {
  for (const auto& entry : stored_dtypes) {
    const std::string& name = entry.first;  // a plain reference: clang 14 cannot capture structured bindings
    const std::string& dtype = entry.second;
    const auto it =
        std::find_if(tensors.begin(), tensors.end(), [&](const auto& t) { return t.first == name; });
    DEFT_CHECK(it != tensors.end(),
               "write_safetensors: stored dtype given for '{}', which is not a tensor written",
               printable(name));
    const bool one_byte = dtype == "I8" || dtype == "U8" || dtype == "BOOL";
    DEFT_CHECK(
        it->second.defined() && it->second.dtype() == DType::UInt8 && one_byte,
        "write_safetensors: tensor '{}' cannot be stored as '{}' (only UInt8 tensors, as I8, U8 or BOOL)",
        printable(name), printable(dtype, 20));
  }
  std::string h = "{";
  if (!metadata.empty()) {
    h += "\"__metadata__\":{";
    bool first = true;
    for (const auto& [k, v] : metadata) {
      if (!first) h += ',';
      first = false;
      h += json_string(k, "metadata key");
      h += ':';
      h += json_string(v, "metadata value");
    }
    h += '}';
  }
  std::unordered_set<std::string_view> names;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    DEFT_CHECK(t.defined(), "write_safetensors: tensor '{}' is undefined", printable(name));
    DEFT_CHECK(name != "__metadata__", "write_safetensors: '__metadata__' is reserved and cannot name a tensor");
    DEFT_CHECK(names.insert(name).second, "write_safetensors: duplicate tensor name '{}'", printable(name));
    const uint64_t nbytes = static_cast<uint64_t>(t.numel()) * dtype_size(t.dtype());
    if (h.size() > 1) h += ',';
    h += json_string(name, "tensor name");
    const auto renamed = stored_dtypes.find(name);
    const std::string dtype = renamed != stored_dtypes.end() ? renamed->second : stored_name(t.dtype());
    h += fmt::format(":{{\"dtype\":\"{}\",\"shape\":[{}],\"data_offsets\":[{},{}]}}", dtype,
                     fmt::join(t.shape(), ","), offset, offset + nbytes);
    offset += nbytes;
  }
  h += '}';
  // The reference writer pads with spaces so the data buffer starts 8-byte aligned.
  h.append((8 - h.size() % 8) % 8, ' ');
  DEFT_CHECK(h.size() <= kSafetensorsMaxHeader, "write_safetensors: the header would take {} bytes, over the {} limit",
             h.size(), kSafetensorsMaxHeader);
  std::string out(8, '\0');
  const uint64_t n = h.size();
  std::memcpy(out.data(), &n, 8);
  return out + h;
}

// Appends the tensors' data in logical order; a view is copied one tensor at a time.
template <class Out>
void write_data(const std::vector<std::pair<std::string, Tensor>>& tensors, Out& out) {
  for (const auto& [name, t] : tensors) {
    const size_t nbytes = static_cast<size_t>(t.numel()) * dtype_size(t.dtype());
    if (nbytes == 0) continue;
    const Tensor c = t.contiguous_copy();
    out.write(c.raw_data(), nbytes);
  }
}

}  // namespace

const Tensor* SafetensorsFile::find(std::string_view name) const {
  for (const auto& [n, t] : tensors) {
    if (n == name) return &t;
  }
  return nullptr;
}

const Tensor& SafetensorsFile::at(std::string_view name) const {
  if (const Tensor* t = find(name)) return *t;
  std::string names;
  for (size_t i = 0; i < tensors.size() && i < 10; ++i) names += (i ? ", " : "") + printable(tensors[i].first);
  if (tensors.size() > 10) names += fmt::format(", ... ({} in all)", tensors.size());
  fail("{}: no tensor named '{}' (tensors: {})", source, printable(name), names.empty() ? "none" : names);
}

std::string encode_safetensors(const std::vector<std::pair<std::string, Tensor>>& tensors,
                               const std::map<std::string, std::string>& metadata,
                               const std::map<std::string, std::string>& stored_dtypes) {
  struct StringOut {
    std::string s;
    void write(const void* p, size_t n) { s.append(static_cast<const char*>(p), n); }
  } out{encode_header(tensors, metadata, stored_dtypes)};
  write_data(tensors, out);
  return std::move(out.s);
}

void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata,
                       const std::map<std::string, std::string>& stored_dtypes) {
  const std::string header =
      encode_header(tensors, metadata, stored_dtypes);  // checks before the file is touched
  write_file_atomically(path, [&](FileSink& out) {
    out.write(header);
    write_data(tensors, out);
  });
}

SafetensorsFile read_safetensors(const std::string& path) {
  const InputFile in(path);
  uint8_t first8[8] = {};
  if (in.size() >= 8) in.read_at(0, first8, 8);
  const uint64_t n = header_length(first8, in.size(), path);
  std::string json(static_cast<size_t>(n), '\0');
  in.read_at(8, json.data(), json.size());
  Header h = parse_header(json, path);
  validate(h, in.size() - 8 - n, in.size(), path);
  const uint64_t base = 8 + n;
  return load(std::move(h), path, [&](uint64_t offset, void* dst, size_t len) { in.read_at(base + offset, dst, len); });
}

SafetensorsFile read_safetensors_bytes(std::string_view bytes, const std::string& name) {
  const uint64_t n = header_length(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), name);
  Header h = parse_header(bytes.substr(8, static_cast<size_t>(n)), name);
  validate(h, bytes.size() - 8 - n, bytes.size(), name);
  const char* base = bytes.data() + 8 + n;
  return load(std::move(h), name, [&](uint64_t offset, void* dst, size_t len) {
    std::memcpy(dst, base + offset, len);
  });
}

}  // namespace deft
