// libFuzzer target: the .npz (ZIP) reader on in-memory bytes: end record,
// central directory, local headers, stored and deflated entries, CRC checks,
// and the .npy parser for each entry. Malformed input must end in
// deft::InputError; anything else is a bug. Seeds: fuzz/corpus/npz/.
#include <cstdint>
#include <map>
#include <string>

#include "deft/data/npy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const std::map<std::string, deft::Tensor> arrays = deft::data::parse_npz(data, size, "fuzz.npz");
    if (!arrays.empty()) (void)deft::data::dataset_from_arrays(arrays, "fuzz.npz");
  } catch (const deft::InputError&) {
  }
  return 0;
}
