/* deft_infer.h — the C API of libdeft-infer: run a saved deft model (.deft) from C or
 * any language with a C FFI. No training code is linked; nothing here throws.
 *
 *   deft_model* m = deft_load("fashion.deft", 2, 256);     // 2 threads, batches of 256
 *   if (!m) { fprintf(stderr, "%s\n", deft_last_error()); return 1; }
 *   int64_t shape[8];
 *   int rank = deft_input_shape(m, shape, 8);             // per example, e.g. 3: {1, 28, 28}
 *   float* probs = malloc(n * deft_num_outputs(m) * sizeof(float));
 *   if (deft_run(m, pixels, n, probs) != 0) fprintf(stderr, "%s\n", deft_last_error());
 *   deft_free(m);
 *
 * Inputs are raw features as the data files hold them (float32 pixels 0-255, N x C x H x W,
 * or table columns N x F with NaN for missing values), row-major; the model's
 * preprocessing runs inside. Outputs are probabilities [n, classes] for a classifier
 * (a binary one gives 2 columns) or predictions [n, outputs] for a regression.
 *
 * A deft_model is used by one thread at a time; separate models are independent.
 * Errors: functions return NULL or a negative value and set a message, kept per thread,
 * that deft_last_error() returns (valid until the next call on that thread).
 */
#ifndef DEFT_INFER_H
#define DEFT_INFER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct deft_model deft_model;

/* Loads a model. threads <= 0: the process default (DEFT_NUM_THREADS or the cores);
 * max_batch <= 0: 256. NULL on failure (a missing, corrupt or non-deft file). */
deft_model* deft_load(const char* path, int threads, int64_t max_batch);

/* The per-example input shape: writes min(rank, max_dims) dims, returns the rank (-1 on error). */
int deft_input_shape(const deft_model* model, int64_t* dims, int max_dims);
/* Values per example in the input (the product of the shape), -1 on error. */
int64_t deft_input_size(const deft_model* model);
/* Values per example in the output: classes or regression outputs; -1 on error. */
int64_t deft_num_outputs(const deft_model* model);
/* 1 for a classifier, 0 for a regression, -1 on error. */
int deft_is_classifier(const deft_model* model);
/* The name of class i (classifiers), NULL when out of range. Owned by the model. */
const char* deft_class_name(const deft_model* model, int64_t i);

/* Runs n examples (n * deft_input_size floats at input) and writes
 * n * deft_num_outputs floats to output. 0 on success, -1 on error. */
int deft_run(deft_model* model, const float* input, int64_t n, float* output);
/* The same for uint8 pixels (image models only). */
int deft_run_u8(deft_model* model, const uint8_t* input, int64_t n, float* output);

/* The last error on this thread ("" when none). */
const char* deft_last_error(void);

/* Frees a model (NULL is fine). */
void deft_free(deft_model* model);

#ifdef __cplusplus
}
#endif

#endif /* DEFT_INFER_H */
