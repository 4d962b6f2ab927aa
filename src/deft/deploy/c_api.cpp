// The C API of libdeft-infer (deft_infer.h) over deploy::Predictor: every entry point
// catches everything, so no C++ exception crosses into C.
#include <algorithm>
#include <exception>
#include <memory>
#include <new>
#include <string>

#include "deft/deploy/deft_infer.h"
#include "deft/deploy/infer.h"
#include "deft/tensor/error.h"

struct deft_model {
  std::unique_ptr<deft::deploy::Predictor> predictor;
};

namespace {

thread_local std::string t_last_error;

template <class R, class F>
R guarded(R on_error, F f) noexcept {
  try {
    t_last_error.clear();
    return f();
  } catch (const std::bad_alloc&) {
    t_last_error = "deft: out of memory";
  } catch (const std::exception& e) {
    t_last_error = e.what();
  } catch (...) {
    t_last_error = "deft: unknown error";
  }
  return on_error;
}

const deft::deploy::Predictor& predictor(const deft_model* m) {
  DEFT_CHECK(m != nullptr && m->predictor != nullptr, "deft: null model");
  return *m->predictor;
}

}  // namespace

extern "C" {

deft_model* deft_load(const char* path, int threads, int64_t max_batch) {
  return guarded<deft_model*>(nullptr, [&] {
    DEFT_CHECK(path != nullptr, "deft_load: null path");
    auto m = std::make_unique<deft_model>();
    m->predictor = deft::deploy::Predictor::load(
        path, {.threads = threads, .max_batch = max_batch > 0 ? max_batch : 256});
    return m.release();
  });
}

int deft_input_shape(const deft_model* model, int64_t* dims, int max_dims) {
  return guarded(-1, [&] {
    const deft::Shape& s = predictor(model).info().input_shape;
    const int rank = static_cast<int>(s.size());
    DEFT_CHECK(dims != nullptr || max_dims <= 0, "deft_input_shape: null dims");
    for (int i = 0; i < rank && i < max_dims; ++i) dims[i] = s[static_cast<size_t>(i)];
    return rank;
  });
}

int64_t deft_input_size(const deft_model* model) {
  return guarded<int64_t>(-1, [&] { return deft::shape_numel(predictor(model).info().input_shape); });
}

int64_t deft_num_outputs(const deft_model* model) {
  return guarded<int64_t>(-1, [&] { return predictor(model).info().num_outputs; });
}

int deft_is_classifier(const deft_model* model) {
  return guarded(-1, [&] { return predictor(model).info().classification ? 1 : 0; });
}

const char* deft_class_name(const deft_model* model, int64_t i) {
  return guarded<const char*>(nullptr, [&]() -> const char* {
    const auto& names = predictor(model).info().class_names;
    if (i < 0 || i >= static_cast<int64_t>(names.size())) return nullptr;
    return names[static_cast<size_t>(i)].c_str();
  });
}

int deft_run(deft_model* model, const float* input, int64_t n, float* output) {
  return guarded(-1, [&] {
    predictor(model);
    model->predictor->predict(input, n, output);
    return 0;
  });
}

int deft_run_u8(deft_model* model, const uint8_t* input, int64_t n, float* output) {
  return guarded(-1, [&] {
    const auto& info = predictor(model).info();
    DEFT_CHECK(info.image, "deft_run_u8: {} is not an image model (uint8 input is for pixels)", info.path);
    DEFT_CHECK(n >= 0, "deft_run_u8: negative example count {}", n);
    if (n == 0) return 0;
    DEFT_CHECK(input != nullptr && output != nullptr, "deft_run_u8: null input or output");
    deft::Shape shape{n};
    shape.insert(shape.end(), info.input_shape.begin(), info.input_shape.end());
    const deft::Tensor out =
        model->predictor->predict(deft::Tensor::from_buffer(input, shape, deft::DType::UInt8));
    std::copy_n(out.data<float>(), out.numel(), output);
    return 0;
  });
}

const char* deft_last_error(void) { return t_last_error.c_str(); }

void deft_free(deft_model* model) { delete model; }

}  // extern "C"
