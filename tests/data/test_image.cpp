// Image decoding/encoding, resizing and image folders, on real files written by
// the test: PNGs from deft's encoder AND from an independent writer (Python's
// stdlib zlib + struct, no imaging library), JPEGs from libjpeg called here.
#include <gtest/gtest.h>
#include <jpeglib.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <csetjmp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "data_test_util.h"
#include "deft/data/image.h"
#include "deft/tensor/parallel.h"

namespace deft::data {
namespace {

using deft::test_util::expect_input_error;

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    path_ = fs::temp_directory_path() /
            ("deft_test_image_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }
  std::string str() const { return path_.string(); }

 private:
  fs::path path_;
};

void write_bytes(const std::string& path, const std::vector<uint8_t>& b) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  ASSERT_TRUE(f.good()) << path;
}

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

Tensor random_image(int64_t c, int64_t h, int64_t w, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> v(static_cast<size_t>(c * h * w));
  for (uint8_t& x : v) x = static_cast<uint8_t>(rng() & 0xFF);
  return Tensor::from_vector(v, {c, h, w});
}

// Smooth content (JPEG's lossy coding keeps it close).
Tensor smooth_image(int64_t c, int64_t h, int64_t w, int phase = 0) {
  std::vector<uint8_t> v(static_cast<size_t>(c * h * w));
  for (int64_t k = 0; k < c; ++k)
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x)
        v[static_cast<size_t>((k * h + y) * w + x)] =
            static_cast<uint8_t>(40 + (150 * x) / std::max<int64_t>(w - 1, 1) +
                                 (50 * y) / std::max<int64_t>(h - 1, 1) - 20 * k + phase);
  return Tensor::from_vector(v, {c, h, w});
}

std::vector<uint8_t> pixels(const Tensor& t) { return t.to_vector<uint8_t>(); }

// encode_png into a path whose folders may not exist yet.
void put_png(const std::string& path, const Tensor& img) {
  fs::create_directories(fs::path(path).parent_path());
  encode_png(path, img);
}

// ---- an independent JPEG writer: libjpeg called directly ---------------------------

struct TestJpegError {
  jpeg_error_mgr pub;
  std::jmp_buf jump;
};

[[noreturn]] void test_jpeg_error_exit(j_common_ptr cinfo) {
  std::longjmp(reinterpret_cast<TestJpegError*>(cinfo->err)->jump, 1);
}

struct JpegWriteJob {
  jpeg_compress_struct cinfo;
  TestJpegError err;
  unsigned char* out = nullptr;
  unsigned long out_size = 0;
  const std::vector<uint8_t>* interleaved = nullptr;
  int w = 0, h = 0, comps = 0, quality = 95;
  J_COLOR_SPACE space = JCS_RGB;
  bool progressive = false;
};

bool run_jpeg_write(JpegWriteJob* j) {
  j->cinfo.err = jpeg_std_error(&j->err.pub);
  j->err.pub.error_exit = test_jpeg_error_exit;
  if (setjmp(j->err.jump)) {
    jpeg_destroy_compress(&j->cinfo);
    return false;
  }
  jpeg_create_compress(&j->cinfo);
  jpeg_mem_dest(&j->cinfo, &j->out, &j->out_size);
  j->cinfo.image_width = static_cast<JDIMENSION>(j->w);
  j->cinfo.image_height = static_cast<JDIMENSION>(j->h);
  j->cinfo.input_components = j->comps;
  j->cinfo.in_color_space = j->space;
  jpeg_set_defaults(&j->cinfo);
  jpeg_set_quality(&j->cinfo, j->quality, TRUE);
  if (j->progressive) jpeg_simple_progression(&j->cinfo);
  jpeg_start_compress(&j->cinfo, TRUE);
  while (j->cinfo.next_scanline < j->cinfo.image_height) {
    JSAMPROW row = const_cast<JSAMPROW>(j->interleaved->data() + static_cast<size_t>(j->cinfo.next_scanline) *
                                                                     static_cast<size_t>(j->w * j->comps));
    jpeg_write_scanlines(&j->cinfo, &row, 1);
  }
  jpeg_finish_compress(&j->cinfo);
  jpeg_destroy_compress(&j->cinfo);
  return true;
}

// JPEG bytes of a uint8 [C,H,W] image (C = 1 gray, 3 RGB, 4 = Adobe CMYK as stored).
std::vector<uint8_t> encode_jpeg(const Tensor& chw, int quality = 95, bool progressive = false) {
  const int64_t c = chw.size(0), h = chw.size(1), w = chw.size(2);
  const std::vector<uint8_t> flat = pixels(chw);
  std::vector<uint8_t> hwc(flat.size());
  for (int64_t k = 0; k < c; ++k)
    for (int64_t p = 0; p < h * w; ++p)
      hwc[static_cast<size_t>(p * c + k)] = flat[static_cast<size_t>(k * h * w + p)];
  auto job = std::make_unique<JpegWriteJob>();
  job->interleaved = &hwc;
  job->w = static_cast<int>(w);
  job->h = static_cast<int>(h);
  job->comps = static_cast<int>(c);
  job->quality = quality;
  job->progressive = progressive;
  job->space = c == 1 ? JCS_GRAYSCALE : c == 3 ? JCS_RGB : JCS_CMYK;
  const bool ok = run_jpeg_write(job.get());
  EXPECT_TRUE(ok) << "libjpeg could not encode the test image";
  std::vector<uint8_t> bytes(job->out, job->out + (ok ? job->out_size : 0));
  std::free(job->out);
  return bytes;
}

