// Image augmentation on the fly: random crop with padding, horizontal flip,
// small affine (rotation + translation), random erasing, Gaussian noise.
//
//   auto aug = parse_augmentation("crop:4,flip:0.5,affine:10:0.1,erase:0.25,noise:5");
//   DataLoader loader(train, {.batch_size = 64, .seed = 1, .transform = make_image_transform(aug)});
//   // or directly: Tensor y = aug->apply(x, gen);   // x float32 [N,C,H,W], raw 0–255
//
// Batches hold raw pixel values (float32, 0–255; scaling and normalisation come
// later, inside the model). Every transform has its own probability p and makes
// its random decisions per example. Reproducible: apply() draws one 64-bit seed
// from the batch Generator and derives from it (and the example index, and the
// transform's position in a Compose) a Generator per example and transform, so
// the output depends only on the batch generator's state — never on thread count
// or on which other examples are in the batch. Examples run in parallel
// (deft::parallel_for; single-threaded inside DataLoader workers).
//
// Spec grammar (parse_augmentation; what `--augment` and configs take):
//   spec  := "" | "none" | item ("," item)*          whitespace around items ignored
//   item  := NAME (":" arg)*                          arg := VALUE | KEY "=" VALUE
// Positional args fill the transform's parameters in the order listed; any
// parameter can also be given by key. Every transform takes p (probability).
//   crop:PAD[:SIZE][:P]          zero-pad PAD pixels per side, crop SIZE (HxW,
//                                default: the input size) at a random offset. p=1.
//                                (If not applied and SIZE differs: centre crop.)
//   flip[:P]                     horizontal flip. p=0.5.
//   affine:DEG[:TRANS][:P]       rotate by U(-DEG,DEG) degrees (counter-clockwise
//                                as displayed) about the centre, translate by
//                                U(-TRANS,TRANS) × width/height; bilinear, zero fill.
//                                TRANS default 0, p=1.
//   erase[:P][:SCALE][:RATIO][:FILL]   random erasing (Zhong et al. 2017): a
//                                rectangle of area U(SCALE) × H×W and aspect ratio
//                                log-uniform in RATIO (10 tries to fit, else
//                                nothing), filled with 0 or per-pixel uniform
//                                random values (FILL = 0 | random).
//                                p=0.5, scale=0.02-0.33, ratio=0.3-3.3, fill=0.
//   noise:STD[:P]                add N(0, STD²) per value (pixel units), clamp to
//                                [0,255]. p=1.
// Keys: crop: pad size p; flip: p; affine: degrees translate p;
//       erase: p scale ratio fill; noise: std p.  Ranges are "LO-HI".
// Examples: "flip", "crop:4,flip", "affine:15:0.1:p=0.5", "erase:p=1:fill=random".
// A malformed spec is an InputError naming the token: "augmentation spec
// 'flip:2': p must be in [0, 1], got 2".
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "deft/data/image.h"
#include "deft/data/loader.h"
#include "deft/tensor/random.h"
#include "deft/tensor/tensor.h"

namespace deft::data {

struct ImageDims {
  int64_t c = 0, h = 0, w = 0;
  int64_t numel() const { return c * h * w; }
};

class Augmentation {
 public:
  virtual ~Augmentation() = default;

  // x: float32 [N,C,H,W] (any strides); returns a new float32 tensor
  // [N,C,H',W'] (H'×W' differ only for a crop with a size). x is not modified.
  Tensor apply(const Tensor& x, Generator& gen) const;

  // The spec that parse_augmentation() turns back into this augmentation.
  virtual std::string spec() const = 0;
  virtual ImageDims output_dims(ImageDims in) const { return in; }
  // One example [C,H,W] from src into dst (dims output_dims(in)), drawing
  // from `gen`, the example's own generator. May return false, without writing
  // dst, when it leaves the image unchanged (only if the dims do not change).
  virtual bool apply_example(const float* src, float* dst, ImageDims in, Generator& gen) const = 0;
};

class RandomCrop : public Augmentation {
 public:
  explicit RandomCrop(int64_t padding, std::optional<ImageSize> size = std::nullopt, double p = 1.0);
  std::string spec() const override;
  ImageDims output_dims(ImageDims in) const override;
  bool apply_example(const float* src, float* dst, ImageDims in, Generator& gen) const override;

 private:
  int64_t padding_;
  std::optional<ImageSize> size_;
  double p_;
};

class RandomHorizontalFlip : public Augmentation {
 public:
  explicit RandomHorizontalFlip(double p = 0.5);
  std::string spec() const override;
  bool apply_example(const float* src, float* dst, ImageDims in, Generator& gen) const override;

 private:
  double p_;
};

class RandomAffine : public Augmentation {
 public:
  // degrees in [0, 180]; translate: fraction of width/height in [0, 1).
  explicit RandomAffine(double degrees, double translate = 0.0, double p = 1.0);
  std::string spec() const override;
  bool apply_example(const float* src, float* dst, ImageDims in, Generator& gen) const override;
  // The deterministic warp itself (exposed for tests): rotate by `degrees`
  // counter-clockwise about the image centre, then shift by (tx, ty) pixels
  // (+x right, +y down). Bilinear; samples outside the image read 0.
  static void warp(const float* src, float* dst, ImageDims dims, double degrees, double tx, double ty);

 private:
  double degrees_, translate_, p_;
};

class RandomErasing : public Augmentation {
 public:
  struct Range {
    double lo, hi;
  };
  explicit RandomErasing(double p = 0.5, Range scale = {0.02, 0.33}, Range ratio = {0.3, 3.3},
                         bool random_fill = false);
  std::string spec() const override;
  bool apply_example(const float* src, float* dst, ImageDims in, Generator& gen) const override;

 private:
  double p_;
  Range scale_, ratio_;
  bool random_fill_;
};

class GaussianNoise : public Augmentation {
 public:
  explicit GaussianNoise(double stddev, double p = 1.0);
  std::string spec() const override;
  bool apply_example(const float* src, float* dst, ImageDims in, Generator& gen) const override;

 private:
  double std_, p_;
};

// Applies its transforms in order; each gets its own generator per example.
class Compose : public Augmentation {
 public:
  explicit Compose(std::vector<std::shared_ptr<const Augmentation>> transforms);
  std::string spec() const override;  // "none" when empty
  ImageDims output_dims(ImageDims in) const override;
  bool apply_example(const float* src, float* dst, ImageDims in, Generator& gen) const override;
  const std::vector<std::shared_ptr<const Augmentation>>& transforms() const { return transforms_; }

 private:
  std::vector<std::shared_ptr<const Augmentation>> transforms_;
};

// Parses the grammar above; always returns a Compose (empty for "" / "none").
std::shared_ptr<Augmentation> parse_augmentation(const std::string& spec);

// The loader transform for image batches: Batch::x (uint8 or float32
// [N,C,H,W]) becomes float32 raw pixel values (0–255), then `augmentation`
// (may be null: conversion only) is applied with the batch's generator.
BatchTransform make_image_transform(std::shared_ptr<const Augmentation> augmentation);

}  // namespace deft::data
