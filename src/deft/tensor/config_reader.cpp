#include "deft/tensor/config_reader.h"

#include <algorithm>
#include <cmath>

#include "deft/tensor/error.h"

namespace deft {

namespace {

// 10.0 from a JSON writer that prints every number as a float is still an integer.
bool is_integral(const nlohmann::json& v) {
  return v.is_number_integer() || (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>() &&
                                   std::abs(v.get<double>()) < 9.0e15);
}

int64_t as_integer(const nlohmann::json& v) {
  return v.is_number_integer() ? v.get<int64_t>() : static_cast<int64_t>(v.get<double>());
}

std::vector<double> as_doubles(const nlohmann::json& array) {
  std::vector<double> out;
  for (const nlohmann::json& x : array) out.push_back(x.get<double>());
  return out;
}

bool is_number(const nlohmann::json& v) { return v.is_number(); }

bool array_of(const nlohmann::json& v, bool (*element_ok)(const nlohmann::json&)) {
  return v.is_array() && std::all_of(v.begin(), v.end(), element_ok);
}

}  // namespace

ConfigReader::ConfigReader(std::string owner, const nlohmann::json& config, Nulls nulls)
    : owner_(std::move(owner)), config_(config), nulls_(nulls) {
  DEFT_CHECK(config_.is_object() || config_.is_null(), "{}: config must be a JSON object, got {}", owner_,
             config_.dump());
}

bool ConfigReader::has(const std::string& key) const { return config_.is_object() && config_.contains(key); }

const nlohmann::json* ConfigReader::raw(const std::string& key) { return find(key); }

const nlohmann::json* ConfigReader::find(const std::string& key) {
  known_.insert(key);
  if (!has(key)) return nullptr;
  const nlohmann::json& v = config_.at(key);
  if (v.is_null() && nulls_ == Nulls::Default) return nullptr;
  return &v;
}

const nlohmann::json* ConfigReader::require(const std::string& key) {
  const nlohmann::json* v = find(key);
  if (!v) missing_.push_back(key);
  return v;
}

double ConfigReader::number(const std::string& key, double fallback) {
  const nlohmann::json* v = find(key);
  if (!v) return fallback;
  DEFT_CHECK(v->is_number(), "{}: field '{}' must be a number, got {}", owner_, key, v->dump());
  return v->get<double>();
}

double ConfigReader::number(const std::string& key) { return require(key) ? number(key, 0.0) : 0.0; }

int64_t ConfigReader::integer(const std::string& key, int64_t fallback) {
  const nlohmann::json* v = find(key);
  if (!v) return fallback;
  DEFT_CHECK(is_integral(*v), "{}: field '{}' must be an integer, got {}", owner_, key, v->dump());
  return as_integer(*v);
}

int64_t ConfigReader::integer(const std::string& key) { return require(key) ? integer(key, 0) : 0; }

bool ConfigReader::boolean(const std::string& key, bool fallback) {
  const nlohmann::json* v = find(key);
  if (!v) return fallback;
  DEFT_CHECK(v->is_boolean(), "{}: field '{}' must be true or false, got {}", owner_, key, v->dump());
  return v->get<bool>();
}

std::string ConfigReader::string(const std::string& key, const std::string& fallback) {
  const nlohmann::json* v = find(key);
  if (!v) return fallback;
  DEFT_CHECK(v->is_string(), "{}: field '{}' must be a string, got {}", owner_, key, v->dump());
  return v->get<std::string>();
}

std::vector<double> ConfigReader::numbers(const std::string& key, const std::vector<double>& fallback,
                                          size_t n) {
  const nlohmann::json* v = find(key);
  if (!v) return fallback;
  DEFT_CHECK(array_of(*v, is_number) && v->size() == n,
             "{}: field '{}' must be an array of {} numbers, got {}", owner_, key, n, v->dump());
  return as_doubles(*v);
}

std::vector<double> ConfigReader::numbers(const std::string& key, const std::vector<double>& fallback) {
  const nlohmann::json* v = find(key);
  if (!v) return fallback;
  DEFT_CHECK(array_of(*v, is_number), "{}: field '{}' must be an array of numbers, got {}", owner_, key,
             v->dump());
  return as_doubles(*v);
}

std::vector<int64_t> ConfigReader::integers(const std::string& key) {
  const nlohmann::json* v = require(key);
  if (!v) return {};
  DEFT_CHECK(array_of(*v, is_integral), "{}: field '{}' must be an array of integers, got {}", owner_, key,
             v->dump());
  std::vector<int64_t> out;
  for (const nlohmann::json& x : *v) out.push_back(as_integer(x));
  return out;
}

void ConfigReader::finish() const {
  if (config_.is_object()) {
    for (const auto& [key, value] : config_.items()) {
      if (known_.count(key)) continue;
      std::string valid;
      for (const std::string& k : known_) valid += (valid.empty() ? "" : ", ") + k;
      fail("{}: unknown config key '{}'; valid keys: {}", owner_, key, valid);
    }
  }
  if (!missing_.empty()) fail("{}: config needs field '{}'", owner_, missing_.front());
}

}  // namespace deft