void expect_close(const Tensor& got, const Tensor& want, int max_diff, double max_mean) {
  ASSERT_EQ(got.shape(), want.shape());
  const auto a = pixels(got), b = pixels(want);
  int worst = 0;
  double total = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const int d = std::abs(int(a[i]) - int(b[i]));
    worst = std::max(worst, d);
    total += d;
  }
  EXPECT_LE(worst, max_diff);
  EXPECT_LE(total / static_cast<double>(a.size()), max_mean);
}

// ---- an independent PNG writer and reader: Python's stdlib (zlib + struct) -------------

// Pixel formula shared by the Python writer and the expectations below.
int formula(int c, int y, int x) { return (x * 37 + y * 11 + c * 101) % 256; }

const char* kPythonPng = R"PY(
import struct, sys, zlib

def chunk(kind, data):
    return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data) & 0xffffffff)

def png(width, height, bit_depth, color_type, raw, interlace=0, extra=b''):
    ihdr = struct.pack('>IIBBBBB', width, height, bit_depth, color_type, 0, 0, interlace)
    return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', ihdr) + extra +
            chunk(b'IDAT', zlib.compress(raw, 9)) + chunk(b'IEND', b''))

def f(c, y, x):
    return (x * 37 + y * 11 + c * 101) % 256

def sample_bytes(vals, depth):
    if depth == 8:
        return bytes(vals)
    if depth == 16:
        return b''.join(struct.pack('>H', v) for v in vals)
    raise ValueError(depth)

def rows(w, h, pixel, depth, filt=0, bpp=1):
    out = b''
    for y in range(h):
        line = sample_bytes([s for x in range(w) for s in pixel(y, x)], depth)
        if filt == 1:  # Sub
            line = bytes((line[i] - (line[i - bpp] if i >= bpp else 0)) % 256 for i in range(len(line)))
        out += bytes([filt]) + line
    return out

def write(name, data):
    with open(sys.argv[1] + '/' + name, 'wb') as fh:
        fh.write(data)

W, H = 13, 7
write('gray8.png', png(W, H, 8, 0, rows(W, H, lambda y, x: [f(0, y, x)], 8)))
write('rgb8_sub.png', png(W, H, 8, 2, rows(W, H, lambda y, x: [f(c, y, x) for c in range(3)], 8, filt=1, bpp=3)))
write('rgba8.png', png(W, H, 8, 6, rows(W, H, lambda y, x: [f(c, y, x) for c in range(3)] + [(x * y) % 256], 8)))
write('graya8.png', png(W, H, 8, 4, rows(W, H, lambda y, x: [f(0, y, x), 255 - x], 8)))
write('gray16.png', png(W, H, 16, 0, rows(W, H, lambda y, x: [min(f(0, y, x) * 257 + (x % 2) * 100, 65535)], 16)))
write('rgb16.png', png(W, H, 16, 2, rows(W, H, lambda y, x: [f(c, y, x) * 257 for c in range(3)], 16)))

# 1-bit grayscale, packed MSB first: (x + y) % 2
raw = b''
for y in range(H):
    bits = [(x + y) % 2 for x in range(W)] + [0] * 7
    raw += b'\x00' + bytes(sum(bits[i + k] << (7 - k) for k in range(8)) for i in range(0, W, 8))
write('gray1.png', png(W, H, 1, 0, raw))

# Palette with transparency: colour k = ((60k+10)%256, (90k+20)%256, (30k+200)%256), index (x + 2y) % 4
plte = b''.join(bytes([(60 * k + 10) % 256, (90 * k + 20) % 256, (30 * k + 200) % 256]) for k in range(4))
trns = bytes([255, 128, 0, 64])
write('palette.png', png(W, H, 8, 3, rows(W, H, lambda y, x: [(x + 2 * y) % 4], 8),
                         extra=chunk(b'PLTE', plte) + chunk(b'tRNS', trns)))

# Adam7-interlaced RGB, 11 x 9
IW, IH = 11, 9
raw = b''
for xs, ys, dx, dy in [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]:
    cols = list(range(xs, IW, dx))
    if not cols:
        continue
    for y in range(ys, IH, dy):
        raw += b'\x00' + bytes(s for x in cols for s in [f(c, y, x) for c in range(3)])
write('interlaced.png', png(IW, IH, 8, 2, raw, interlace=1))

# Valid chunk CRCs around a broken zlib stream.
ihdr = struct.pack('>IIBBBBB', W, H, 8, 0, 0, 0, 0)
write('badzlib.png', b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', ihdr) + chunk(b'IDAT', b'\x78\x9c' + b'\xff' * 40) +
      chunk(b'IEND', b''))
# Image data that stops short (one row missing), chunks intact.
write('short.png', png(W, H, 8, 0, rows(W, H - 1, lambda y, x: [f(0, y, x)], 8)))

