#include "deft/data/image.h"

#include <jerror.h>
#include <jpeglib.h>
#include <png.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <map>
#include <thread>
#include <utility>

#include "deft/tensor/file_io.h"
#include "deft/tensor/parallel.h"

namespace deft::data {

namespace fs = std::filesystem;

namespace {

// Images larger than this (decoded bytes) are refused rather than allocated.
constexpr uint64_t kMaxImageBytes = uint64_t{1} << 30;

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::vector<uint8_t> read_file_bytes(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) fail("cannot read image {}: it is a folder", path);
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) fail("cannot read image {}: {}", path, std::strerror(errno));
  std::vector<uint8_t> bytes;
  uint8_t buf[1 << 16];
  while (true) {
    const size_t n = std::fread(buf, 1, sizeof buf, f);
    bytes.insert(bytes.end(), buf, buf + n);
    if (n < sizeof buf) break;
  }
  const bool bad = std::ferror(f) != 0;
  const int err = errno;
  std::fclose(f);
  if (bad) fail("cannot read image {}: {}", path, std::strerror(err));
  return bytes;
}

// Interleaved [H,W,C] pixels -> uint8 tensor [C,H,W].
Tensor hwc_to_chw(const uint8_t* hwc, int64_t h, int64_t w, int64_t c) {
  Tensor out = Tensor::empty({c, h, w}, DType::UInt8);
  uint8_t* o = out.data<uint8_t>();
  const int64_t plane = h * w;
  if (c == 1) {
    std::memcpy(o, hwc, static_cast<size_t>(plane));
    return out;
  }
  for (int64_t p = 0; p < plane; ++p)
    for (int64_t k = 0; k < c; ++k) o[k * plane + p] = hwc[p * c + k];
  return out;
}

// ---- PNG decoding ------------------------------------------------------------------
//
// libpng reports errors by calling the error function, which must not return:
// ours records the message and longjmps back to the setjmp in png_decode. The
// frames it jumps over (libpng's and png_read_callback) own no C++ objects, and
// everything png_decode touches after setjmp lives in the PngDecode struct (not
// in locals a longjmp could clobber).

// Where the libpng error callback leaves its message (reader and writer alike).
struct PngErrorSink {
  char message[256] = {};
};

struct PngDecode : PngErrorSink {
  const uint8_t* data = nullptr;
  size_t size = 0;
  size_t pos = 0;
  png_structp png = nullptr;
  png_infop info = nullptr;
  uint32_t width = 0, height = 0;
  int channels = 0;
  std::vector<uint8_t> pixels;
  std::vector<png_bytep> rows;
  bool alloc_failed = false;
};

void png_error_callback(png_structp png, png_const_charp msg) {
  auto* sink = static_cast<PngErrorSink*>(png_get_error_ptr(png));
  std::snprintf(sink->message, sizeof sink->message, "%s", msg ? msg : "unknown libpng error");
  png_longjmp(png, 1);
}

void png_warning_callback(png_structp, png_const_charp) {}  // ancillary-chunk problems: ignored

void png_read_callback(png_structp png, png_bytep out, size_t n) {
  auto* st = static_cast<PngDecode*>(png_get_io_ptr(png));
  if (n > st->size - st->pos) png_error(png, "file is truncated");
  std::memcpy(out, st->data + st->pos, n);
  st->pos += n;
}

