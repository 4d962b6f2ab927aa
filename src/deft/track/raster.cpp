#include "deft/track/raster.h"

#include <png.h>

#include <algorithm>
#include <cmath>
#include <utility>

#include "deft/tensor/error.h"

namespace deft::track {

namespace {

struct GlyphEntry {
  char c;
  std::array<uint8_t, kGlyphHeight> rows;
};

// Rows top to bottom, bit 4 = leftmost column.
constexpr GlyphEntry kFont[] = {
    {' ', {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}},  {'!', {0x04, 0x04, 0x04, 0x04, 0x04, 0x00, 0x04}},
    {'#', {0x0A, 0x0A, 0x1F, 0x0A, 0x1F, 0x0A, 0x0A}},  {'%', {0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03}},
    {'\'', {0x0C, 0x04, 0x08, 0x00, 0x00, 0x00, 0x00}}, {'(', {0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02}},
    {')', {0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08}},  {'*', {0x00, 0x04, 0x15, 0x0E, 0x15, 0x04, 0x00}},
    {'+', {0x00, 0x04, 0x04, 0x1F, 0x04, 0x04, 0x00}},  {',', {0x00, 0x00, 0x00, 0x00, 0x0C, 0x04, 0x08}},
    {'-', {0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00}},  {'.', {0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C}},
    {'/', {0x00, 0x01, 0x02, 0x04, 0x08, 0x10, 0x00}},  {'0', {0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E}},
    {'1', {0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E}},  {'2', {0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F}},
    {'3', {0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E}},  {'4', {0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02}},
    {'5', {0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E}},  {'6', {0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E}},
    {'7', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08}},  {'8', {0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E}},
    {'9', {0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C}},  {':', {0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00}},
    {';', {0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x04, 0x08}},  {'<', {0x02, 0x04, 0x08, 0x10, 0x08, 0x04, 0x02}},
    {'=', {0x00, 0x00, 0x1F, 0x00, 0x1F, 0x00, 0x00}},  {'>', {0x08, 0x04, 0x02, 0x01, 0x02, 0x04, 0x08}},
    {'?', {0x0E, 0x11, 0x01, 0x02, 0x04, 0x00, 0x04}},  {'A', {0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11}},
    {'B', {0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E}},  {'C', {0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E}},
    {'D', {0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C}},  {'E', {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F}},
    {'F', {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10}},  {'G', {0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F}},
    {'H', {0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11}},  {'I', {0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E}},
    {'J', {0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C}},  {'K', {0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11}},
    {'L', {0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F}},  {'M', {0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11}},
    {'N', {0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11}},  {'O', {0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}},
    {'P', {0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10}},  {'Q', {0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D}},
    {'R', {0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11}},  {'S', {0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E}},
    {'T', {0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04}},  {'U', {0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}},
    {'V', {0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04}},  {'W', {0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A}},
    {'X', {0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11}},  {'Y', {0x11, 0x11, 0x0A, 0x04, 0x04, 0x04, 0x04}},
    {'Z', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F}},  {'[', {0x0E, 0x08, 0x08, 0x08, 0x08, 0x08, 0x0E}},
    {']', {0x0E, 0x02, 0x02, 0x02, 0x02, 0x02, 0x0E}},  {'_', {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1F}},
    {'a', {0x00, 0x00, 0x0E, 0x01, 0x0F, 0x11, 0x0F}},  {'b', {0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x1E}},
    {'c', {0x00, 0x00, 0x0E, 0x10, 0x10, 0x11, 0x0E}},  {'d', {0x01, 0x01, 0x0D, 0x13, 0x11, 0x11, 0x0F}},
    {'e', {0x00, 0x00, 0x0E, 0x11, 0x1F, 0x10, 0x0E}},  {'f', {0x06, 0x09, 0x08, 0x1C, 0x08, 0x08, 0x08}},
    {'g', {0x00, 0x0F, 0x11, 0x11, 0x0F, 0x01, 0x0E}},  {'h', {0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x11}},
    {'i', {0x04, 0x00, 0x0C, 0x04, 0x04, 0x04, 0x0E}},  {'j', {0x02, 0x00, 0x06, 0x02, 0x02, 0x12, 0x0C}},
    {'k', {0x10, 0x10, 0x12, 0x14, 0x18, 0x14, 0x12}},  {'l', {0x0C, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E}},
    {'m', {0x00, 0x00, 0x1A, 0x15, 0x15, 0x11, 0x11}},  {'n', {0x00, 0x00, 0x16, 0x19, 0x11, 0x11, 0x11}},
    {'o', {0x00, 0x00, 0x0E, 0x11, 0x11, 0x11, 0x0E}},  {'p', {0x00, 0x00, 0x1E, 0x11, 0x1E, 0x10, 0x10}},
    {'q', {0x00, 0x00, 0x0D, 0x13, 0x0F, 0x01, 0x01}},  {'r', {0x00, 0x00, 0x16, 0x19, 0x10, 0x10, 0x10}},
    {'s', {0x00, 0x00, 0x0E, 0x10, 0x0E, 0x01, 0x1E}},  {'t', {0x08, 0x08, 0x1C, 0x08, 0x08, 0x09, 0x06}},
    {'u', {0x00, 0x00, 0x11, 0x11, 0x11, 0x13, 0x0D}},  {'v', {0x00, 0x00, 0x11, 0x11, 0x11, 0x0A, 0x04}},
    {'w', {0x00, 0x00, 0x11, 0x11, 0x15, 0x15, 0x0A}},  {'x', {0x00, 0x00, 0x11, 0x0A, 0x04, 0x0A, 0x11}},
    {'y', {0x00, 0x00, 0x11, 0x11, 0x0F, 0x01, 0x0E}},  {'z', {0x00, 0x00, 0x1F, 0x02, 0x04, 0x08, 0x1F}},
};

