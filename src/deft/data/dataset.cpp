#include "deft/data/dataset.h"

#include "deft/tensor/kernels.h"

namespace deft::data {

int64_t Dataset::size() const {
  if (features.defined()) return features.shape().empty() ? 0 : features.shape()[0];
  if (labels.defined()) return labels.numel();
  return static_cast<int64_t>(texts.size());
}

Dataset Dataset::subset(const Tensor& indices) const {
  Dataset out;
  out.name = name;
  out.source = source;
  out.task = task;
  out.class_names = class_names;
  out.feature_names = feature_names;
  out.schema = schema;
  if (features.defined()) out.features = kernel::index_select(features, 0, indices);
  if (labels.defined()) out.labels = kernel::index_select(labels, 0, indices);
  if (!texts.empty()) {
    const auto idx = indices.to_vector<int64_t>();
    for (int64_t i : idx) {
      DEFT_CHECK(i >= 0 && i < static_cast<int64_t>(texts.size()), "subset: index {} out of range for {} examples",
                 i, texts.size());
      out.texts.push_back(texts[static_cast<size_t>(i)]);
    }
  }
  return out;
}

Dataset Dataset::subset(const std::vector<int64_t>& indices) const {
  return subset(Tensor::from_vector(indices));
}

}  // namespace deft::data