# Reader mode: python3 script.py DIR --decode IN OUT writes IN's 8-bit pixels (any
# filter, no interlace) to OUT as raw row-major interleaved bytes.
if len(sys.argv) > 2 and sys.argv[2] == '--decode':
    data = open(sys.argv[3], 'rb').read()
    assert data[:8] == b'\x89PNG\r\n\x1a\n'
    pos, idat = 8, b''
    while pos < len(data):
        n, kind = struct.unpack('>I4s', data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        assert zlib.crc32(kind + body) & 0xffffffff == struct.unpack('>I', data[pos + 8 + n:pos + 12 + n])[0]
        if kind == b'IHDR':
            w, h, depth, ctype, _, _, il = struct.unpack('>IIBBBBB', body)
            assert depth == 8 and il == 0
            bpp = {0: 1, 2: 3, 4: 2, 6: 4}[ctype]
        elif kind == b'IDAT':
            idat += body
        pos += 12 + n
    raw, out, prev, stride = zlib.decompress(idat), bytearray(), bytearray(w * bpp), w * bpp
    for y in range(h):
        ft, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], (prev[i - bpp] if i >= bpp else 0)
            if ft == 1: line[i] = (line[i] + a) % 256
            elif ft == 2: line[i] = (line[i] + b) % 256
            elif ft == 3: line[i] = (line[i] + (a + b) // 2) % 256
            elif ft == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) % 256
        out += line
        prev = line
    open(sys.argv[4], 'wb').write(bytes(out))
)PY";

const char* kPython = "/usr/bin/python3";

bool have_python() { return ::access(kPython, X_OK) == 0; }

// Runs the Python PNG writer into `dir` (and optionally its reader); false on failure.
bool run_python(const TempDir& dir, const std::string& extra_args = "") {
  const std::string script = dir / "pngtool.py";
  {
    std::ofstream f(script);
    f << kPythonPng;
  }
  const std::string cmd = std::string(kPython) + " " + script + " " + dir.str() + " " + extra_args;
  return std::system(cmd.c_str()) == 0;
}

// ---- decoding: PNGs from the independent writer -------------------------------------------

class PythonPngs : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!have_python()) return;
    dir_ = new TempDir();
    ok_ = run_python(*dir_);
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  void SetUp() override {
    if (!have_python()) GTEST_SKIP() << kPython << " not available";
    ASSERT_TRUE(ok_) << "the Python PNG writer failed";
  }
  static std::string file(const std::string& name) { return *dir_ / name; }
  static TempDir* dir_;
  static bool ok_;
};
TempDir* PythonPngs::dir_ = nullptr;
bool PythonPngs::ok_ = false;

void expect_formula(const Tensor& img, int64_t c, int64_t h, int64_t w) {
  ASSERT_EQ(img.dtype(), DType::UInt8);
  ASSERT_EQ(img.shape(), (Shape{c, h, w}));
  const auto p = pixels(img);
  for (int64_t k = 0; k < c; ++k)
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x)
        ASSERT_EQ(p[static_cast<size_t>((k * h + y) * w + x)], formula(int(k), int(y), int(x)))
            << "at c=" << k << " y=" << y << " x=" << x;
}

TEST_F(PythonPngs, Gray8) { expect_formula(decode_image(file("gray8.png")), 1, 7, 13); }
TEST_F(PythonPngs, Rgb8WithSubFilter) { expect_formula(decode_image(file("rgb8_sub.png")), 3, 7, 13); }
TEST_F(PythonPngs, RgbaDropsAlpha) { expect_formula(decode_image(file("rgba8.png")), 3, 7, 13); }
TEST_F(PythonPngs, GrayAlphaDropsAlpha) { expect_formula(decode_image(file("graya8.png")), 1, 7, 13); }
TEST_F(PythonPngs, Gray16ScalesTo8) { expect_formula(decode_image(file("gray16.png")), 1, 7, 13); }
TEST_F(PythonPngs, Rgb16ScalesTo8) { expect_formula(decode_image(file("rgb16.png")), 3, 7, 13); }
TEST_F(PythonPngs, InterlacedAdam7) { expect_formula(decode_image(file("interlaced.png")), 3, 9, 11); }

TEST_F(PythonPngs, OneBitGrayExpandsTo0And255) {
  const Tensor img = decode_image(file("gray1.png"));
  ASSERT_EQ(img.shape(), (Shape{1, 7, 13}));
  const auto p = pixels(img);
  for (int y = 0; y < 7; ++y)
    for (int x = 0; x < 13; ++x) EXPECT_EQ(p[static_cast<size_t>(y * 13 + x)], (x + y) % 2 ? 255 : 0);
}

TEST_F(PythonPngs, PaletteWithTransparencyBecomesRgb) {
  const Tensor img = decode_image(file("palette.png"));
  ASSERT_EQ(img.shape(), (Shape{3, 7, 13}));
  const auto p = pixels(img);
  for (int y = 0; y < 7; ++y)
    for (int x = 0; x < 13; ++x) {
      const int k = (x + 2 * y) % 4;
      const int want[3] = {(60 * k + 10) % 256, (90 * k + 20) % 256, (30 * k + 200) % 256};
      for (int c = 0; c < 3; ++c) EXPECT_EQ(p[static_cast<size_t>((c * 7 + y) * 13 + x)], want[c]);
    }
}

TEST_F(PythonPngs, BrokenZlibStreamIsAnInputError) {
  expect_input_error([&] { decode_image(file("badzlib.png")); }, {file("badzlib.png"), "corrupt PNG"});
}

