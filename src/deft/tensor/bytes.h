// Little-endian values read from raw file bytes, for the file readers
// (safetensors here; NPY/NPZ and gzip in the data layer):
//
//   const uint32_t size = le32(data + 8);
//   convert_le<int16_t>(p, n, out.data<int64_t>());  // n int16 values widened to int64
//
// The pointers need no alignment. convert_le copies bytes as they are, so it
// needs a little-endian host, as deft's x86-64 targets are.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>

namespace deft {

static_assert(std::endian::native == std::endian::little, "convert_le assumes a little-endian host");

inline uint16_t le16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }

inline uint32_t le32(const uint8_t* p) {
  return uint32_t{p[0]} | (uint32_t{p[1]} << 8) | (uint32_t{p[2]} << 16) | (uint32_t{p[3]} << 24);
}

// out[i] = the i-th little-endian Src at p, converted to Dst, for i < n.
template <class Src, class Dst>
void convert_le(const uint8_t* p, int64_t n, Dst* out) {
  for (int64_t i = 0; i < n; ++i) {
    Src v;
    std::memcpy(&v, p + i * static_cast<int64_t>(sizeof(Src)), sizeof(Src));
    out[i] = static_cast<Dst>(v);
  }
}

}  // namespace deft
