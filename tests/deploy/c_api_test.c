/* The C API of libdeft-infer, from C: load, shape query, run (float32 and uint8), the
 * outputs against the values train::Model computed (the .expected file next to the
 * model, written by the InferCApiFixture test), errors, free.
 *
 *   c_api_test MODEL.deft
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deft/deploy/deft_infer.h"

static int failures = 0;
#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      ++failures;                                                              \
    }                                                                          \
  } while (0)

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s MODEL.deft\n", argv[0]);
    return 2;
  }
  /* A bad path: NULL and a message naming the file. */
  deft_model* bad = deft_load("/nonexistent/model.deft", 1, 4);
  CHECK(bad == NULL);
  CHECK(strstr(deft_last_error(), "/nonexistent/model.deft") != NULL);
  deft_free(NULL);

  deft_model* m = deft_load(argv[1], 2, 1); /* batches of one: the split path */
  if (!m) {
    fprintf(stderr, "deft_load failed: %s\n", deft_last_error());
    return 1;
  }
  CHECK(strcmp(deft_last_error(), "") == 0);
  int64_t dims[4] = {0, 0, 0, 0};
  CHECK(deft_input_shape(m, dims, 4) == 3);
  CHECK(dims[0] == 1 && dims[1] == 8 && dims[2] == 8);
  CHECK(deft_input_size(m) == 64);
  CHECK(deft_num_outputs(m) == 3);
  CHECK(deft_is_classifier(m) == 1);
  CHECK(deft_class_name(m, 0) != NULL && deft_class_name(m, 3) == NULL);

  float input[128];
  unsigned char pixels[128];
  for (int i = 0; i < 128; ++i) {
    pixels[i] = (unsigned char)((i * 37) % 256);
    input[i] = (float)pixels[i];
  }
  float out[6], out_u8[6];
  CHECK(deft_run(m, input, 2, out) == 0);
  CHECK(deft_run_u8(m, pixels, 2, out_u8) == 0);
  CHECK(deft_run(m, input, 0, out) == 0);

  char expected_path[4096];
  snprintf(expected_path, sizeof expected_path, "%s.expected", argv[1]);
  FILE* f = fopen(expected_path, "r");
  CHECK(f != NULL);
  for (int i = 0; f && i < 6; ++i) {
    float want = 0;
    CHECK(fscanf(f, "%f", &want) == 1);
    CHECK(fabsf(out[i] - want) <= 1e-5f);
    CHECK(fabsf(out_u8[i] - want) <= 1e-5f);
  }
  if (f) fclose(f);
  float row = out[0] + out[1] + out[2];
  CHECK(fabsf(row - 1.0f) < 1e-5f);

  /* Errors: a null buffer, a negative count; the message stays until the next call. */
  CHECK(deft_run(m, NULL, 2, out) == -1);
  CHECK(strlen(deft_last_error()) > 0);
  CHECK(deft_run(m, input, -1, out) == -1);
  CHECK(deft_input_shape(NULL, dims, 4) == -1);

  deft_free(m);
  if (failures) {
    fprintf(stderr, "%d check(s) failed\n", failures);
    return 1;
  }
  printf("c_api_test: all checks passed\n");
  return 0;
}