TEST_F(PythonPngs, MissingImageDataIsAnInputError) {
  expect_input_error([&] { decode_image(file("short.png")); }, {file("short.png"), "corrupt PNG"});
}

TEST_F(PythonPngs, IndependentReaderAgreesWithOurEncoder) {
  for (int64_t c : {1, 3}) {
    const Tensor img = random_image(c, 9, 17, static_cast<uint32_t>(c));
    const std::string in = *dir_ / ("ours" + std::to_string(c) + ".png");
    const std::string out = *dir_ / ("ours" + std::to_string(c) + ".raw");
    encode_png(in, img);
    const std::string cmd = std::string(kPython) + " " + (*dir_ / "pngtool.py") + " " + dir_->str() +
                            " --decode " + in + " " + out;
    ASSERT_EQ(std::system(cmd.c_str()), 0);
    const std::vector<uint8_t> raw = read_bytes(out);  // interleaved [H,W,C]
    const auto want = pixels(img);                     // [C,H,W]
    ASSERT_EQ(raw.size(), want.size());
    for (int64_t k = 0; k < c; ++k)
      for (int64_t p = 0; p < 9 * 17; ++p)
        ASSERT_EQ(raw[static_cast<size_t>(p * c + k)], want[static_cast<size_t>(k * 9 * 17 + p)]);
  }
}

// ---- our encoder, round trips ------------------------------------------------------------------

TEST(ImagePng, RoundTripGrayAndRgb) {
  TempDir dir;
  for (int64_t c : {1, 3}) {
    const Tensor img = random_image(c, 31, 17, 7 + static_cast<uint32_t>(c));
    const std::string path = dir / ("img" + std::to_string(c) + ".png");
    encode_png(path, img);
    const Tensor back = decode_image(path);
    EXPECT_EQ(back.shape(), img.shape());
    EXPECT_EQ(pixels(back), pixels(img));
    // From memory too.
    const auto bytes = encode_png_bytes(img);
    EXPECT_EQ(pixels(decode_image_bytes(bytes.data(), bytes.size(), "mem")), pixels(img));
  }
}

TEST(ImagePng, RgbaEncodesAndDecodesWithoutAlpha) {
  const Tensor img = random_image(4, 5, 6, 3);
  const auto bytes = encode_png_bytes(img);
  const Tensor back = decode_image_bytes(bytes.data(), bytes.size(), "rgba");
  ASSERT_EQ(back.shape(), (Shape{3, 5, 6}));
  const auto a = pixels(img), b = pixels(back);
  EXPECT_TRUE(std::equal(b.begin(), b.end(), a.begin()));
}

TEST(ImagePng, TwoDimensionalIsGrayAndViewsAreEncodedLogically) {
  const Tensor img = random_image(1, 6, 8, 4);
  const Tensor hw = Tensor::from_vector(pixels(img), {6, 8});
  const auto b1 = encode_png_bytes(hw);
  EXPECT_EQ(pixels(decode_image_bytes(b1.data(), b1.size(), "hw")), pixels(img));
  // A non-contiguous view: [W,H] transposed back to [H,W] logical order.
  const Tensor t = Tensor::from_vector(pixels(img), {1, 6, 8});
  const Tensor hwc = make_view(t, {1, 8, 6}, {48, 1, 8}, 0);  // transpose of H and W
  const auto b2 = encode_png_bytes(hwc);
  const Tensor back = decode_image_bytes(b2.data(), b2.size(), "view");
  ASSERT_EQ(back.shape(), (Shape{1, 8, 6}));
  const auto p = pixels(back), q = pixels(img);
  for (int y = 0; y < 8; ++y)
    for (int x = 0; x < 6; ++x)
      EXPECT_EQ(p[static_cast<size_t>(y * 6 + x)], q[static_cast<size_t>(x * 8 + y)]);
}

TEST(ImagePng, WriteIsAtomicAndLeavesNoTempFiles) {
  TempDir dir;
  const std::string path = dir / "a.png";
  encode_png(path, random_image(3, 4, 4, 1));
  encode_png(path, random_image(3, 4, 4, 2));  // overwrite in place
  EXPECT_EQ(pixels(decode_image(path)), pixels(random_image(3, 4, 4, 2)));
  size_t files = 0;
  for (const auto& e : fs::directory_iterator(dir.str())) {
    (void)e;
    ++files;
  }
  EXPECT_EQ(files, 1u);
  expect_input_error([&] { encode_png(dir / "no/such/folder/x.png", random_image(1, 2, 2, 0)); },
                     {"no/such/folder/x.png"});
}

TEST(ImagePng, EncoderRejectsWrongTensors) {
  expect_input_error([] { encode_png_bytes(Tensor::zeros({3, 4, 4})); }, {"uint8"});
  expect_input_error([] { encode_png_bytes(Tensor::zeros({5, 4, 4}, DType::UInt8)); }, {"[5,4,4]"});
  expect_input_error([] { encode_png_bytes(Tensor::zeros({3, 0, 4}, DType::UInt8)); }, {"[3,0,4]"});
}

// ---- JPEG ---------------------------------------------------------------------------------------

