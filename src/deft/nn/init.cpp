#include "deft/nn/init.h"

#include <cmath>
#include <string_view>

#include "deft/tensor/error.h"

namespace deft::nn {

namespace {

// "uniform_0.05" -> 0.05; returns false when `scheme` is not PREFIX_<positive number>.
bool parse_suffix(const std::string& scheme, std::string_view prefix, double& value) {
  if (scheme.rfind(prefix, 0) != 0 || scheme.size() == prefix.size()) return false;
  const std::string rest = scheme.substr(prefix.size());
  size_t used = 0;
  try {
    value = std::stod(rest, &used);
  } catch (const std::exception&) {
    return false;
  }
  return used == rest.size() && value > 0 && std::isfinite(value);
}

}  // namespace

std::vector<std::string> initialiser_names() {
  return {"glorot_uniform", "glorot_normal", "xavier_uniform", "xavier_normal", "he_uniform", "he_normal",
          "kaiming_uniform", "kaiming_normal", "lecun_uniform", "lecun_normal", "torch", "zeros", "ones",
          "uniform_<A>", "normal_<S>"};
}

void check_initialiser(const std::string& scheme) {
  double v = 0;
  if (parse_suffix(scheme, "uniform_", v) || parse_suffix(scheme, "normal_", v)) return;
  for (const auto& n : initialiser_names())
    if (n == scheme) return;
  std::string valid;
  for (const auto& n : initialiser_names()) valid += (valid.empty() ? "" : ", ") + n;
  fail("unknown initialiser '{}' (valid: {})", scheme, valid);
}

Tensor initialise(const std::string& scheme, const Shape& shape, int64_t fan_in, int64_t fan_out,
                  Generator& gen) {
  check_initialiser(scheme);
  const double in = static_cast<double>(std::max<int64_t>(fan_in, 1));
  const double out = static_cast<double>(std::max<int64_t>(fan_out, 1));
  auto uniform = [&](double limit) {
    return Tensor::uniform(shape, static_cast<float>(-limit), static_cast<float>(limit), gen);
  };
  auto normal = [&](double variance) { return Tensor::normal(shape, 0.f, static_cast<float>(std::sqrt(variance)), gen); };
  double v = 0;
  if (scheme == "zeros") return Tensor::zeros(shape);
  if (scheme == "ones") return Tensor::ones(shape);
  if (scheme == "glorot_uniform" || scheme == "xavier_uniform") return uniform(std::sqrt(6.0 / (in + out)));
  if (scheme == "glorot_normal" || scheme == "xavier_normal") return normal(2.0 / (in + out));
  if (scheme == "he_uniform" || scheme == "kaiming_uniform") return uniform(std::sqrt(6.0 / in));
  if (scheme == "he_normal" || scheme == "kaiming_normal") return normal(2.0 / in);
  if (scheme == "lecun_uniform") return uniform(std::sqrt(3.0 / in));
  if (scheme == "lecun_normal") return normal(1.0 / in);
  if (scheme == "torch") return uniform(1.0 / std::sqrt(in));
  if (parse_suffix(scheme, "uniform_", v)) return uniform(v);
  parse_suffix(scheme, "normal_", v);
  return normal(v * v);
}

}  // namespace deft::nn