bool png_decode(PngDecode* st) {
  st->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, static_cast<PngErrorSink*>(st), png_error_callback,
                                   png_warning_callback);
  if (!st->png) {
    std::snprintf(st->message, sizeof st->message, "cannot create a libpng reader");
    return false;
  }
  st->info = png_create_info_struct(st->png);
  if (!st->info) {
    png_destroy_read_struct(&st->png, nullptr, nullptr);
    std::snprintf(st->message, sizeof st->message, "cannot create a libpng reader");
    return false;
  }
  if (setjmp(png_jmpbuf(st->png))) {
    png_destroy_read_struct(&st->png, &st->info, nullptr);
    return false;
  }
  png_set_read_fn(st->png, st, png_read_callback);
  png_read_info(st->png, st->info);
  const int color_type = png_get_color_type(st->png, st->info);
  const int bit_depth = png_get_bit_depth(st->png, st->info);
  if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(st->png);
  if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(st->png);
  if (bit_depth == 16) png_set_scale_16(st->png);
  png_set_strip_alpha(st->png);
  png_set_interlace_handling(st->png);
  png_read_update_info(st->png, st->info);
  st->width = png_get_image_width(st->png, st->info);
  st->height = png_get_image_height(st->png, st->info);
  st->channels = png_get_channels(st->png, st->info);
  const size_t rowbytes = png_get_rowbytes(st->png, st->info);
  if ((st->channels != 1 && st->channels != 3) || png_get_bit_depth(st->png, st->info) != 8 ||
      rowbytes != static_cast<size_t>(st->width) * static_cast<size_t>(st->channels))
    png_error(st->png, "unsupported pixel layout after conversion");
  if (static_cast<uint64_t>(rowbytes) * st->height > kMaxImageBytes) png_error(st->png, "image too large");
  try {
    st->pixels.resize(rowbytes * st->height);
    st->rows.resize(st->height);
  } catch (const std::exception&) {
    st->alloc_failed = true;
  }
  if (st->alloc_failed) png_error(st->png, "out of memory");
  for (uint32_t y = 0; y < st->height; ++y)
    st->rows[y] = st->pixels.data() + static_cast<size_t>(y) * rowbytes;
  png_read_image(st->png, st->rows.data());
  png_read_end(st->png, nullptr);
  png_destroy_read_struct(&st->png, &st->info, nullptr);
  return true;
}

Tensor decode_png(const uint8_t* data, size_t size, const std::string& name) {
  PngDecode st;
  st.data = data;
  st.size = size;
  if (!png_decode(&st)) fail("{}: corrupt PNG: {}", name, st.message);
  if (st.width == 0 || st.height == 0) fail("{}: corrupt PNG: image has no pixels", name);
  return hwc_to_chw(st.pixels.data(), st.height, st.width, st.channels);
}

// ---- JPEG decoding -----------------------------------------------------------------
//
// libjpeg's default error_exit calls exit(); ours formats the message and
// longjmps back to jpeg_decode. Warnings that mean the data ended early or is
// damaged (libjpeg would pad the image with gray and carry on) are made fatal.

