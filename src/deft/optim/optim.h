// The optim layer in one include: optimizers (SGD, Adam, AdamW, RMSprop, Adagrad,
// make_optimizer), gradient clipping and learning-rate schedules.
//
//   #include "deft/optim/optim.h"
//   auto opt = optim::make_optimizer("adam", {{"lr", 1e-3}});
//   opt->attach(model.named_parameters());
#pragma once

#include "deft/optim/adagrad.h"
#include "deft/optim/adam.h"
#include "deft/optim/clip.h"
#include "deft/optim/optimizer.h"
#include "deft/optim/rmsprop.h"
#include "deft/optim/schedule.h"
#include "deft/optim/sgd.h"
