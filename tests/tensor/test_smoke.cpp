#include <gtest/gtest.h>
#include "deft/autograd/ops.h"
using namespace deft;
TEST(Smoke, Add) {
  Tensor a = Tensor::ones({2, 3});
  Tensor b = Tensor::arange(0, 3);
  auto c = (a + b).to_vector<float>();
  EXPECT_EQ(c[4], 2.0f);
}