TEST(ImageJpeg, RgbGrayAndProgressive) {
  TempDir dir;
  const Tensor rgb = smooth_image(3, 24, 40);
  const Tensor gray = smooth_image(1, 17, 23);
  write_bytes(dir / "rgb.jpg", encode_jpeg(rgb));
  write_bytes(dir / "gray.jpeg", encode_jpeg(gray));
  write_bytes(dir / "prog.jpg", encode_jpeg(rgb, 95, /*progressive=*/true));
  const Tensor a = decode_image(dir / "rgb.jpg");
  const Tensor b = decode_image(dir / "gray.jpeg");
  const Tensor p = decode_image(dir / "prog.jpg");
  EXPECT_EQ(a.shape(), (Shape{3, 24, 40}));
  EXPECT_EQ(b.shape(), (Shape{1, 17, 23}));
  expect_close(a, rgb, 12, 2.0);
  expect_close(b, gray, 8, 1.5);
  expect_close(p, rgb, 12, 2.0);
}

TEST(ImageJpeg, AdobeCmykConvertsToRgb) {
  // As Photoshop stores it (inverted): R = C*K/255 etc. With K = 255 the
  // stored C, M, Y are the R, G, B values.
  const Tensor rgb = smooth_image(3, 16, 16);
  std::vector<uint8_t> v = pixels(rgb);
  v.insert(v.end(), 16 * 16, 255);
  const Tensor cmyk = Tensor::from_vector(v, {4, 16, 16});
  const auto bytes = encode_jpeg(cmyk);
  const Tensor back = decode_image_bytes(bytes.data(), bytes.size(), "cmyk.jpg");
  expect_close(back, rgb, 12, 2.0);
}

TEST(ImageJpeg, FormatComesFromContentNotExtension) {
  TempDir dir;
  const Tensor rgb = smooth_image(3, 8, 8);
  write_bytes(dir / "actually_jpeg.png", encode_jpeg(rgb));
  expect_close(decode_image(dir / "actually_jpeg.png"), rgb, 12, 2.0);
  encode_png(dir / "actually_png.jpg", rgb);
  EXPECT_EQ(pixels(decode_image(dir / "actually_png.jpg")), pixels(rgb));
}

// ---- bad files: InputError naming the file, never an abort ---------------------------------------

TEST(ImageErrors, TruncatedAndCorruptPng) {
  TempDir dir;
  const std::vector<uint8_t> good = encode_png_bytes(random_image(3, 20, 20, 5));
  const std::string half = dir / "half.png";
  write_bytes(half, {good.begin(), good.begin() + static_cast<std::ptrdiff_t>(good.size() / 2)});
  expect_input_error([&] { decode_image(half); }, {half, "corrupt PNG", "truncated"});

  const std::string no_end = dir / "no_iend.png";  // all pixels present, IEND chunk cut off
  write_bytes(no_end, {good.begin(), good.end() - 12});
  expect_input_error([&] { decode_image(no_end); }, {no_end, "corrupt PNG"});

  const std::string header_only = dir / "header_only.png";
  write_bytes(header_only, {good.begin(), good.begin() + 10});
  expect_input_error([&] { decode_image(header_only); }, {header_only, "corrupt PNG"});

  std::vector<uint8_t> flipped = good;  // a byte inside the compressed pixel data
  flipped[flipped.size() / 2] ^= 0x55;
  const std::string idat = dir / "idat.png";
  write_bytes(idat, flipped);
  expect_input_error([&] { decode_image(idat); }, {idat, "corrupt PNG"});

  std::vector<uint8_t> ihdr = good;  // the width in IHDR: its CRC no longer matches
  ihdr[8 + 8 + 3] ^= 0x01;
  const std::string crc = dir / "crc.png";
  write_bytes(crc, ihdr);
  expect_input_error([&] { decode_image(crc); }, {crc, "corrupt PNG", "CRC"});

  std::vector<uint8_t> sig = good;
  sig[5] = 'X';
  write_bytes(dir / "sig.png", sig);
  expect_input_error([&] { decode_image(dir / "sig.png"); }, {dir / "sig.png", "PNG"});
}

TEST(ImageErrors, TruncatedAndCorruptJpeg) {
  TempDir dir;
  const std::vector<uint8_t> good = encode_jpeg(smooth_image(3, 64, 64));
  for (size_t keep : {good.size() * 6 / 10, good.size() - 2, size_t{200}, size_t{4}}) {
    const std::string path = dir / ("cut" + std::to_string(keep) + ".jpg");
    write_bytes(path, {good.begin(), good.begin() + static_cast<std::ptrdiff_t>(keep)});
    expect_input_error([&] { decode_image(path); }, {path, "corrupt JPEG"});
  }
  std::vector<uint8_t> garbage = {0xFF, 0xD8, 0xFF};
  for (int i = 0; i < 100; ++i) garbage.push_back(static_cast<uint8_t>(i * 7));
  const std::string g = dir / "garbage.jpg";
  write_bytes(g, garbage);
  expect_input_error([&] { decode_image(g); }, {g, "corrupt JPEG"});
}

