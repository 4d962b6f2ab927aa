// The Keras Fashion-MNIST example, in deft's C++ API:
//
//   model = Sequential([Flatten(input_shape=(28, 28)), Dense(128, activation='relu'),
//                       Dropout(0.2), Dense(10)])
//   model.compile(optimizer=Adam(0.001),
//                 loss=SparseCategoricalCrossentropy(from_logits=True), metrics=['accuracy'])
//   model.fit(x, y, epochs=10, batch_size=64, validation_data=(x_val, y_val))
//   model.evaluate(x_test, y_test)
//
//   build/bin/fashion_mlp [EPOCHS]      (Fashion-MNIST from /usr/share/datasets/fashion-mnist)
#include <cstdio>
#include <cstdlib>

#include "deft/data/registry.h"
#include "deft/nn/layers.h"
#include "deft/nn/loss.h"
#include "deft/optim/adam.h"
#include "deft/train/model.h"

using namespace deft;

int main(int argc, char** argv) {
  const int64_t epochs = argc > 1 ? std::atoll(argv[1]) : 10;
  data::DatasetSplits fm = data::load_dataset("fashion-mnist");

  train::Model model(nn::Sequential{nn::Flatten(), nn::Dense(128, "relu"), nn::Dropout(0.2), nn::Dense(10)});
  model.compile(std::make_shared<optim::Adam>(optim::AdamOptions{.lr = 1e-3}),
                std::make_shared<nn::SparseCategoricalCrossentropy>(nn::SparseCategoricalCrossentropyOptions{.from_logits = true}),
                {"accuracy"});
  model.fit(fm.train, {.epochs = epochs, .batch_size = 64, .validation_data = &*fm.test});
  std::printf("%s", model.summary().c_str());

  const train::Logs test = model.evaluate(*fm.test);
  std::printf("test accuracy %.4f, loss %.4f\n", test.at("accuracy"), test.at("loss"));
  model.save("fashion_mlp.deft");
  return 0;
}
