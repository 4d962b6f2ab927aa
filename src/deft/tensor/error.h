// Errors every layer throws.
//
// InputError: the user's data, shapes, flags or files were wrong (CLI exit code 2).
// Error: anything else that went wrong inside deft (CLI exit code 1).
// Messages name the op, shape, file or field involved, e.g.
//   "matmul: shapes [64,784] and [128,10] do not match".
#pragma once

#include <stdexcept>
#include <string>

#include <fmt/format.h>

namespace deft {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class InputError : public Error {
 public:
  using Error::Error;
};

class ShapeError : public InputError {
 public:
  using InputError::InputError;
};

template <class E = InputError, class... Args>
[[noreturn]] void fail(fmt::format_string<Args...> f, Args&&... args) {
  throw E(fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace deft

#define DEFT_CHECK(cond, ...)                   \
  do {                                          \
    if (!(cond)) ::deft::fail<>(__VA_ARGS__);   \
  } while (0)

#define DEFT_CHECK_SHAPE(cond, ...)                            \
  do {                                                         \
    if (!(cond)) ::deft::fail<::deft::ShapeError>(__VA_ARGS__); \
  } while (0)

#define DEFT_INTERNAL_CHECK(cond, ...)                   \
  do {                                                   \
    if (!(cond)) ::deft::fail<::deft::Error>(__VA_ARGS__); \
  } while (0)
