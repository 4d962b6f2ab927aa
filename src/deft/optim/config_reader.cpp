#include "deft/optim/config_reader.h"

#include <cmath>

#include "deft/tensor/error.h"

namespace deft::optim::detail {

ConfigReader::ConfigReader(std::string owner, const nlohmann::json& config)
    : owner_(std::move(owner)), config_(config) {
  DEFT_CHECK(config_.is_object() || config_.is_null(), "{}: config must be a JSON object, got {}", owner_,
             config_.dump());
}

bool ConfigReader::has(const std::string& key) const { return config_.is_object() && config_.contains(key); }

const nlohmann::json* ConfigReader::find(const std::string& key) {
  known_.insert(key);
  if (!has(key)) return nullptr;
  return &config_.at(key);
}

double ConfigReader::number(const std::string& key, double fallback) {
  const nlohmann::json* v = find(key);
  if (!v) return fallback;
  DEFT_CHECK(v->is_number(), "{}: '{}' must be a number, got {}", owner_, key, v->dump());
  return v->get<double>();
}

int64_t ConfigReader::integer(const std::string& key, int64_t fallback) {
  const nlohmann::json* v = find(key);
  if (!v) return fallback;
  // 10.0 from a JSON writer that prints every number as a float is still an integer.
  const bool integral =
      v->is_number_integer() || (v->is_number_float() && std::floor(v->get<double>()) == v->get<double>() &&
                                 std::abs(v->get<double>()) < 9.0e15);
  DEFT_CHECK(integral, "{}: '{}' must be an integer, got {}", owner_, key, v->dump());
  return v->is_number_integer() ? v->get<int64_t>() : static_cast<int64_t>(v->get<double>());
}

bool ConfigReader::boolean(const std::string& key, bool fallback) {
  const nlohmann::json* v = find(key);
  if (!v) return fallback;
  DEFT_CHECK(v->is_boolean(), "{}: '{}' must be true or false, got {}", owner_, key, v->dump());
  return v->get<bool>();
}

std::string ConfigReader::string(const std::string& key, const std::string& fallback) {
  const nlohmann::json* v = find(key);
  if (!v) return fallback;
  DEFT_CHECK(v->is_string(), "{}: '{}' must be a string, got {}", owner_, key, v->dump());
  return v->get<std::string>();
}

std::vector<double> ConfigReader::numbers(const std::string& key, const std::vector<double>& fallback,
                                          size_t n) {
  const nlohmann::json* v = find(key);
  if (!v) return fallback;
  bool ok = v->is_array() && v->size() == n;
  for (size_t i = 0; ok && i < n; ++i) ok = (*v)[i].is_number();
  DEFT_CHECK(ok, "{}: '{}' must be an array of {} numbers, got {}", owner_, key, n, v->dump());
  std::vector<double> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = (*v)[i].get<double>();
  return out;
}

void ConfigReader::finish() const {
  if (!config_.is_object()) return;
  for (const auto& [key, value] : config_.items()) {
    if (known_.count(key)) continue;
    std::string valid;
    for (const std::string& k : known_) valid += (valid.empty() ? "" : ", ") + k;
    fail("{}: unknown config key '{}'; valid keys: {}", owner_, key, valid);
  }
}

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
