// Range checks shared by the options of every optimizer and schedule; messages
// name the owner and the field:
//
//   detail::check_unit_interval("adam", "betas[1]", 1.0);
//   // InputError "adam: betas[1] must be in [0, 1), got 1"
//
// Internal to the optim layer. The JSON configs themselves are read with
// deft::ConfigReader (deft/tensor/config_reader.h).
#pragma once

#include <string>

namespace deft::optim::detail {

void check_finite(const std::string& owner, const char* field, double v);
void check_non_negative(const std::string& owner, const char* field, double v);
void check_positive(const std::string& owner, const char* field, double v);
void check_unit_interval(const std::string& owner, const char* field, double v);  // [0, 1)

}  // namespace deft::optim::detail