const std::array<std::array<uint8_t, kGlyphHeight>, 128>& font_table() {
  static const auto table = [] {
    std::array<std::array<uint8_t, kGlyphHeight>, 128> t{};
    std::array<uint8_t, kGlyphHeight> unknown{};
    for (const auto& e : kFont)
      if (e.c == '?') unknown = e.rows;
    t.fill(unknown);
    for (const auto& e : kFont) t[static_cast<unsigned char>(e.c)] = e.rows;
    return t;
  }();
  return table;
}

uint8_t luma(Rgb c) { return static_cast<uint8_t>(std::lround(0.299 * c.r + 0.587 * c.g + 0.114 * c.b)); }

Rgb lerp(Rgb a, Rgb b, double t) {
  auto mix = [t](uint8_t x, uint8_t y) { return static_cast<uint8_t>(std::lround(x + (y - x) * t)); };
  return {mix(a.r, b.r), mix(a.g, b.g), mix(a.b, b.b)};
}

// The first characters of `s` that fit in `width` pixels at `scale`.
std::string fit(const std::string& s, int64_t width, int scale) {
  const int64_t n = std::max<int64_t>(0, (width + scale) / (kGlyphAdvance * scale));
  return static_cast<int64_t>(s.size()) <= n ? s : s.substr(0, static_cast<size_t>(n));
}

std::string class_label(const std::vector<std::string>& names, int64_t i) {
  return i >= 0 && i < static_cast<int64_t>(names.size()) && !names[static_cast<size_t>(i)].empty()
             ? names[static_cast<size_t>(i)]
             : std::to_string(i);
}

}  // namespace

// ---- Image ------------------------------------------------------------------------------

Image::Image(int64_t h, int64_t w, int64_t c, uint8_t fill) : height(h), width(w), channels(c) {
  DEFT_CHECK(h >= 0 && w >= 0 && c >= 1 && c <= 4, "Image: bad size {}x{}x{}", h, w, c);
  pixels.assign(static_cast<size_t>(h * w * c), fill);
}

void Image::set(int64_t y, int64_t x, Rgb c) {
  if (y < 0 || x < 0 || y >= height || x >= width) return;
  uint8_t* p = at(y, x);
  if (channels >= 3) {
    p[0] = c.r, p[1] = c.g, p[2] = c.b;
    if (channels == 4) p[3] = 255;
  } else {
    p[0] = luma(c);
    if (channels == 2) p[1] = 255;
  }
}

void Image::fill_rect(int64_t x, int64_t y, int64_t w, int64_t h, Rgb c) {
  const int64_t x0 = std::max<int64_t>(x, 0), y0 = std::max<int64_t>(y, 0);
  const int64_t x1 = std::min(x + w, width), y1 = std::min(y + h, height);
  for (int64_t yy = y0; yy < y1; ++yy)
    for (int64_t xx = x0; xx < x1; ++xx) set(yy, xx, c);
}

// ---- PNG --------------------------------------------------------------------------------

