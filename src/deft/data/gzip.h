// Reading files that may be gzip-compressed (MNIST-style .gz downloads).
//
// Gzip is detected by its magic bytes (1f 8b), not by the file name, so a
// renamed file still reads. Data is streamed through zlib's inflate in chunks:
// no buffer is ever sized from the stream's own (untrusted) size fields, and
// the output is capped by `max_bytes`.
//
//   std::vector<uint8_t> bytes = read_file_maybe_gzip("train-images-idx3-ubyte.gz");
//
// Errors are deft::InputError naming the file and, for corrupt data, the byte
// offset in the compressed input and zlib's message, e.g.
//   "t.gz: corrupt gzip data (invalid block type), at byte 1234".
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace deft::data {

// Default cap on decompressed size: far above any dataset deft handles in memory,
// low enough that a gzip bomb fails with a message instead of exhausting memory.
inline constexpr size_t kMaxDecompressedBytes = size_t{64} << 30;  // 64 GiB

// True if the bytes start with the gzip magic 1f 8b.
bool is_gzip(const uint8_t* data, size_t size);

// The whole content of `path`, decompressed when it is gzip (one or more
// concatenated members). Throws InputError when the file cannot be read, is
// truncated or corrupt, has bytes after the last gzip member, or decompresses
// to more than `max_bytes`.
std::vector<uint8_t> read_file_maybe_gzip(const std::string& path,
                                          size_t max_bytes = kMaxDecompressedBytes);

// In-memory counterpart: decompresses `data` when it is gzip, otherwise copies
// it. `name` (a file name) is used in error messages. Used by the fuzz targets.
std::vector<uint8_t> decode_maybe_gzip(const uint8_t* data, size_t size, const std::string& name,
                                       size_t max_bytes = kMaxDecompressedBytes);

// Inflates a raw DEFLATE stream (no zlib/gzip header, as stored in ZIP entries)
// whose decompressed size must be exactly `expected_size`. Errors name `name`.
std::vector<uint8_t> inflate_raw(const uint8_t* data, size_t size, size_t expected_size,
                                 const std::string& name);

}  // namespace deft::data
