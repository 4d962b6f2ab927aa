// The safetensors container: deft's model files (.deft) and a format other tools read.
//
//   write_safetensors("m.deft", {{"fc1.weight", w}, {"fc1.bias", b}}, {{"arch", "mlp"}});
//   SafetensorsFile f = read_safetensors("m.deft");
//   Tensor w = f.at("fc1.weight");
//   std::string arch = f.metadata.at("arch");
//
// Layout (https://github.com/huggingface/safetensors):
//   8 bytes   N, the header length, unsigned little-endian
//   N bytes   UTF-8 JSON: {"__metadata__": {"key": "value", ...},
//                          "name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...}
//   the rest  the data buffer: each tensor's elements, row-major, little-endian;
//             offsets count from the start of this buffer
//
// Writing: tensors in the order given, packed with no gaps; "__metadata__" first;
// the header padded with spaces to a multiple of 8 bytes, as the reference writer does;
// Float32 -> F32, Int64 -> I64, UInt8 -> U8; views (transposes, slices) are written
// in logical order; the file is replaced atomically (deft/tensor/file_io.h).
//
// Reading applies the reference implementation's rules and a few more, and throws
// InputError naming the file and the tensor or field for any violation: the header
// length must fit the file and be at most 100,000,000 bytes; the header must be
// a JSON object (UTF-8, starting with '{') with no duplicate keys; each tensor
// needs a dtype, a shape of non-negative integers and two data_offsets; shape x
// dtype size must equal end - begin without overflowing; sorted by offset, the
// tensors must tile the data buffer exactly (first at 0, each starting where the
// previous ends, the last ending at the end of the file); metadata values must be
// strings. Unknown fields in a tensor entry are ignored, as the reference does.
// Stored dtypes and what they load as:
//   F32, F16, BF16, F64 -> Float32 (F64 rounded to nearest)
//   I64, I32, I16, I8, U32, U16 -> Int64 (exact); U64 -> Int64 (values over 2^63-1 are an error)
//   U8, BOOL -> UInt8
// F8_* and other dtypes are InputErrors that name the dtype and the tensor.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "deft/tensor/tensor.h"

namespace deft {

// The reference implementation's header size limit.
inline constexpr uint64_t kSafetensorsMaxHeader = 100'000'000;

struct SafetensorsFile {
  std::string source;  // the path (or name) read, for error messages
  // In file order (by data offset); contiguous tensors of the dtypes listed above.
  std::vector<std::pair<std::string, Tensor>> tensors;
  std::map<std::string, std::string> metadata;
  // The stored dtype of each tensor ("F32", "F16", ...), in the order of `tensors`.
  std::vector<std::string> stored_dtypes;

  bool contains(std::string_view name) const { return find(name) != nullptr; }
  const Tensor* find(std::string_view name) const;  // nullptr when absent
  // InputError naming the file and the missing tensor.
  const Tensor& at(std::string_view name) const;
};

// Writes `tensors` (names unique, not "__metadata__", valid UTF-8; tensors defined)
// and `metadata` to `path` atomically. InputError for invalid names or an unwritable path.
// `stored_dtypes` renames the stored dtype of UInt8 tensors, by tensor name: "I8" for
// bytes that are two's-complement int8 (quantised weights; they read back as Int64),
// "BOOL" or "U8"; any other entry is an InputError.
void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata = {},
                       const std::map<std::string, std::string>& stored_dtypes = {});
// The complete file as bytes (what write_safetensors writes).
std::string encode_safetensors(const std::vector<std::pair<std::string, Tensor>>& tensors,
                               const std::map<std::string, std::string>& metadata = {},
                               const std::map<std::string, std::string>& stored_dtypes = {});

// Reads and validates a file. Reads the header first and allocates only after it
// has been checked against the file's size.
SafetensorsFile read_safetensors(const std::string& path);
// The same for bytes in memory; `name` stands for the file in error messages.
SafetensorsFile read_safetensors_bytes(std::string_view bytes, const std::string& name);

}  // namespace deft
