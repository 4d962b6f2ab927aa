// Small raster pictures for TensorBoard and the HTML report: image grids with
// coloured captions, a confusion-matrix heatmap, text in a built-in 5×7 bitmap
// font, and PNG encoding (libpng).
//
//   Image grid = render_prediction_grid(val.features, predicted, truth, class_names);
//   std::string png = encode_png(grid);                 // bytes of a PNG file
//   Image cm = render_confusion_matrix(counts, 10, class_names);  // counts: row-major C×C, rows = true
//
//   Image img(20, 60, 3);                                // height, width, channels; black
//   draw_text(img, 2, 2, "Sneaker 7", {0, 200, 0});     // top-left corner at x=2, y=2
//
// Images are 8-bit, height×width×channels, row-major (HWC), the layout TensorBoard's
// Summary.Image and PNG rows use. The renderers produce RGB.
#pragma once
#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "deft/tensor/tensor.h"

namespace deft::track {

struct Rgb {
  uint8_t r = 0, g = 0, b = 0;
};

struct Image {
  int64_t height = 0, width = 0, channels = 3;
  std::vector<uint8_t> pixels;  // height*width*channels, HWC

  Image() = default;
  Image(int64_t h, int64_t w, int64_t c, uint8_t fill = 0);
  uint8_t* at(int64_t y, int64_t x) { return pixels.data() + (y * width + x) * channels; }
  const uint8_t* at(int64_t y, int64_t x) const { return pixels.data() + (y * width + x) * channels; }
  // Sets one pixel (gray images get the colour's luma; alpha, if any, 255); outside: ignored.
  void set(int64_t y, int64_t x, Rgb c);
  void fill_rect(int64_t x, int64_t y, int64_t w, int64_t h, Rgb c);  // clipped to the image
};

// PNG file bytes of an image with 1 (gray), 2 (gray+alpha), 3 (RGB) or 4 (RGBA) channels.
// InputError on an empty image, a bad channel count or a pixel count that does not match.
std::string encode_png(std::span<const uint8_t> hwc, int64_t height, int64_t width, int64_t channels);
inline std::string encode_png(const Image& img) {
  return encode_png(img.pixels, img.height, img.width, img.channels);
}

// ---- the 5×7 font --------------------------------------------------------------------------

inline constexpr int kGlyphWidth = 5, kGlyphHeight = 7, kGlyphAdvance = 6;
// Rows top to bottom; bit 4 is the leftmost column. Digits, A–Z, a–z, space and
// . , : ; - + = _ / ( ) [ ] % # ' ! ? < > * (anything else draws as '?').
const std::array<uint8_t, kGlyphHeight>& glyph(char c);
// Width in pixels of `text` at `scale` (each font pixel scale×scale): 6 per character, less the last gap.
int64_t text_width(std::string_view text, int scale = 1);
// Draws `text` with its top-left corner at (x, y), clipped to the image.
void draw_text(Image& img, int64_t x, int64_t y, std::string_view text, Rgb color, int scale = 1);

// ---- renderers -----------------------------------------------------------------------------

struct GridCaption {
  std::vector<std::string> lines;  // cut to the tile's width
  Rgb color{230, 230, 230};
};

struct GridOptions {
  int64_t columns = 0;          // 0: ceil(sqrt(N))
  int64_t min_tile_width = 64;  // small images are enlarged by a whole factor (nearest) to reach it
  int64_t padding = 4;
  Rgb background{24, 24, 24};
};

// A grid of images (uint8 [N,C,H,W], C = 1 or 3: the datasets' layout), each with its
// caption lines below it. `captions` is empty or has one entry per image.
Image render_image_grid(const Tensor& images, const std::vector<GridCaption>& captions,
                        const GridOptions& options = {});

// The grid with "p:<predicted>" and "t:<true>" under each image, green where they agree
// and red where not. Class names by index ("7" when there is no name).
Image render_prediction_grid(const Tensor& images, std::span<const int64_t> predicted,
                             std::span<const int64_t> truth, const std::vector<std::string>& class_names,
                             const GridOptions& options = {});

// A confusion-matrix heatmap: rows are true classes ("<i> <name>" at the left), columns
// predicted classes (their index on top); each cell shaded by its share of the row
// (white to dark blue) with its count written in it. Over 100 classes: 4-pixel cells,
// no text. `counts` row-major num_classes×num_classes.
Image render_confusion_matrix(std::span<const int64_t> counts, int64_t num_classes,
                              const std::vector<std::string>& class_names, int scale = 2);

}  // namespace deft::track
