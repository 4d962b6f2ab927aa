// make_optimizer: the name -> optimizer table.
#include <cctype>

#include "deft/optim/adagrad.h"
#include "deft/optim/adam.h"
#include "deft/optim/optimizer.h"
#include "deft/optim/rmsprop.h"
#include "deft/optim/sgd.h"

namespace deft::optim {

std::vector<std::string> optimizer_names() { return {"sgd", "adam", "adamw", "rmsprop", "adagrad"}; }

std::unique_ptr<Optimizer> make_optimizer(const std::string& given, const nlohmann::json& config) {
  // Keras users write "Adam", PyTorch users "adam".
  std::string name = given;
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (name == "sgd") return std::make_unique<SGD>(SGD::parse(config));
  if (name == "adam") return std::make_unique<Adam>(Adam::parse(config));
  if (name == "adamw") return std::make_unique<AdamW>(AdamW::parse(config));
  if (name == "rmsprop") return std::make_unique<RMSprop>(RMSprop::parse(config));
  if (name == "adagrad") return std::make_unique<Adagrad>(Adagrad::parse(config));
  std::string valid;
  for (const std::string& n : optimizer_names()) valid += (valid.empty() ? "" : ", ") + n;
  fail("unknown optimizer '{}'; valid optimizers: {}", given, valid);
}

}  // namespace deft::optim