std::string encode_png(std::span<const uint8_t> hwc, int64_t height, int64_t width, int64_t channels) {
  DEFT_CHECK(height > 0 && width > 0 && height <= 0x7fffffff && width <= 0x7fffffff,
             "encode_png: bad image size {}x{}", height, width);
  DEFT_CHECK(channels >= 1 && channels <= 4, "encode_png: {} channels (1 gray, 2 gray+alpha, 3 RGB, 4 RGBA)",
             channels);
  DEFT_CHECK(static_cast<int64_t>(hwc.size()) == height * width * channels,
             "encode_png: {} bytes for a {}x{}x{} image (want {})", hwc.size(), height, width, channels,
             height * width * channels);
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  image.width = static_cast<png_uint_32>(width);
  image.height = static_cast<png_uint_32>(height);
  static constexpr png_uint_32 kFormats[] = {PNG_FORMAT_GRAY, PNG_FORMAT_GA, PNG_FORMAT_RGB, PNG_FORMAT_RGBA};
  image.format = kFormats[channels - 1];
  png_alloc_size_t size = 0;
  // First call: the size needed; second: the bytes.
  if (!png_image_write_to_memory(&image, nullptr, &size, 0, hwc.data(), 0, nullptr))
    fail<Error>("encode_png: libpng: {}", image.message);
  std::string out(size, '\0');
  if (!png_image_write_to_memory(&image, out.data(), &size, 0, hwc.data(), 0, nullptr))
    fail<Error>("encode_png: libpng: {}", image.message);
  out.resize(size);
  return out;
}

// ---- text -------------------------------------------------------------------------------

const std::array<uint8_t, kGlyphHeight>& glyph(char c) {
  const auto u = static_cast<unsigned char>(c);
  return font_table()[u < 128 ? u : static_cast<unsigned char>('?')];
}

int64_t text_width(std::string_view text, int scale) {
  return text.empty() ? 0 : (static_cast<int64_t>(text.size()) * kGlyphAdvance - 1) * scale;
}

void draw_text(Image& img, int64_t x, int64_t y, std::string_view text, Rgb color, int scale) {
  for (char c : text) {
    const auto& rows = glyph(c);
    for (int r = 0; r < kGlyphHeight; ++r)
      for (int col = 0; col < kGlyphWidth; ++col)
        if (rows[static_cast<size_t>(r)] & (0x10 >> col))
          img.fill_rect(x + col * scale, y + r * scale, scale, scale, color);
    x += kGlyphAdvance * scale;
  }
}

// ---- grids ------------------------------------------------------------------------------

Image render_image_grid(const Tensor& images, const std::vector<GridCaption>& captions,
                        const GridOptions& o) {
  DEFT_CHECK(images.defined() && images.dim() == 4 && images.dtype() == DType::UInt8,
             "render_image_grid: want uint8 images [N,C,H,W], got {} {}",
             images.defined() ? dtype_name(images.dtype()) : "undefined",
             images.defined() ? shape_str(images.shape()) : "");
  const int64_t n = images.size(0), c = images.size(1), h = images.size(2), w = images.size(3);
  DEFT_CHECK(c == 1 || c == 3, "render_image_grid: {} channels (want 1 or 3)", c);
  DEFT_CHECK(captions.empty() || static_cast<int64_t>(captions.size()) == n,
             "render_image_grid: {} captions for {} images", captions.size(), n);
  DEFT_CHECK(n > 0 && h > 0 && w > 0, "render_image_grid: no images (shape {})", shape_str(images.shape()));
  const Tensor src = images.contiguous_copy();
  const uint8_t* px = src.data<uint8_t>();

  const int64_t zoom = std::max<int64_t>(1, (o.min_tile_width + w - 1) / w);
  size_t lines = 0;
  for (const auto& cap : captions) lines = std::max(lines, cap.lines.size());
  const int64_t line_h = kGlyphHeight + 2;
  const int64_t tile_w = w * zoom, tile_h = h * zoom + (lines ? 2 + static_cast<int64_t>(lines) * line_h : 0);
  const int64_t cols = o.columns > 0 ? std::min(o.columns, n)
                                     : static_cast<int64_t>(std::ceil(std::sqrt(static_cast<double>(n))));
  const int64_t rows = (n + cols - 1) / cols;
  const int64_t pad = std::max<int64_t>(o.padding, 0);
  Image out(pad + rows * (tile_h + pad), pad + cols * (tile_w + pad), 3);
  out.fill_rect(0, 0, out.width, out.height, o.background);

  for (int64_t i = 0; i < n; ++i) {
    const int64_t x0 = pad + (i % cols) * (tile_w + pad), y0 = pad + (i / cols) * (tile_h + pad);
    const uint8_t* im = px + i * c * h * w;
    for (int64_t y = 0; y < h * zoom; ++y)
      for (int64_t x = 0; x < w * zoom; ++x) {
        const int64_t sy = y / zoom, sx = x / zoom;
        uint8_t* d = out.at(y0 + y, x0 + x);
        for (int64_t ch = 0; ch < 3; ++ch) d[ch] = im[(c == 1 ? 0 : ch) * h * w + sy * w + sx];
      }
    if (captions.empty()) continue;
    const GridCaption& cap = captions[static_cast<size_t>(i)];
    for (size_t l = 0; l < cap.lines.size(); ++l)
      draw_text(out, x0, y0 + h * zoom + 2 + static_cast<int64_t>(l) * line_h, fit(cap.lines[l], tile_w, 1),
                cap.color);
  }
  return out;
}