TEST(ImageErrors, RandomCorruptionsAreInputErrorsOrDecode) {
  // Byte flips, truncations and splices of valid files: each either decodes to
  // a well-formed image or throws InputError; nothing else (no crash, no abort).
  const std::vector<std::vector<uint8_t>> seeds = {
      encode_png_bytes(random_image(3, 12, 9, 1)), encode_png_bytes(random_image(1, 7, 20, 2)),
      encode_jpeg(smooth_image(3, 20, 24)), encode_jpeg(smooth_image(1, 16, 16), 80, true)};
  std::mt19937 rng(1234);
  int errors = 0;
  for (int iter = 0; iter < 1200; ++iter) {
    std::vector<uint8_t> b = seeds[static_cast<size_t>(iter) % seeds.size()];
    const int kind = static_cast<int>(rng() % 3);
    if (kind == 0) {
      for (int k = 0, n = 1 + static_cast<int>(rng() % 4); k < n; ++k)
        b[rng() % b.size()] ^= static_cast<uint8_t>(1 + rng() % 255);
    } else if (kind == 1) {
      b.resize(3 + rng() % (b.size() - 3));
    } else {
      const size_t at = rng() % b.size();
      for (int k = 0; k < 16; ++k)
        b.insert(b.begin() + static_cast<std::ptrdiff_t>(at), static_cast<uint8_t>(rng()));
    }
    try {
      const Tensor t = decode_image_bytes(b.data(), b.size(), "fuzz");
      ASSERT_EQ(t.dtype(), DType::UInt8);
      ASSERT_EQ(t.dim(), 3);
      ASSERT_TRUE(t.size(0) == 1 || t.size(0) == 3);
    } catch (const InputError& e) {
      ++errors;
      ASSERT_NE(std::string(e.what()).find("fuzz"), std::string::npos);
    }
  }
  EXPECT_GT(errors, 300);
}

TEST(ImageErrors, NotAnImage) {
  TempDir dir;
  write_bytes(dir / "empty.png", {});
  expect_input_error([&] { decode_image(dir / "empty.png"); }, {dir / "empty.png", "empty"});
  const std::string text = "hello, I am not a picture\n";
  write_bytes(dir / "text.jpg", {text.begin(), text.end()});
  expect_input_error([&] { decode_image(dir / "text.jpg"); }, {dir / "text.jpg", "not a PNG or JPEG"});
  const std::string gif = "GIF89a\x01\x00\x01\x00";
  write_bytes(dir / "anim.png", {gif.begin(), gif.end()});
  expect_input_error([&] { decode_image(dir / "anim.png"); }, {dir / "anim.png", "GIF"});
  expect_input_error([&] { decode_image(dir / "missing.png"); }, {dir / "missing.png", "cannot read"});
  expect_input_error([&] { decode_image(dir.str()); }, {dir.str(), "folder"});
}

// ---- resizing and channels --------------------------------------------------------------------

TEST(ImageResize, SameSizeIsExactCopy) {
  const Tensor img = random_image(3, 9, 11, 9);
  const Tensor r = resize_image(img, 9, 11);
  EXPECT_EQ(pixels(r), pixels(img));
  EXPECT_FALSE(r.same(img));
}

TEST(ImageResize, ConstantStaysConstant) {
  const Tensor img = Tensor::full({3, 10, 14}, 77, DType::UInt8);
  for (auto [h, w] :
       {std::pair{5, 7}, std::pair{23, 31}, std::pair{1, 1}, std::pair{10, 3}, std::pair{40, 14}}) {
    const Tensor r = resize_image(img, h, w);
    ASSERT_EQ(r.shape(), (Shape{3, h, w}));
    for (uint8_t v : pixels(r)) ASSERT_EQ(v, 77);
  }
}

TEST(ImageResize, BilinearUpscaleHandComputed) {
  // Pixel centres at +0.5: output x in [0,4) samples input position (x+0.5)/2-0.5,
  // clamped: 0, 0.25, 0.75, 1 -> 0, 63.75, 191.25, 255.
  const Tensor img = Tensor::from_vector(std::vector<uint8_t>{0, 255}, {1, 1, 2});
  EXPECT_EQ(pixels(resize_image(img, 1, 4)), (std::vector<uint8_t>{0, 64, 191, 255}));
  // Vertical direction too.
  const Tensor col = Tensor::from_vector(std::vector<uint8_t>{0, 255}, {1, 2, 1});
  EXPECT_EQ(pixels(resize_image(col, 4, 1)), (std::vector<uint8_t>{0, 64, 191, 255}));
}

TEST(ImageResize, ShrinkUsesWidenedTriangleFilter) {
  // Halving: the triangle filter spans 2 input pixels each side of the centre.
  // Out 0 (centre 1.0): weights .75 .75 .25 on inputs 0,1,2 -> (0*.75+100*.75+200*.25)/1.75 = 71.4
  // Out 1 (centre 3.0): weights .25 .75 .75 on inputs 1,2,3 -> (25+150+191.25)/1.75 = 209.3
  const Tensor img = Tensor::from_vector(std::vector<uint8_t>{0, 100, 200, 255}, {1, 1, 4});
  EXPECT_EQ(pixels(resize_image(img, 1, 2)), (std::vector<uint8_t>{71, 209}));
}

TEST(ImageResize, ShrinkingACheckerboardAveragesInsteadOfAliasing) {
  std::vector<uint8_t> v(64 * 64);
  for (int y = 0; y < 64; ++y)
    for (int x = 0; x < 64; ++x) v[static_cast<size_t>(y * 64 + x)] = (x + y) % 2 ? 255 : 0;
  const Tensor r = resize_image(Tensor::from_vector(v, {1, 64, 64}), 8, 8);
  for (uint8_t p : pixels(r)) {
    EXPECT_GE(p, 112);
    EXPECT_LE(p, 143);
  }
}

