#include "deft/autograd/graph.h"

#include <deque>
#include <mutex>
#include <unordered_set>

#include "deft/tensor/kernels.h"

namespace deft {
namespace {

struct OpRegistry {
  std::mutex mu;
  std::deque<OpDef> ops;  // deque: references stay valid
};
OpRegistry& op_registry() {
  static OpRegistry r;
  return r;
}

thread_local bool t_grad_enabled = true;

std::shared_ptr<AutogradMeta>& meta_of(const Tensor& t) { return t.impl()->autograd; }

}  // namespace

const OpDef& define_op(const char* name) {
  OpRegistry& r = op_registry();
  std::lock_guard<std::mutex> lock(r.mu);
  r.ops.push_back(OpDef{name});
  return r.ops.back();
}

std::vector<const OpDef*> registered_ops() {
  OpRegistry& r = op_registry();
  std::lock_guard<std::mutex> lock(r.mu);
  std::vector<const OpDef*> out;
  for (const OpDef& op : r.ops) out.push_back(&op);
  return out;
}

bool grad_enabled() { return t_grad_enabled; }
NoGradGuard::NoGradGuard() : previous_(t_grad_enabled) { t_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { t_grad_enabled = previous_; }

bool needs_grad(std::initializer_list<Tensor> inputs) {
  if (!t_grad_enabled) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}
bool needs_grad(const std::vector<Tensor>& inputs) {
  if (!t_grad_enabled) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

Tensor record(const OpDef& op, const std::vector<Tensor>& inputs, Tensor out, BackwardFn fn) {
  DEFT_INTERNAL_CHECK(inputs.size() <= 64, "{}: too many inputs for autograd", op.name);
  bool shares_impl = meta_of(out) != nullptr;
  for (const Tensor& in : inputs) shares_impl = shares_impl || in.same(out);
  if (shares_impl) out = out.detach();  // a kernel may hand back its input unchanged
  auto node = std::make_shared<Node>();
  node->op = &op;
  node->inputs.reserve(inputs.size());
  for (const Tensor& in : inputs) {
    const bool req = in.defined() && in.requires_grad();
    node->inputs.push_back(req ? meta_of(in) : nullptr);
  }
  node->backward = std::move(fn);
  auto meta = std::make_shared<AutogradMeta>();
  meta->requires_grad = true;
  meta->grad_fn = std::move(node);
  meta_of(out) = std::move(meta);
  return out;
}

namespace {

void accumulate_leaf(AutogradMeta& meta, const Tensor& g) {
  if (!meta.grad.defined()) {
    // Own the gradient: it may alias another gradient or be a broadcast view,
    // and optimizers update gradients in place.
    const bool shared = g.impl_ptr().use_count() > 1 || g.impl()->storage.use_count() > 1;
    meta.grad = (shared || !g.is_contiguous()) ? g.clone() : g.detach();
  } else {
    meta.grad = kernel::binary(kernel::Binary::Add, meta.grad, g);
  }
}

void accumulate_pending(Node& node, const Tensor& g) {
  node.pending = node.pending.defined() ? kernel::binary(kernel::Binary::Add, node.pending, g) : g;
}

}  // namespace

void backward(const Tensor& root, const Tensor& grad_output) {
  DEFT_CHECK(root.defined(), "backward: tensor is undefined");
  DEFT_CHECK(root.requires_grad(), "backward: tensor does not require grad and has no grad_fn");
  DEFT_CHECK_SHAPE(grad_output.shape() == root.shape(), "backward: gradient shape {} does not match tensor shape {}",
                   shape_str(grad_output.shape()), shape_str(root.shape()));
  const std::shared_ptr<AutogradMeta>& root_meta = meta_of(root);
  if (!root_meta->grad_fn) {
    accumulate_leaf(*root_meta, grad_output);
    return;
  }
  NoGradGuard no_grad;  // backward closures build no graph of their own
  // Count, for every reachable node, how many consumers will send it a gradient.
  std::vector<Node*> stack{root_meta->grad_fn.get()};
  std::unordered_set<Node*> seen{root_meta->grad_fn.get()};
  root_meta->grad_fn->dependencies = 0;
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    DEFT_CHECK(n->backward != nullptr,
               "backward: the graph through '{}' was already freed by an earlier backward(); "
               "recompute the forward pass",
               n->op->name);
    for (const auto& in : n->inputs) {
      if (!in || !in->grad_fn) continue;
      Node* child = in->grad_fn.get();
      if (seen.insert(child).second) {
        child->dependencies = 0;
        stack.push_back(child);
      }
      child->dependencies += 1;
    }
  }
  std::vector<std::shared_ptr<Node>> ready{root_meta->grad_fn};
  root_meta->grad_fn->pending = grad_output;
  while (!ready.empty()) {
    std::shared_ptr<Node> n = std::move(ready.back());
    ready.pop_back();
    uint64_t mask = 0;
    for (size_t i = 0; i < n->inputs.size(); ++i)
      if (n->inputs[i]) mask |= uint64_t{1} << i;
    Tensor g = std::move(n->pending);
    n->pending = Tensor();
    Grads grads = n->backward(g, NeedsGrad(mask));
    DEFT_INTERNAL_CHECK(grads.size() == n->inputs.size(), "{}: backward returned {} gradients for {} inputs",
                        n->op->name, grads.size(), n->inputs.size());
    for (size_t i = 0; i < n->inputs.size(); ++i) {
      const auto& in = n->inputs[i];
      if (!in) continue;
      DEFT_INTERNAL_CHECK(grads[i].defined(), "{}: backward gave no gradient for input {}", n->op->name, i);
      if (in->grad_fn) {
        Node& child = *in->grad_fn;
        accumulate_pending(child, grads[i]);
        if (--child.dependencies == 0) ready.push_back(in->grad_fn);
      } else {
        accumulate_leaf(*in, grads[i]);
      }
    }
    // Free the graph as we go: saved tensors and the links to the inputs.
    n->backward = nullptr;
    n->inputs.clear();
  }
}

// ---- Tensor's autograd members --------------------------------------------------------
bool Tensor::requires_grad() const { return impl_->autograd && impl_->autograd->requires_grad; }

Tensor& Tensor::set_requires_grad(bool on) {
  DEFT_CHECK(!on || dtype() == DType::Float32, "set_requires_grad: only float32 tensors can require grad, got {}",
             dtype_name(dtype()));
  if (!impl_->autograd) {
    if (!on) return *this;
    impl_->autograd = std::make_shared<AutogradMeta>();
  }
  DEFT_CHECK(!impl_->autograd->grad_fn, "set_requires_grad: only leaf tensors can change requires_grad");
  impl_->autograd->requires_grad = on;
  return *this;
}

Tensor Tensor::grad() const { return impl_->autograd ? impl_->autograd->grad : Tensor(); }
void Tensor::zero_grad() {
  if (impl_->autograd) impl_->autograd->grad = Tensor();
}
bool Tensor::is_leaf() const { return !impl_->autograd || !impl_->autograd->grad_fn; }
const char* Tensor::grad_fn_name() const {
  return impl_->autograd && impl_->autograd->grad_fn ? impl_->autograd->grad_fn->op->name : nullptr;
}

void Tensor::backward() const {
  DEFT_CHECK_SHAPE(numel() == 1, "backward: tensor of shape {} is not a scalar; pass a gradient", shape_str(shape()));
  deft::backward(*this, Tensor::ones(shape()));
}
void Tensor::backward(const Tensor& grad_output) const { deft::backward(*this, grad_output); }

}  // namespace deft