struct JpegErrorManager {
  jpeg_error_mgr pub;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

[[noreturn]] void jpeg_error_exit_callback(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<JpegErrorManager*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

void jpeg_emit_message_callback(j_common_ptr cinfo, int level) {
  if (level >= 0) return;  // trace messages
  const int code = cinfo->err->msg_code;
  if (code == JWRN_JPEG_EOF || code == JWRN_HIT_MARKER || code == JWRN_HUFF_BAD_CODE ||
      code == JWRN_MUST_RESYNC)
    jpeg_error_exit_callback(cinfo);
  cinfo->err->num_warnings++;
}

void jpeg_output_message_callback(j_common_ptr) {}

struct JpegDecode {
  const uint8_t* data = nullptr;
  size_t size = 0;
  jpeg_decompress_struct cinfo;
  JpegErrorManager err;
  uint32_t width = 0, height = 0;
  int channels = 0;
  bool cmyk = false;
  bool adobe_inverted = false;
  std::vector<uint8_t> pixels;
  bool alloc_failed = false;
};

bool jpeg_decode(JpegDecode* st) {
  std::memset(&st->cinfo, 0, sizeof st->cinfo);
  st->cinfo.err = jpeg_std_error(&st->err.pub);
  st->err.pub.error_exit = jpeg_error_exit_callback;
  st->err.pub.emit_message = jpeg_emit_message_callback;
  st->err.pub.output_message = jpeg_output_message_callback;
  st->err.message[0] = '\0';
  if (setjmp(st->err.jump)) {
    jpeg_destroy_decompress(&st->cinfo);
    return false;
  }
  jpeg_create_decompress(&st->cinfo);
  jpeg_mem_src(&st->cinfo, st->data, static_cast<unsigned long>(st->size));
  jpeg_read_header(&st->cinfo, TRUE);
  switch (st->cinfo.jpeg_color_space) {
    case JCS_GRAYSCALE:
      st->cinfo.out_color_space = JCS_GRAYSCALE;
      break;
    case JCS_CMYK:
    case JCS_YCCK:
      st->cinfo.out_color_space = JCS_CMYK;
      st->cmyk = true;
      st->adobe_inverted = st->cinfo.saw_Adobe_marker != 0;
      break;
    default:
      st->cinfo.out_color_space = JCS_RGB;
      break;
  }
  jpeg_start_decompress(&st->cinfo);
  st->width = st->cinfo.output_width;
  st->height = st->cinfo.output_height;
  const int comps = st->cinfo.output_components;
  if (!(comps == 1 || comps == 3 || (st->cmyk && comps == 4))) ERREXIT(&st->cinfo, JERR_BAD_J_COLORSPACE);
  st->channels = st->cmyk ? 3 : comps;
  const size_t in_row = static_cast<size_t>(st->width) * static_cast<size_t>(comps);
  const size_t out_row = static_cast<size_t>(st->width) * static_cast<size_t>(st->channels);
  if (static_cast<uint64_t>(in_row) * st->height > kMaxImageBytes) ERREXIT(&st->cinfo, JERR_WIDTH_OVERFLOW);
  try {
    // CMYK rows are decoded one past the end of the RGB image, then converted in place.
    st->pixels.resize(out_row * st->height + (st->cmyk ? in_row : 0));
  } catch (const std::exception&) {
    st->alloc_failed = true;
  }
  if (st->alloc_failed) ERREXIT(&st->cinfo, JERR_OUT_OF_MEMORY);
  while (st->cinfo.output_scanline < st->cinfo.output_height) {
    const size_t y = st->cinfo.output_scanline;
    JSAMPROW row = st->cmyk ? st->pixels.data() + out_row * st->height : st->pixels.data() + y * out_row;
    if (jpeg_read_scanlines(&st->cinfo, &row, 1) != 1) ERREXIT(&st->cinfo, JERR_INPUT_EOF);
    if (st->cmyk) {
      uint8_t* dst = st->pixels.data() + y * out_row;
      for (uint32_t x = 0; x < st->width; ++x) {
        int c = row[4 * x], m = row[4 * x + 1], ye = row[4 * x + 2], k = row[4 * x + 3];
        if (!st->adobe_inverted) {
          c = 255 - c, m = 255 - m, ye = 255 - ye, k = 255 - k;
        }
        dst[3 * x] = static_cast<uint8_t>((c * k + 127) / 255);
        dst[3 * x + 1] = static_cast<uint8_t>((m * k + 127) / 255);
        dst[3 * x + 2] = static_cast<uint8_t>((ye * k + 127) / 255);
      }
    }
  }
  jpeg_finish_decompress(&st->cinfo);
  jpeg_destroy_decompress(&st->cinfo);
  return true;
}

Tensor decode_jpeg(const uint8_t* data, size_t size, const std::string& name) {
  auto st = std::make_unique<JpegDecode>();
  st->data = data;
  st->size = size;
  if (!jpeg_decode(st.get())) fail("{}: corrupt JPEG: {}", name, st->err.message);
  if (st->width == 0 || st->height == 0) fail("{}: corrupt JPEG: image has no pixels", name);
  return hwc_to_chw(st->pixels.data(), st->height, st->width, st->channels);
}

// ---- PNG encoding --------------------------------------------------------------------

struct PngEncode : PngErrorSink {
  png_structp png = nullptr;
  png_infop info = nullptr;
  const uint8_t* pixels = nullptr;  // interleaved [H,W,C]
  uint32_t width = 0, height = 0;
  int channels = 0;
  std::vector<png_bytep> rows;
  std::vector<uint8_t> out;
  bool alloc_failed = false;
};

void png_write_callback(png_structp png, png_bytep data, size_t n) {
  auto* st = static_cast<PngEncode*>(png_get_io_ptr(png));
  try {
    st->out.insert(st->out.end(), data, data + n);
  } catch (const std::exception&) {
    st->alloc_failed = true;
  }
  if (st->alloc_failed) png_error(png, "out of memory");
}

void png_flush_callback(png_structp) {}

bool png_encode(PngEncode* st) {
  st->png = png_create_write_struct(PNG_LIBPNG_VER_STRING, static_cast<PngErrorSink*>(st), png_error_callback,
                                    png_warning_callback);
  if (!st->png) {
    std::snprintf(st->message, sizeof st->message, "cannot create a libpng writer");
    return false;
  }
  st->info = png_create_info_struct(st->png);
  if (!st->info) {
    png_destroy_write_struct(&st->png, nullptr);
    std::snprintf(st->message, sizeof st->message, "cannot create a libpng writer");
    return false;
  }
  if (setjmp(png_jmpbuf(st->png))) {
    png_destroy_write_struct(&st->png, &st->info);
    return false;
  }
  png_set_write_fn(st->png, st, png_write_callback, png_flush_callback);
  const int color_type = st->channels == 1   ? PNG_COLOR_TYPE_GRAY
                         : st->channels == 2 ? PNG_COLOR_TYPE_GRAY_ALPHA
                         : st->channels == 3 ? PNG_COLOR_TYPE_RGB
                                             : PNG_COLOR_TYPE_RGB_ALPHA;
  png_set_IHDR(st->png, st->info, st->width, st->height, 8, color_type, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(st->png, st->info);
  png_write_image(st->png, st->rows.data());
  png_write_end(st->png, nullptr);
  png_destroy_write_struct(&st->png, &st->info);
  return true;
}

// ---- resizing ---------------------------------------------------------------------------

// For each output position, the first contributing input position and the
// normalised weights (PIL's bilinear resampling with antialiasing).
struct ResampleCoeffs {
  std::vector<int64_t> start, count;
  std::vector<float> weights;  // ksize per output position
  int64_t ksize = 0;
};

ResampleCoeffs resample_coeffs(int64_t in, int64_t out) {
  const double scale = static_cast<double>(in) / static_cast<double>(out);
  const double filterscale = std::max(scale, 1.0);
  const double support = filterscale;  // the triangle filter has support 1
  ResampleCoeffs c;
  c.ksize = static_cast<int64_t>(std::ceil(support)) * 2 + 1;
  c.start.resize(static_cast<size_t>(out));
  c.count.resize(static_cast<size_t>(out));
  c.weights.assign(static_cast<size_t>(out * c.ksize), 0.0f);
  for (int64_t i = 0; i < out; ++i) {
    const double center = (static_cast<double>(i) + 0.5) * scale;
    const int64_t lo = std::max<int64_t>(static_cast<int64_t>(std::floor(center - support + 0.5)), 0);
    const int64_t hi = std::min<int64_t>(static_cast<int64_t>(std::floor(center + support + 0.5)), in);
    double total = 0;
    std::vector<double> w;
    for (int64_t x = lo; x < hi; ++x) {
      const double t = std::fabs((static_cast<double>(x) - center + 0.5) / filterscale);
      const double v = t < 1.0 ? 1.0 - t : 0.0;
      w.push_back(v);
      total += v;
    }
    // Drop zero-weight taps at either end so `count` is tight.
    int64_t first = 0, last = static_cast<int64_t>(w.size());
    while (first < last && w[static_cast<size_t>(first)] == 0.0) ++first;
    while (last > first && w[static_cast<size_t>(last - 1)] == 0.0) --last;
    if (first == last || total <= 0) {  // cannot happen for in, out >= 1; keep a safe fallback
      c.start[static_cast<size_t>(i)] = std::min<int64_t>(static_cast<int64_t>(center), in - 1);
      c.count[static_cast<size_t>(i)] = 1;
      c.weights[static_cast<size_t>(i * c.ksize)] = 1.0f;
      continue;
    }
    c.start[static_cast<size_t>(i)] = lo + first;
    c.count[static_cast<size_t>(i)] = last - first;
    for (int64_t k = first; k < last; ++k)
      c.weights[static_cast<size_t>(i * c.ksize + k - first)] =
          static_cast<float>(w[static_cast<size_t>(k)] / total);
  }
  return c;
}

void check_chw_uint8(const Tensor& image, const char* op) {
  DEFT_CHECK(image.defined(), "{}: image is undefined", op);
  DEFT_CHECK(image.dtype() == DType::UInt8 && image.dim() == 3,
             "{}: expected a uint8 [C,H,W] image, got {} {}", op, dtype_name(image.dtype()),
             shape_str(image.shape()));
}

// ---- folders ----------------------------------------------------------------------------

bool is_hidden(const fs::path& p) {
  const std::string n = p.filename().string();
  return !n.empty() && n[0] == '.';
}

std::string size_str(int64_t h, int64_t w) { return fmt::format("{}\u00d7{}", h, w); }

// Decodes `paths` on worker threads, converts channels and sizes, and stacks
// them into uint8 [N,C,H,W]. `what` prefixes error messages ("image folder").
Tensor decode_all(const std::vector<std::string>& paths, const ImageFolderOptions& opt,
                  const std::string& what) {
  const size_t n = paths.size();
  DEFT_CHECK(n > 0, "{}: no images", what);
  DEFT_CHECK(opt.channels == 0 || opt.channels == 1 || opt.channels == 3,
             "{}: channels must be 1 or 3 (or 0 for the majority), got {}", what, opt.channels);
  if (opt.resize)
    DEFT_CHECK(opt.resize->height > 0 && opt.resize->width > 0, "{}: resize size must be positive, got {}",
               what, size_str(opt.resize->height, opt.resize->width));

  std::vector<Tensor> images(n);
  std::vector<std::exception_ptr> errors(n);
  std::atomic<size_t> next{0};
  std::atomic<bool> stop{false};
  auto work = [&] {
    SerialScope serial;
    while (!stop.load()) {
      const size_t i = next.fetch_add(1);
      if (i >= n) return;
      try {
        Tensor img = decode_image(paths[i]);
        if (opt.channels != 0) img = convert_channels(img, opt.channels);
        if (opt.resize) img = resize_image(img, opt.resize->height, opt.resize->width);
        images[i] = std::move(img);
      } catch (...) {
        errors[i] = std::current_exception();
        stop.store(true);
      }
    }
  };
  int threads = opt.threads > 0 ? opt.threads : num_threads();
  threads = static_cast<int>(std::min<size_t>(static_cast<size_t>(std::max(threads, 1)), n));
  if (threads <= 1) {
    work();
  } else {
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) pool.emplace_back(work);
    for (std::thread& t : pool) t.join();
  }
  // Items are claimed in order, so every index below a failing one was
  // decoded: the first error by index is the same whatever the thread count.
  for (size_t i = 0; i < n; ++i)
    if (errors[i]) std::rethrow_exception(errors[i]);

  int64_t channels = opt.channels;
  if (channels == 0) {
    size_t gray = 0;
    for (const Tensor& t : images) gray += t.size(0) == 1;
    channels = gray > n - gray ? 1 : 3;
  }
  for (Tensor& t : images) t = convert_channels(t, channels);

  int64_t h = 0, w = 0;
  if (opt.resize) {
    h = opt.resize->height;
    w = opt.resize->width;
  } else {
    // The most common size (ties: the one seen first) is "the" size.
    std::map<std::pair<int64_t, int64_t>, size_t> counts;
    std::vector<std::pair<int64_t, int64_t>> order;
    for (const Tensor& t : images) {
      const auto key = std::make_pair(t.size(1), t.size(2));
      if (counts[key]++ == 0) order.push_back(key);
    }
    auto best = order.front();
    for (const auto& k : order)
      if (counts[k] > counts[best]) best = k;
    h = best.first;
    w = best.second;
    for (size_t i = 0; i < n; ++i)
      if (images[i].size(1) != h || images[i].size(2) != w)
        fail("{}: {} is {}, others are {}; pass --resize HxW", what, paths[i],
             size_str(images[i].size(1), images[i].size(2)), size_str(h, w));
  }
  Tensor out = Tensor::empty({static_cast<int64_t>(n), channels, h, w}, DType::UInt8);
  const size_t per = static_cast<size_t>(channels * h * w);
  uint8_t* o = out.data<uint8_t>();
  for (size_t i = 0; i < n; ++i) std::memcpy(o + i * per, images[i].data<uint8_t>(), per);
  return out;
}

}  // namespace

// ---- public API ----------------------------------------------------------------------------

ImageSize parse_image_size(const std::string& text) {
  // Accept "×" (UTF-8 C3 97) as a separator too.
  std::string s;
  for (size_t i = 0; i < text.size(); ++i) {
    if (i + 1 < text.size() && static_cast<unsigned char>(text[i]) == 0xC3 &&
        static_cast<unsigned char>(text[i + 1]) == 0x97) {
      s.push_back('x');
      ++i;
    } else {
      s.push_back(text[i]);
    }
  }
  auto parse_dim = [&](const std::string& part) -> int64_t {
    if (part.empty() || part.size() > 9 ||
        !std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; }))
      fail("bad image size '{}': expected HxW, e.g. 28x28", text);
    const int64_t v = std::stoll(part);
    if (v <= 0) fail("bad image size '{}': height and width must be positive", text);
    return v;
  };
  const size_t x = s.find_first_of("xX");
  if (x == std::string::npos) {
    const int64_t v = parse_dim(s);
    return {v, v};
  }
  return {parse_dim(s.substr(0, x)), parse_dim(s.substr(x + 1))};
}