TEST(ImageResize, RejectsBadInput) {
  expect_input_error([] { resize_image(Tensor::zeros({1, 4, 4}), 2, 2); }, {"uint8"});
  expect_input_error([] { resize_image(Tensor::zeros({4, 4}, DType::UInt8), 2, 2); }, {"[C,H,W]"});
  expect_input_error([] { resize_image(Tensor::zeros({1, 4, 4}, DType::UInt8), 0, 2); }, {"positive"});
}

TEST(ImageChannels, GrayToRgbAndLuma) {
  const Tensor g = Tensor::from_vector(std::vector<uint8_t>{0, 100, 255}, {1, 1, 3});
  EXPECT_EQ(pixels(convert_channels(g, 3)), (std::vector<uint8_t>{0, 100, 255, 0, 100, 255, 0, 100, 255}));
  // Pure red, green, blue, white: BT.601 luma 76, 150, 29, 255 (as PIL's "L").
  const Tensor rgb =
      Tensor::from_vector(std::vector<uint8_t>{255, 0, 0, 255, 0, 255, 0, 255, 0, 0, 255, 255}, {3, 1, 4});
  EXPECT_EQ(pixels(convert_channels(rgb, 1)), (std::vector<uint8_t>{76, 150, 29, 255}));
  EXPECT_TRUE(convert_channels(rgb, 3).same(rgb));
  expect_input_error([&] { convert_channels(rgb, 2); }, {"1 or 3"});
}

TEST(ImageSizeParse, AcceptsAndRejects) {
  auto eq = [](ImageSize s, int64_t h, int64_t w) { return s.height == h && s.width == w; };
  EXPECT_TRUE(eq(parse_image_size("28x28"), 28, 28));
  EXPECT_TRUE(eq(parse_image_size("32X40"), 32, 40));
  EXPECT_TRUE(eq(parse_image_size("32\u00d740"), 32, 40));
  EXPECT_TRUE(eq(parse_image_size("64"), 64, 64));
  for (const char* bad : {"", "0x3", "ax3", "3x", "x3", "-2x2", "3x3x3", "1.5x2"})
    expect_input_error([&] { parse_image_size(bad); }, {"image size"});
}

// ---- image folders ------------------------------------------------------------------------------

// root/{bird,cat,dog}/...: 3 images each, PNG and JPEG, upper-case extensions,
// a nested sub-folder, and files that must be ignored.
struct Folder {
  TempDir dir;
  std::vector<std::pair<std::string, Tensor>> pngs;  // exact expectations
  Folder() {
    const std::vector<std::string> classes = {"dog", "cat", "bird"};  // created unsorted
    uint32_t seed = 100;
    for (const std::string& c : classes) {
      for (int i = 0; i < 2; ++i) {
        const Tensor img = random_image(3, 8, 10, seed++);
        const std::string path = dir / (c + "/img" + std::to_string(i) + (i == 1 ? ".PNG" : ".png"));
        put_png(path, img);
        pngs.emplace_back(path, img);
      }
      write_bytes(dir / (c + "/sub/photo.jpg"),
                  encode_jpeg(smooth_image(3, 8, 10, static_cast<int>(seed++ % 10))));
      const std::string note = "not an image";
      write_bytes(dir / (c + "/notes.txt"), {note.begin(), note.end()});
      write_bytes(dir / (c + "/.hidden.png"), {note.begin(), note.end()});  // hidden: skipped
    }
    fs::create_directories(dir / ".git");        // hidden folder: not a class
    write_bytes(dir / "README.png", {1, 2, 3});  // a file at the top: not a class
  }
};

TEST(ImageFolder, LoadsClassesInSortedOrder) {
  Folder f;
  const Dataset d = load_image_folder(f.dir.str());
  EXPECT_EQ(d.class_names, (std::vector<std::string>{"bird", "cat", "dog"}));
  ASSERT_EQ(d.features.dtype(), DType::UInt8);
  ASSERT_EQ(d.features.shape(), (Shape{9, 3, 8, 10}));
  EXPECT_TRUE(d.is_image());
  EXPECT_EQ(d.labels.to_vector<int64_t>(), (std::vector<int64_t>{0, 0, 0, 1, 1, 1, 2, 2, 2}));
  EXPECT_EQ(d.size(), 9);
  // Within a class: sorted paths: img0.png, img1.PNG, sub/photo.jpg.
  const auto all = pixels(d.features);
  const size_t per = 3 * 8 * 10;
  const std::vector<std::pair<int, int>> where = {{0, 4}, {1, 5}, {3, 2},
                                                  {4, 3}, {6, 0}, {7, 1}};  // (row, pngs index)
  for (auto [row, k] : where) {
    const auto want = pixels(f.pngs[static_cast<size_t>(k)].second);
    EXPECT_TRUE(std::equal(want.begin(), want.end(), all.begin() + static_cast<std::ptrdiff_t>(row * per)))
        << "row " << row << " should be " << f.pngs[static_cast<size_t>(k)].first;
  }
}

