// Reverse-mode autodiff, define-by-run.
//
// An op on tensors that require grad records a Node holding its backward
// closure; loss.backward() walks the nodes in reverse topological order and
// accumulates gradients into the leaves (tensors the user marked with
// set_requires_grad). After backward the graph's saved tensors are released.
//
//   Tensor w = Tensor::randn({3, 2}, gen).set_requires_grad();
//   Tensor loss = sum(matmul(x, w));
//   loss.backward();            // w.grad() now holds d loss / d w
//   { NoGradGuard ng; ... }     // evaluation: nothing recorded
//
// Writing an op (forward and backward side by side, see ops_*.cpp):
//   static const OpDef& kExp = define_op("exp");
//   Tensor exp(const Tensor& x) {
//     Tensor y = kernel::unary(kernel::Unary::Exp, x);
//     if (!needs_grad({x})) return y;
//     return record(kExp, {x}, y, [y = y.detach()](const Tensor& g, NeedsGrad) {
//       return Grads{kernel::binary(kernel::Binary::Mul, g, y)};
//     });
//   }
// Every op registered with define_op must have a case in the table-driven
// gradient-check test (tests/autograd/test_gradcheck.cpp); the test fails otherwise.
// Closures must capture detached tensors (x.detach()), never an op's own output
// with its history, or the graph would own itself.
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <vector>

#include "deft/tensor/tensor.h"

namespace deft {

struct OpDef {
  const char* name;
};

// Registers a differentiable op (call once, at namespace scope).
const OpDef& define_op(const char* name);
// Every registered op, in registration order.
std::vector<const OpDef*> registered_ops();

using Grads = std::vector<Tensor>;

// Which inputs of a node need a gradient; backward may skip the others
// (return an undefined Tensor in their place).
class NeedsGrad {
 public:
  explicit NeedsGrad(uint64_t mask = ~uint64_t{0}) : mask_(mask) {}
  bool operator[](size_t i) const { return (mask_ >> i) & 1u; }

 private:
  uint64_t mask_;
};

using BackwardFn = std::function<Grads(const Tensor& grad_output, NeedsGrad needs)>;

struct Node;

struct AutogradMeta {
  bool requires_grad = false;
  Tensor grad;                    // accumulated gradient (leaves)
  std::shared_ptr<Node> grad_fn;  // null for leaves
};

struct Node {
  const OpDef* op = nullptr;
  std::vector<std::shared_ptr<AutogradMeta>> inputs;  // null where the input needs no grad
  BackwardFn backward;
  // Scratch used during backward():
  Tensor pending;
  int64_t dependencies = 0;
};

bool grad_enabled();

// Disables graph recording in its scope (evaluation, optimizer updates).
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

// True when grad mode is on and any of the inputs requires grad.
bool needs_grad(std::initializer_list<Tensor> inputs);
bool needs_grad(const std::vector<Tensor>& inputs);

// Attaches a node for `op` to `out` and returns it.
Tensor record(const OpDef& op, const std::vector<Tensor>& inputs, Tensor out, BackwardFn backward);

// Computes gradients of `root` with respect to every leaf it depends on.
void backward(const Tensor& root, const Tensor& grad_output);

}  // namespace deft