Tensor decode_image_bytes(const uint8_t* data, size_t size, const std::string& name) {
  if (size == 0) fail("{}: empty file, not an image", name);
  static const uint8_t kPng[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  if (size >= 8 && std::memcmp(data, kPng, 8) == 0) return decode_png(data, size, name);
  if (size >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF)
    return decode_jpeg(data, size, name);
  auto starts = [&](const char* magic) {
    return size >= std::strlen(magic) && std::memcmp(data, magic, std::strlen(magic)) == 0;
  };
  const char* kind = starts("GIF8") ? "a GIF image"
                     : starts("BM") ? "a BMP image"
                     : (starts("RIFF") && size >= 12 && std::memcmp(data + 8, "WEBP", 4) == 0)
                         ? "a WebP image"
                     : (starts("II*") || starts("MM")) ? "a TIFF image"
                                                       : nullptr;
  if (kind) fail("{}: {}; only PNG and JPEG are supported", name, kind);
  if (size >= 4 && std::memcmp(data, "\x89PNG", 4) == 0) fail("{}: corrupt PNG: damaged signature", name);
  fail("{}: not a PNG or JPEG image (first bytes {:02x} {:02x} {:02x} {:02x})", name, data[0],
       size > 1 ? data[1] : 0, size > 2 ? data[2] : 0, size > 3 ? data[3] : 0);
}

Tensor decode_image(const std::string& path) {
  const std::vector<uint8_t> bytes = read_file_bytes(path);
  return decode_image_bytes(bytes.data(), bytes.size(), path);
}

std::vector<uint8_t> encode_png_bytes(const Tensor& image) {
  DEFT_CHECK(image.defined(), "encode_png: image is undefined");
  DEFT_CHECK(image.dtype() == DType::UInt8, "encode_png: expected uint8 pixels, got {}",
             dtype_name(image.dtype()));
  Tensor chw = image;
  if (chw.dim() == 2)
    chw =
        make_view(chw, {1, chw.size(0), chw.size(1)}, {0, chw.strides()[0], chw.strides()[1]}, chw.offset());
  DEFT_CHECK(chw.dim() == 3 && chw.size(0) >= 1 && chw.size(0) <= 4,
             "encode_png: expected a [C,H,W] image with C = 1..4, got {}", shape_str(image.shape()));
  const int64_t c = chw.size(0), h = chw.size(1), w = chw.size(2);
  DEFT_CHECK(h > 0 && w > 0 && h < (int64_t{1} << 31) && w < (int64_t{1} << 31),
             "encode_png: cannot write an image of shape {}", shape_str(image.shape()));
  // Interleave to [H,W,C].
  const std::vector<uint8_t> flat = chw.to_vector<uint8_t>();
  std::vector<uint8_t> hwc(flat.size());
  const int64_t plane = h * w;
  for (int64_t k = 0; k < c; ++k)
    for (int64_t p = 0; p < plane; ++p)
      hwc[static_cast<size_t>(p * c + k)] = flat[static_cast<size_t>(k * plane + p)];

  auto st = std::make_unique<PngEncode>();
  st->pixels = hwc.data();
  st->width = static_cast<uint32_t>(w);
  st->height = static_cast<uint32_t>(h);
  st->channels = static_cast<int>(c);
  st->rows.resize(static_cast<size_t>(h));
  for (int64_t y = 0; y < h; ++y) st->rows[static_cast<size_t>(y)] = hwc.data() + y * w * c;
  if (!png_encode(st.get())) fail<Error>("encode_png: {}", st->message);
  return std::move(st->out);
}

void encode_png(const std::string& path, const Tensor& image) {
  write_file_atomically(path, encode_png_bytes(image));
}

bool has_image_extension(const std::string& path) {
  const std::string ext = lower(fs::path(path).extension().string());
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg";
}

Tensor resize_image(const Tensor& image, int64_t height, int64_t width) {
  check_chw_uint8(image, "resize_image");
  DEFT_CHECK(height > 0 && width > 0, "resize_image: target size must be positive, got {}",
             size_str(height, width));
  const int64_t c = image.size(0), ih = image.size(1), iw = image.size(2);
  DEFT_CHECK(ih > 0 && iw > 0, "resize_image: cannot resize an empty image {}", shape_str(image.shape()));
  const Tensor src = image.contiguous_copy();
  if (ih == height && iw == width) return src.clone();
  const uint8_t* in = src.data<uint8_t>();
  const ResampleCoeffs cx = resample_coeffs(iw, width);
  const ResampleCoeffs cy = resample_coeffs(ih, height);
  // Horizontal pass into floats [C, ih, width], then vertical into uint8.
  std::vector<float> tmp(static_cast<size_t>(c * ih * width));
  for (int64_t ch = 0; ch < c; ++ch)
    for (int64_t y = 0; y < ih; ++y) {
      const uint8_t* row = in + (ch * ih + y) * iw;
      float* orow = tmp.data() + (ch * ih + y) * width;
      for (int64_t x = 0; x < width; ++x) {
        const float* wt = cx.weights.data() + x * cx.ksize;
        const int64_t s = cx.start[static_cast<size_t>(x)], cnt = cx.count[static_cast<size_t>(x)];
        float acc = 0;
        for (int64_t k = 0; k < cnt; ++k) acc += wt[k] * static_cast<float>(row[s + k]);
        orow[x] = acc;
      }
    }
  Tensor out = Tensor::empty({c, height, width}, DType::UInt8);
  uint8_t* o = out.data<uint8_t>();
  for (int64_t ch = 0; ch < c; ++ch)
    for (int64_t y = 0; y < height; ++y) {
      const float* wt = cy.weights.data() + y * cy.ksize;
      const int64_t s = cy.start[static_cast<size_t>(y)], cnt = cy.count[static_cast<size_t>(y)];
      uint8_t* orow = o + (ch * height + y) * width;
      for (int64_t x = 0; x < width; ++x) {
        float acc = 0;
        for (int64_t k = 0; k < cnt; ++k)
          acc += wt[k] * tmp[static_cast<size_t>((ch * ih + s + k) * width + x)];
        orow[x] = static_cast<uint8_t>(std::lround(std::clamp(acc, 0.0f, 255.0f)));
      }
    }
  return out;
}

Tensor convert_channels(const Tensor& image, int64_t channels) {
  check_chw_uint8(image, "convert_channels");
  DEFT_CHECK(channels == 1 || channels == 3, "convert_channels: target must be 1 or 3 channels, got {}",
             channels);
  const int64_t c = image.size(0), h = image.size(1), w = image.size(2);
  if (c == channels) return image;
  DEFT_CHECK(c == 1 || c == 3, "convert_channels: cannot convert a {}-channel image", c);
  const Tensor src = image.contiguous_copy();
  const uint8_t* in = src.data<uint8_t>();
  const int64_t plane = h * w;
  Tensor out = Tensor::empty({channels, h, w}, DType::UInt8);
  uint8_t* o = out.data<uint8_t>();
  if (channels == 3) {
    for (int64_t k = 0; k < 3; ++k) std::memcpy(o + k * plane, in, static_cast<size_t>(plane));
  } else {
    for (int64_t p = 0; p < plane; ++p) {
      const uint32_t r = in[p], g = in[plane + p], b = in[2 * plane + p];
      o[p] = static_cast<uint8_t>((r * 19595u + g * 38470u + b * 7471u + 0x8000u) >> 16);
    }
  }
  return out;
}

Dataset load_image_folder(const std::string& dir, const ImageFolderOptions& options) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) fail("image folder: {} does not exist", dir);
  if (!fs::is_directory(dir, ec)) fail("image folder: {} is not a folder", dir);
  std::vector<fs::path> class_dirs;
  std::vector<std::string> paths;
  std::vector<int64_t> labels;
  Dataset d;
  try {
    for (const fs::directory_entry& e : fs::directory_iterator(dir))
      if (!is_hidden(e.path()) && e.is_directory()) class_dirs.push_back(e.path());
    std::sort(class_dirs.begin(), class_dirs.end(), [](const fs::path& a, const fs::path& b) {
      return a.filename().string() < b.filename().string();
    });
    if (class_dirs.empty())
      fail("image folder: {} has no class sub-folders (expected {}/<class>/<image>.png)", dir, dir);
    for (size_t k = 0; k < class_dirs.size(); ++k) {
      std::vector<std::string> files;
      for (auto it = fs::recursive_directory_iterator(class_dirs[k],
                                                      fs::directory_options::follow_directory_symlink);
           it != fs::recursive_directory_iterator(); ++it) {
        if (is_hidden(it->path())) {
          if (it->is_directory()) it.disable_recursion_pending();
          continue;
        }
        if (it->is_regular_file() && has_image_extension(it->path().string()))
          files.push_back(it->path().string());
      }
      if (files.empty())
        fail("image folder: class folder {} holds no PNG or JPEG files (.png, .jpg, .jpeg)",
             class_dirs[k].string());
      std::sort(files.begin(), files.end());
      for (std::string& f : files) {
        paths.push_back(std::move(f));
        labels.push_back(static_cast<int64_t>(k));
      }
      d.class_names.push_back(class_dirs[k].filename().string());
    }
  } catch (const fs::filesystem_error& e) {
    fail("image folder: cannot list {}: {}", e.path1().string(), e.code().message());
  }
  d.name = dir;
  d.source = dir;
  d.task = Task::Classification;
  d.features = decode_all(paths, options, "image folder");
  d.labels = Tensor::from_vector(labels);
  return d;
}

Dataset load_image_files(const std::vector<std::string>& paths, const ImageFolderOptions& options) {
  DEFT_CHECK(!paths.empty(), "images: no image files given");
  Dataset d;
  d.name = paths.size() == 1 ? paths[0] : fs::path(paths[0]).parent_path().string();
  d.source = d.name;
  d.features = decode_all(paths, options, "images");
  return d;
}

}  // namespace deft::data