TEST(ImageFolder, SameResultWhateverTheThreadCount) {
  Folder f;
  const Dataset a = load_image_folder(f.dir.str(), {.threads = 1});
  const Dataset b = load_image_folder(f.dir.str(), {.threads = 3});
  const Dataset c = load_image_folder(f.dir.str(), {.threads = 16});
  EXPECT_EQ(pixels(a.features), pixels(b.features));
  EXPECT_EQ(pixels(a.features), pixels(c.features));
}

TEST(ImageFolder, MixedSizesNeedResize) {
  Folder f;
  put_png(f.dir / "cat/odd.png", random_image(3, 12, 10, 1));
  expect_input_error([&] { load_image_folder(f.dir.str()); },
                     {f.dir / "cat/odd.png", "is 12\u00d710", "others are 8\u00d710", "--resize"});
  const Dataset d = load_image_folder(f.dir.str(), {.resize = ImageSize{16, 12}});
  EXPECT_EQ(d.features.shape(), (Shape{10, 3, 16, 12}));
  // Resizing happened per image, exactly as resize_image does it.
  const auto all = pixels(d.features);
  const auto want = pixels(resize_image(decode_image(f.dir / "bird/img0.png"), 16, 12));
  EXPECT_TRUE(std::equal(want.begin(), want.end(), all.begin()));
}

TEST(ImageFolder, MixedChannelsGoToTheMajorityOrTheOption) {
  TempDir dir;
  const Tensor g0 = random_image(1, 5, 5, 1), g1 = random_image(1, 5, 5, 2), rgb = random_image(3, 5, 5, 3);
  put_png(dir / "a/g0.png", g0);
  put_png(dir / "a/g1.png", g1);
  put_png(dir / "b/rgb.png", rgb);
  const Dataset d = load_image_folder(dir.str());
  ASSERT_EQ(d.features.shape(), (Shape{3, 1, 5, 5}));
  const auto all = pixels(d.features);
  const auto luma = pixels(convert_channels(rgb, 1));
  EXPECT_TRUE(std::equal(luma.begin(), luma.end(), all.begin() + 50));
  const Dataset d3 = load_image_folder(dir.str(), {.channels = 3});
  ASSERT_EQ(d3.features.shape(), (Shape{3, 3, 5, 5}));
  const auto all3 = pixels(d3.features);
  const auto want = pixels(rgb);
  EXPECT_TRUE(std::equal(want.begin(), want.end(), all3.begin() + 150));
  expect_input_error([&] { load_image_folder(dir.str(), {.channels = 2}); }, {"channels"});
}

TEST(ImageFolder, UnreadableImageIsNamed) {
  Folder f;
  const std::vector<uint8_t> good = encode_png_bytes(random_image(3, 8, 10, 1));
  write_bytes(f.dir / "cat/broken.png", {good.begin(), good.begin() + 30});
  expect_input_error([&] { load_image_folder(f.dir.str(), {.threads = 3}); },
                     {f.dir / "cat/broken.png", "PNG"});
  // A non-image file with an image extension.
  fs::remove(f.dir / "cat/broken.png");
  const std::string text = "plain text";
  write_bytes(f.dir / "dog/fake.jpg", {text.begin(), text.end()});
  expect_input_error([&] { load_image_folder(f.dir.str()); }, {f.dir / "dog/fake.jpg", "not a PNG or JPEG"});
}

TEST(ImageFolder, FirstBadFileIsReportedWhateverTheThreadCount) {
  Folder f;
  write_bytes(f.dir / "cat/zz_bad.png", {1, 2, 3});
  write_bytes(f.dir / "bird/zz_bad.png", {4, 5, 6});  // bird sorts first
  for (int threads : {1, 2, 4})
    expect_input_error([&] { load_image_folder(f.dir.str(), {.threads = threads}); },
                       {f.dir / "bird/zz_bad.png"});
}

TEST(ImageFolder, EmptyAndMissingFolders) {
  TempDir dir;
  expect_input_error([&] { load_image_folder(dir.str()); }, {dir.str(), "no class sub-folders"});
  expect_input_error([&] { load_image_folder(dir / "nope"); }, {dir / "nope", "does not exist"});
  fs::create_directories(dir / "only_class");
  const std::string note = "x";
  write_bytes(dir / "only_class/readme.txt", {note.begin(), note.end()});
  expect_input_error([&] { load_image_folder(dir.str()); }, {dir / "only_class", "no PNG or JPEG"});
  write_bytes(dir / "file.png", {1});
  expect_input_error([&] { load_image_folder(dir / "file.png"); }, {dir / "file.png", "not a folder"});
}

TEST(ImageFiles, UnlabeledInGivenOrder) {
  TempDir dir;
  const Tensor a = random_image(3, 4, 6, 1), b = random_image(3, 4, 6, 2);
  put_png(dir / "b.png", b);
  put_png(dir / "a.png", a);
  const Dataset d = load_image_files({dir / "b.png", dir / "a.png"});
  EXPECT_FALSE(d.labels.defined());
  ASSERT_EQ(d.features.shape(), (Shape{2, 3, 4, 6}));
  auto want = pixels(b);
  const auto pa = pixels(a);
  want.insert(want.end(), pa.begin(), pa.end());
  EXPECT_EQ(pixels(d.features), want);
}

}  // namespace
}  // namespace deft::data