Image render_prediction_grid(const Tensor& images, std::span<const int64_t> predicted,
                             std::span<const int64_t> truth, const std::vector<std::string>& class_names,
                             const GridOptions& options) {
  DEFT_CHECK(images.defined() && images.dim() == 4, "render_prediction_grid: want images [N,C,H,W]");
  const auto n = static_cast<size_t>(images.size(0));
  DEFT_CHECK(predicted.size() == n && truth.size() == n,
             "render_prediction_grid: {} images, {} predictions, {} labels", n, predicted.size(),
             truth.size());
  std::vector<GridCaption> captions(n);
  for (size_t i = 0; i < n; ++i) {
    const bool right = predicted[i] == truth[i];
    captions[i].lines = {"p:" + class_label(class_names, predicted[i]),
                         "t:" + class_label(class_names, truth[i])};
    captions[i].color = right ? Rgb{40, 220, 60} : Rgb{255, 60, 50};
  }
  return render_image_grid(images, captions, options);
}

// ---- confusion matrix -------------------------------------------------------------------

Image render_confusion_matrix(std::span<const int64_t> counts, int64_t k,
                              const std::vector<std::string>& class_names, int scale) {
  DEFT_CHECK(k >= 1, "render_confusion_matrix: {} classes", k);
  DEFT_CHECK(static_cast<int64_t>(counts.size()) == k * k,
             "render_confusion_matrix: {} counts for {} classes (want {})", counts.size(), k, k * k);
  scale = std::clamp(scale, 1, 8);
  const Rgb lo{247, 251, 255}, hi{8, 48, 107}, ink{0, 0, 0}, white{255, 255, 255};
  auto share = [&](int64_t r, int64_t c) {
    int64_t row = 0;
    for (int64_t j = 0; j < k; ++j) row += counts[static_cast<size_t>(r * k + j)];
    return row > 0 ? static_cast<double>(counts[static_cast<size_t>(r * k + c)]) / static_cast<double>(row)
                   : 0.0;
  };

  if (k > 100) {  // too many to label: the shading alone
    const int64_t cell = 4;
    Image out(k * cell, k * cell, 3, 255);
    for (int64_t r = 0; r < k; ++r)
      for (int64_t c = 0; c < k; ++c)
        out.fill_rect(c * cell, r * cell, cell, cell, lerp(lo, hi, share(r, c)));
    return out;
  }

  int64_t most = 0;
  for (int64_t v : counts) most = std::max(most, v);
  const int64_t digits =
      static_cast<int64_t>(std::max<size_t>(std::to_string(most).size(), std::to_string(k - 1).size()));
  const int64_t char_h = kGlyphHeight * scale;
  const int64_t cell_w = std::max<int64_t>(digits, 2) * kGlyphAdvance * scale + 4 * scale;
  const int64_t cell_h = char_h + 6 * scale;
  std::vector<std::string> labels(static_cast<size_t>(k));
  size_t label_len = 0;
  for (int64_t i = 0; i < k; ++i) {
    std::string name = class_label(class_names, i);
    labels[static_cast<size_t>(i)] =
        name == std::to_string(i) ? name : std::to_string(i) + " " + name.substr(0, 14);
    label_len = std::max(label_len, labels[static_cast<size_t>(i)].size());
  }
  const int64_t margin = 3 * scale;
  const int64_t left =
      std::max(text_width(std::string(label_len, 'x'), scale), text_width("true", scale)) + 2 * margin;
  const int64_t top = 2 * cell_h;  // title, then the column indices
  Image out(top + k * cell_h + margin,
            std::max(left + k * cell_w, left + text_width("predicted", scale)) + margin, 3, 255);
  draw_text(out, margin, margin, "true", ink, scale);
  draw_text(out, left, margin, "predicted", ink, scale);
  for (int64_t c = 0; c < k; ++c) {
    const std::string s = std::to_string(c);
    draw_text(out, left + c * cell_w + (cell_w - text_width(s, scale)) / 2, cell_h + 3 * scale, s, ink,
              scale);
  }
  for (int64_t r = 0; r < k; ++r) {
    const int64_t y = top + r * cell_h;
    draw_text(out, margin, y + 3 * scale, labels[static_cast<size_t>(r)], ink, scale);
    for (int64_t c = 0; c < k; ++c) {
      const double t = share(r, c);
      const int64_t x = left + c * cell_w;
      out.fill_rect(x, y, cell_w, cell_h, lerp(lo, hi, t));
      const std::string s = std::to_string(counts[static_cast<size_t>(r * k + c)]);
      draw_text(out, x + (cell_w - text_width(s, scale)) / 2, y + 3 * scale, s, t > 0.5 ? white : ink, scale);
    }
  }
  return out;
}

}  // namespace deft::track
