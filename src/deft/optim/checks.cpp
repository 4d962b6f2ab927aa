#include "deft/optim/checks.h"

#include <cmath>

#include "deft/tensor/error.h"

namespace deft::optim::detail {

void check_finite(const std::string& owner, const char* field, double v) {
  DEFT_CHECK(std::isfinite(v), "{}: {} must be finite, got {}", owner, field, v);
}

void check_non_negative(const std::string& owner, const char* field, double v) {
  DEFT_CHECK(std::isfinite(v) && v >= 0.0, "{}: {} must be >= 0, got {}", owner, field, v);
}

void check_positive(const std::string& owner, const char* field, double v) {
  DEFT_CHECK(std::isfinite(v) && v > 0.0, "{}: {} must be > 0, got {}", owner, field, v);
}

void check_unit_interval(const std::string& owner, const char* field, double v) {
  DEFT_CHECK(v >= 0.0 && v < 1.0, "{}: {} must be in [0, 1), got {}", owner, field, v);
}

}  // namespace deft::optim::detail
