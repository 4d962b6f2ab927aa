// Image augmentation: identities, invariants, hand-computed warps, determinism,
// the spec parser and the loader transform.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <set>

#include "data_test_util.h"
#include "deft/data/augment.h"
#include "deft/data/loader.h"
#include "deft/tensor/parallel.h"

namespace deft::data {
namespace {

using deft::test_util::expect_input_error;

// Raw pixel batch [N,C,H,W] of whole numbers in [0,255], all distinct-ish.
Tensor batch(int64_t n, int64_t c, int64_t h, int64_t w, uint32_t seed = 1) {
  std::mt19937 rng(seed);
  std::vector<float> v(static_cast<size_t>(n * c * h * w));
  for (float& x : v) x = static_cast<float>(rng() % 256);
  return Tensor::from_vector(v, {n, c, h, w});
}

std::vector<float> values(const Tensor& t) { return t.to_vector<float>(); }

// Each transform once, applied with probability p.
std::vector<std::shared_ptr<const Augmentation>> all_transforms(double p) {
  return {
      std::make_shared<RandomCrop>(4, std::nullopt, p), std::make_shared<RandomHorizontalFlip>(p),
      std::make_shared<RandomAffine>(10.0, 0.1, p),
      std::make_shared<RandomErasing>(p, RandomErasing::Range{0.02, 0.33}, RandomErasing::Range{0.3, 3.3}),
      std::make_shared<GaussianNoise>(5.0, p)};
}

TEST(Augment, FlipTwiceIsIdentityAndOnceMirrors) {
  const Tensor x = batch(4, 3, 5, 7);
  RandomHorizontalFlip flip(1.0);
  Generator g(3);
  const Tensor once = flip.apply(x, g);
  const Tensor twice = flip.apply(once, g);
  EXPECT_EQ(values(twice), values(x));
  const auto a = values(x), b = values(once);
  for (int64_t r = 0; r < 4 * 3 * 5; ++r)
    for (int64_t c = 0; c < 7; ++c)
      ASSERT_EQ(b[static_cast<size_t>(r * 7 + c)], a[static_cast<size_t>(r * 7 + 6 - c)]);
}

TEST(Augment, CropWithoutPaddingIsIdentity) {
  const Tensor x = batch(6, 3, 8, 8);
  Generator g(1);
  EXPECT_EQ(values(RandomCrop(0).apply(x, g)), values(x));
}

TEST(Augment, PaddedCropIsAShiftWithZeroFill) {
  const int64_t n = 16, h = 6, w = 7, pad = 2;
  const Tensor x = batch(n, 2, h, w, 5);
  Generator g(11);
  const Tensor y = RandomCrop(pad).apply(x, g);
  ASSERT_EQ(y.shape(), x.shape());
  const auto a = values(x), b = values(y);
  std::set<std::pair<int64_t, int64_t>> offsets;
  for (int64_t i = 0; i < n; ++i) {
    bool found = false;
    for (int64_t dy = -pad; dy <= pad && !found; ++dy)
      for (int64_t dx = -pad; dx <= pad && !found; ++dx) {
        bool match = true;
        for (int64_t c = 0; c < 2 && match; ++c)
          for (int64_t yy = 0; yy < h && match; ++yy)
            for (int64_t xx = 0; xx < w && match; ++xx) {
              const int64_t sy = yy + dy, sx = xx + dx;
              const float want = sy >= 0 && sy < h && sx >= 0 && sx < w
                                     ? a[static_cast<size_t>(((i * 2 + c) * h + sy) * w + sx)]
                                     : 0.f;
              match = b[static_cast<size_t>(((i * 2 + c) * h + yy) * w + xx)] == want;
            }
        if (match) {
          found = true;
          offsets.insert({dy, dx});
        }
      }
    EXPECT_TRUE(found) << "example " << i << " is not a padded shift of its input";
  }
  EXPECT_GT(offsets.size(), 3u);  // offsets vary between examples
}

TEST(Augment, CropWithSizeChangesShape) {
  const Tensor x = batch(3, 1, 8, 8);
  RandomCrop crop(0, ImageSize{4, 5});
  Generator g(2);
  const Tensor y = crop.apply(x, g);
  ASSERT_EQ(y.shape(), (Shape{3, 1, 4, 5}));
  EXPECT_EQ(crop.output_dims({1, 8, 8}).h, 4);
  expect_input_error([&] { RandomCrop(1, ImageSize{20, 20}).apply(x, g); }, {"crop", "larger"});
}

TEST(Augment, EveryTransformWithPZeroIsIdentity) {
  const Tensor x = batch(8, 3, 12, 12);
  for (const auto& t : all_transforms(0.0)) {
    Generator g(7);
    EXPECT_EQ(values(t->apply(x, g)), values(x)) << t->spec();
  }
  Generator g(7);
  EXPECT_EQ(values(Compose(all_transforms(0.0)).apply(x, g)), values(x));
}

TEST(Augment, EveryTransformWithPOneChangesTheBatch) {
  const Tensor x = batch(8, 3, 12, 12);
  for (const auto& t : all_transforms(1.0)) {
    Generator g(7);
    const Tensor y = t->apply(x, g);
    EXPECT_EQ(y.shape(), x.shape()) << t->spec();
    EXPECT_NE(values(y), values(x)) << t->spec();
  }
}

TEST(Augment, SameSeedSameBitsDifferentSeedDifferentBits) {
  const Tensor x = batch(10, 3, 16, 16);
  Compose aug(all_transforms(0.5));
  Generator g1(42), g2(42), g3(43);
  const auto a = values(aug.apply(x, g1));
  const auto b = values(aug.apply(x, g2));
  const auto c = values(aug.apply(x, g3));
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  // The generator advanced: a second batch from the same generator differs.
  EXPECT_NE(values(aug.apply(x, g1)), a);
  EXPECT_EQ(g1.offset(), g2.offset() + 2);  // apply() draws exactly one 64-bit seed
}

TEST(Augment, ResultDoesNotDependOnThreadCount) {
  const int saved = num_threads();
  const Tensor x = batch(64, 3, 32, 32);
  Compose aug(all_transforms(0.7));
  set_num_threads(1);
  Generator g1(9);
  const auto a = values(aug.apply(x, g1));
  set_num_threads(2);
  Generator g2(9);
  const auto b = values(aug.apply(x, g2));
  set_num_threads(saved);
  EXPECT_EQ(a, b);
}

TEST(Augment, Uint8InputGivesTheSameAsFloat) {
  const Tensor x = batch(4, 3, 9, 9);
  const Tensor x8 = x.to(DType::UInt8);
  Compose aug(all_transforms(1.0));
  Generator g1(5), g2(5);
  const Tensor a = aug.apply(x, g1);
  const Tensor b = aug.apply(x8, g2);
  EXPECT_EQ(b.dtype(), DType::Float32);
  EXPECT_EQ(values(a), values(b));
}

TEST(Augment, ValuesStayInPixelRange) {
  std::vector<float> v(8 * 3 * 20 * 20);
  for (size_t i = 0; i < v.size(); ++i) v[i] = i % 3 == 0 ? 0.f : (i % 3 == 1 ? 255.f : 128.f);
  const Tensor x = Tensor::from_vector(v, {8, 3, 20, 20});
  Compose aug({std::make_shared<RandomAffine>(30.0, 0.2), std::make_shared<GaussianNoise>(60.0),
               std::make_shared<RandomErasing>(1.0, RandomErasing::Range{0.1, 0.3},
                                               RandomErasing::Range{0.5, 2.0}, true),
               std::make_shared<RandomCrop>(3)});
  Generator g(1);
  for (int rep = 0; rep < 5; ++rep)
    for (float y : values(aug.apply(x, g))) {
      ASSERT_GE(y, 0.f);
      ASSERT_LE(y, 255.f);
    }
}

TEST(Augment, ErasingIsOneRectangleWithAreaInRange) {
  const int64_t n = 200, h = 40, w = 50;
  const Tensor x = Tensor::full({n, 3, h, w}, 200.0f);
  const double lo = 0.1, hi = 0.25;
  RandomErasing erase(1.0, {lo, hi}, {0.5, 2.0});
  Generator g(3);
  const auto y = values(erase.apply(x, g));
  int erased_examples = 0;
  for (int64_t i = 0; i < n; ++i) {
    int64_t top = h, bottom = -1, left = w, right = -1, zeros = 0;
    for (int64_t yy = 0; yy < h; ++yy)
      for (int64_t xx = 0; xx < w; ++xx) {
        const float v0 = y[static_cast<size_t>(((i * 3 + 0) * h + yy) * w + xx)];
        for (int64_t c = 1; c < 3; ++c)
          ASSERT_EQ(y[static_cast<size_t>(((i * 3 + c) * h + yy) * w + xx)], v0);
        ASSERT_TRUE(v0 == 0.f || v0 == 200.f);
        if (v0 == 0.f) {
          ++zeros;
          top = std::min(top, yy), bottom = std::max(bottom, yy), left = std::min(left, xx),
          right = std::max(right, xx);
        }
      }
    if (zeros == 0) continue;
    ++erased_examples;
    EXPECT_EQ(zeros, (bottom - top + 1) * (right - left + 1)) << "not a rectangle";
    // Rounding each side to whole pixels moves the area by at most
    // 0.5*(eh + ew) + 0.25 pixels around the target.
    const double frac = static_cast<double>(zeros) / static_cast<double>(h * w);
    const double slack = (0.5 * static_cast<double>((bottom - top + 1) + (right - left + 1)) + 0.25) /
                         static_cast<double>(h * w);
    EXPECT_GE(frac, lo - slack);
    EXPECT_LE(frac, hi + slack);
  }
  EXPECT_EQ(erased_examples, n);  // these ranges always fit
}

TEST(Augment, ErasingWithRandomFillUsesManyValues) {
  const Tensor x = Tensor::full({2, 3, 32, 32}, 0.0f);
  RandomErasing erase(1.0, {0.2, 0.3}, {1.0, 1.0}, true);
  Generator g(4);
  std::set<float> seen;
  for (float v : values(erase.apply(x, g))) seen.insert(v);
  EXPECT_GT(seen.size(), 100u);
}

TEST(Augment, ZeroRotationAndTranslationIsIdentity) {
  const Tensor x = batch(4, 3, 11, 9);
  RandomAffine none(0.0, 0.0, 1.0);
  Generator g(8);
  EXPECT_EQ(values(none.apply(x, g)), values(x));
}

TEST(Augment, QuarterTurnMatchesHandRotation) {
  // Counter-clockwise as displayed (np.rot90): out[y][x] = in[x][W-1-y].
  const int64_t s = 6;
  const Tensor x = batch(1, 2, s, s, 3);
  const auto in = values(x);
  std::vector<float> out(in.size());
  RandomAffine::warp(in.data(), out.data(), {2, s, s}, 90.0, 0.0, 0.0);
  for (int64_t c = 0; c < 2; ++c)
    for (int64_t y = 0; y < s; ++y)
      for (int64_t xx = 0; xx < s; ++xx)
        EXPECT_NEAR(out[static_cast<size_t>((c * s + y) * s + xx)],
                    in[static_cast<size_t>((c * s + xx) * s + (s - 1 - y))], 1e-3)
            << "c=" << c << " y=" << y << " x=" << xx;
  // Within bilinear tolerance for an angle that is not snapped to exact sines.
  std::vector<float> near(in.size());
  RandomAffine::warp(in.data(), near.data(), {2, s, s}, 90.0 + 1e-7, 0.0, 0.0);
  for (size_t i = 0; i < in.size(); ++i) EXPECT_NEAR(near[i], out[i], 0.01);
  // -90 is the inverse: a quarter turn back restores the image.
  std::vector<float> back(in.size());
  RandomAffine::warp(out.data(), back.data(), {2, s, s}, -90.0, 0.0, 0.0);
  for (size_t i = 0; i < in.size(); ++i) EXPECT_NEAR(back[i], in[i], 1e-3);
}

TEST(Augment, HalfTurnOnOddSizeAndTranslation) {
  const Tensor x = batch(1, 1, 5, 7, 9);
  const auto in = values(x);
  std::vector<float> out(in.size());
  RandomAffine::warp(in.data(), out.data(), {1, 5, 7}, 180.0, 0.0, 0.0);
  for (int64_t y = 0; y < 5; ++y)
    for (int64_t xx = 0; xx < 7; ++xx)
      EXPECT_FLOAT_EQ(out[static_cast<size_t>(y * 7 + xx)], in[static_cast<size_t>((4 - y) * 7 + (6 - xx))]);
  // Shift right by 2, up by 1: out[y][x] = in[y+1][x-2], zero where that is outside.
  RandomAffine::warp(in.data(), out.data(), {1, 5, 7}, 0.0, 2.0, -1.0);
  for (int64_t y = 0; y < 5; ++y)
    for (int64_t xx = 0; xx < 7; ++xx) {
      const int64_t sy = y + 1, sx = xx - 2;
      const float want = sy < 5 && sx >= 0 ? in[static_cast<size_t>(sy * 7 + sx)] : 0.f;
      EXPECT_FLOAT_EQ(out[static_cast<size_t>(y * 7 + xx)], want);
    }
  // Half a pixel: the average of neighbours (bilinear).
  RandomAffine::warp(in.data(), out.data(), {1, 5, 7}, 0.0, 0.5, 0.0);
  EXPECT_FLOAT_EQ(out[3], 0.5f * (in[2] + in[3]));
}

TEST(Augment, NoiseHasTheRequestedSpread) {
  const Tensor x = Tensor::full({4, 3, 64, 64}, 128.0f);
  GaussianNoise noise(5.0);
  Generator g(12);
  const auto y = values(noise.apply(x, g));
  double sum = 0, sq = 0;
  for (float v : y) {
    sum += v - 128.0;
    sq += (v - 128.0) * (v - 128.0);
  }
  const double n = static_cast<double>(y.size());
  const double mean = sum / n, sd = std::sqrt(sq / n - mean * mean);
  EXPECT_NEAR(mean, 0.0, 0.1);
  EXPECT_NEAR(sd, 5.0, 0.15);
}

TEST(Augment, FlipProbabilityIsRoughlyP) {
  const int64_t n = 2000;
  const Tensor x = batch(n, 1, 1, 2);
  Generator g(1);
  const auto a = values(x), b = values(RandomHorizontalFlip(0.3).apply(x, g));
  int64_t flipped = 0;
  for (int64_t i = 0; i < n; ++i)
    if (a[static_cast<size_t>(2 * i)] != a[static_cast<size_t>(2 * i + 1)])
      flipped += b[static_cast<size_t>(2 * i)] == a[static_cast<size_t>(2 * i + 1)];
  EXPECT_NEAR(static_cast<double>(flipped) / static_cast<double>(n), 0.3, 0.05);
}

// ---- parser -----------------------------------------------------------------------------------

TEST(AugmentSpec, ParsesTheDocumentedExample) {
  const auto aug = parse_augmentation("crop:4,flip:0.5,affine:10:0.1,erase:0.25,noise:5");
  const auto& ts = std::dynamic_pointer_cast<Compose>(aug)->transforms();
  ASSERT_EQ(ts.size(), 5u);
  EXPECT_EQ(aug->spec(), "crop:4,flip:0.5,affine:10:0.1,erase:0.25:0.02-0.33:0.3-3.3:0,noise:5");
  // The canonical spec parses back to itself.
  EXPECT_EQ(parse_augmentation(aug->spec())->spec(), aug->spec());
}

TEST(AugmentSpec, DefaultsKeysAndWhitespace) {
  EXPECT_EQ(parse_augmentation(" flip , crop:2:p=0.5 ")->spec(), "flip:0.5,crop:2:p=0.5");
  EXPECT_EQ(parse_augmentation("affine:15")->spec(), "affine:15:0");
  EXPECT_EQ(parse_augmentation("erase:p=1:fill=random:scale=0.1-0.2")->spec(),
            "erase:1:0.1-0.2:0.3-3.3:random");
  EXPECT_EQ(parse_augmentation("crop:0:24x20")->spec(), "crop:0:24x20");
  EXPECT_EQ(parse_augmentation("noise:2.5:0.5")->spec(), "noise:2.5:p=0.5");
  EXPECT_EQ(parse_augmentation("FLIP:1")->spec(), "flip:1");
  EXPECT_EQ(parse_augmentation("")->spec(), "none");
  EXPECT_EQ(parse_augmentation("none")->spec(), "none");
  // An empty augmentation leaves batches as they are.
  const Tensor x = batch(2, 1, 3, 3);
  Generator g(0);
  EXPECT_EQ(values(parse_augmentation("none")->apply(x, g)), values(x));
}

TEST(AugmentSpec, BadSpecsNameTheToken) {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"blur:3", "blur:3"},
      {"flip:2", "flip:2"},
      {"flip:-0.1", "flip:-0.1"},
      {"crop", "crop"},
      {"crop:-1", "crop:-1"},
      {"crop:1.5", "crop:1.5"},
      {"crop:4:axb", "crop:4:axb"},
      {"noise:abc", "noise:abc"},
      {"noise:-1", "noise:-1"},
      {"affine:10:0.1:0.5:9", "affine:10:0.1:0.5:9"},
      {"affine:200", "affine:200"},
      {"affine:10:1.5", "affine:10:1.5"},
      {"erase:scale=0.5-0.1", "erase:scale=0.5-0.1"},
      {"erase:scale=0.1", "erase:scale=0.1"},
      {"erase:ratio=0-2", "erase:ratio=0-2"},
      {"erase:fill=blue", "erase:fill=blue"},
      {"erase:color=1", "erase:color=1"},
      {"crop:4:p=0.5:p=1", "crop:4:p=0.5:p=1"},
      {"flip,,crop:2", "empty item"},
      {"flip:", "flip:"},
      {"noise:5x", "noise:5x"},
  };
  for (const auto& [spec, token] : bad)
    expect_input_error([&] { parse_augmentation(spec); }, {"augmentation spec", token});
}

