#include "deft/autograd/gradcheck.h"

#include <cmath>

#include "deft/autograd/ops.h"
#include "deft/tensor/random.h"

namespace deft {

namespace {
double projected(const Tensor& y, const Tensor& w) {
  const auto yv = y.to_vector<float>();
  const auto wv = w.to_vector<float>();
  double s = 0.0;
  for (size_t i = 0; i < yv.size(); ++i) s += static_cast<double>(yv[i]) * wv[i];
  return s;
}
}  // namespace

GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                          const std::vector<Tensor>& inputs, const GradcheckOptions& opt) {
  GradcheckResult result;
  std::vector<Tensor> leaves;
  for (const Tensor& in : inputs) {
    Tensor leaf = in.clone();
    if (leaf.dtype() == DType::Float32) leaf.set_requires_grad(true);
    leaves.push_back(leaf);
  }
  Tensor y = f(leaves);
  Generator gen(opt.seed);
  const Tensor w = Tensor::uniform(y.shape(), 0.5f, 1.5f, gen);
  Tensor loss = sum(mul(y, w));
  loss.backward();

  for (size_t i = 0; i < leaves.size(); ++i) {
    Tensor& leaf = leaves[i];
    if (leaf.dtype() != DType::Float32) continue;
    const Tensor analytic = leaf.grad();
    if (!analytic.defined()) {
      result.ok = false;
      result.message = fmt::format("input {}: backward produced no gradient", i);
      return result;
    }
    const auto av = analytic.to_vector<float>();
    float* p = leaf.data<float>();
    for (int64_t j = 0; j < leaf.numel(); ++j) {
      const float orig = p[j];
      double plus, minus;
      {
        NoGradGuard ng;
        p[j] = orig + opt.eps;
        plus = projected(f(leaves), w);
        p[j] = orig - opt.eps;
        minus = projected(f(leaves), w);
        p[j] = orig;
      }
      const double numeric = (plus - minus) / (2.0 * opt.eps);
      const double err = std::fabs(numeric - av[j]);
      result.max_abs_error = std::max(result.max_abs_error, err);
      if (!(err <= opt.atol + opt.rtol * std::fabs(numeric)) && result.ok) {
        result.ok = false;
        result.message = fmt::format("input {} (shape {}), element {}: analytic {} vs numeric {} (error {})", i,
                                     shape_str(leaf.shape()), j, av[j], numeric, err);
      }
    }
  }
  return result;
}

}  // namespace deft
