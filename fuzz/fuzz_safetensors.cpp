// libFuzzer target: the safetensors reader (deft's model files) on in-memory
// bytes, plus a round trip of every file it accepts through encode_safetensors
// and back (names, order, dtypes, shapes, bytes and metadata must survive).
// Malformed input must end in deft::InputError; any other exception, crash,
// sanitizer report or hang is a bug. Seeds: fuzz/corpus/safetensors/.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "deft/tensor/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  deft::SafetensorsFile f;
  try {
    f = deft::read_safetensors_bytes(bytes, "fuzz.safetensors");
  } catch (const deft::InputError&) {
    return 0;
  }
  // Accepted files: write what was read and read it again; nothing may change.
  const std::string again = deft::encode_safetensors(f.tensors, f.metadata);
  const deft::SafetensorsFile g = deft::read_safetensors_bytes(again, "fuzz-roundtrip.safetensors");
  if (g.metadata != f.metadata || g.tensors.size() != f.tensors.size()) std::abort();
  for (size_t i = 0; i < f.tensors.size(); ++i) {
    const deft::Tensor& t = f.tensors[i].second;
    const deft::Tensor& u = g.tensors[i].second;
    if (g.tensors[i].first != f.tensors[i].first || u.shape() != t.shape() || u.dtype() != t.dtype()) std::abort();
    const size_t nbytes = static_cast<size_t>(t.numel()) * deft::dtype_size(t.dtype());
    if (nbytes > 0 && std::memcmp(t.raw_data(), u.raw_data(), nbytes) != 0) std::abort();
  }
  return 0;
}