// ---- the loader transform -------------------------------------------------------------------------

Dataset image_dataset(int64_t n) {
  Dataset d;
  d.name = "imgs";
  std::vector<uint8_t> px(static_cast<size_t>(n * 3 * 8 * 8));
  std::mt19937 rng(3);
  for (uint8_t& p : px) p = static_cast<uint8_t>(rng());
  d.features = Tensor::from_vector(px, {n, 3, 8, 8});
  std::vector<int64_t> y(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) y[static_cast<size_t>(i)] = i % 2;
  d.labels = Tensor::from_vector(y);
  d.class_names = {"a", "b"};
  return d;
}

TEST(AugmentTransform, ConvertsToRawFloatPixels) {
  const Dataset d = image_dataset(5);
  Batch b;
  b.x = d.features;
  Generator g(0);
  make_image_transform(nullptr)(b, g);
  EXPECT_EQ(b.x.dtype(), DType::Float32);
  const auto want = d.features.to_vector<uint8_t>();
  const auto got = values(b.x);
  for (size_t i = 0; i < want.size(); ++i) ASSERT_EQ(got[i], static_cast<float>(want[i]));
  Batch t;
  t.x = Tensor::zeros({5, 4});
  expect_input_error([&] { make_image_transform(nullptr)(t, g); }, {"[N,C,H,W]", "[5,4]"});
}

TEST(AugmentTransform, LoaderBatchesAreTheSameWhateverTheWorkers) {
  const Dataset d = image_dataset(50);
  const auto aug = parse_augmentation("crop:2,flip,affine:10:0.1,erase:0.5,noise:3");
  auto run = [&](int workers) {
    DataLoader loader(d, {.batch_size = 8,
                          .shuffle = true,
                          .seed = 4,
                          .workers = workers,
                          .transform = make_image_transform(aug)});
    std::vector<float> all;
    for (int epoch = 0; epoch < 2; ++epoch) {
      loader.start_epoch(epoch);
      while (auto b = loader.next()) {
        EXPECT_EQ(b->x.dtype(), DType::Float32);
        const auto v = values(b->x);
        all.insert(all.end(), v.begin(), v.end());
      }
    }
    return all;
  };
  const auto a = run(0), b = run(1), c = run(3);
  EXPECT_EQ(a.size(), static_cast<size_t>(2 * 50 * 3 * 8 * 8));
  EXPECT_EQ(a, b);
  EXPECT_EQ(a, c);
}

}  // namespace
}  // namespace deft::data
