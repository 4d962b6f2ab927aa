// libFuzzer target: the IDX reader behind the gzip decoder, on in-memory bytes.
// Malformed input must end in deft::InputError; any other exception, crash,
// sanitizer report or hang is a bug. Seeds: fuzz/corpus/idx/.
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "deft/data/gzip.h"
#include "deft/data/idx.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    // Cap decompression well below libFuzzer's memory limit (a gzip bomb is an InputError).
    const std::vector<uint8_t> bytes = deft::data::decode_maybe_gzip(data, size, "fuzz.idx", size_t{64} << 20);
    const deft::Tensor t = deft::data::parse_idx(bytes.data(), bytes.size(), "fuzz.idx");
    // Accepted: the values must fill the payload exactly (1 to 8 bytes each).
    const uint64_t n = static_cast<uint64_t>(t.numel());
    if (n > bytes.size()) std::abort();
    if (n > 0 && t.dtype() == deft::DType::UInt8 && t.data<uint8_t>()[n - 1] != bytes.back()) std::abort();
  } catch (const deft::InputError&) {
  }
  return 0;
}
