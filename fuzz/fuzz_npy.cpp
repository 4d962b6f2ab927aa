// libFuzzer target: the .npy reader on in-memory bytes, plus a round trip of
// every array it accepts through encode_npy and back (values must survive).
// Malformed input must end in deft::InputError; any other exception, crash,
// sanitizer report or hang is a bug. Seeds: fuzz/corpus/npy/.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "deft/data/npy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  deft::Tensor t;
  try {
    t = deft::data::parse_npy(data, size, "fuzz.npy");
  } catch (const deft::InputError&) {
    return 0;
  }
  // Accepted arrays: re-encode and parse again; shape, dtype and bytes must match.
  const std::vector<uint8_t> again = deft::data::encode_npy(t);
  const deft::Tensor u = deft::data::parse_npy(again.data(), again.size(), "fuzz-roundtrip.npy");
  if (u.shape() != t.shape() || u.dtype() != t.dtype()) std::abort();
  const size_t nbytes = static_cast<size_t>(t.numel()) * deft::dtype_size(t.dtype());
  if (nbytes > 0 && std::memcmp(t.raw_data(), u.raw_data(), nbytes) != 0) std::abort();
  return 0;
}
