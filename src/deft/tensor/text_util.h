// Text helpers for error messages about untrusted input (file headers, names,
// keys read from a file).
//
//   fail("{}: unexpected key '{}'", file, ascii_excerpt(key));
//   // "x.npy: unexpected key 'sh\x00pe'"
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace deft {

// At most `max` bytes of `s`, then "..." if it was longer. Printable ASCII is
// kept and every other byte (control characters, and non-ASCII, which may not be
// valid UTF-8) is written as \xNN, so the message stays one printable line.
std::string ascii_excerpt(std::string_view s, size_t max = 80);

}  // namespace deft
