// TensorBoard event files and the rasters that go into them: CRC-32C, record
// framing, PNG round trips, the bitmap font, and the writer's errors. The whole
// file is read back by an independent Python reader in the ctest `tensorboard_reader`
// (tests/track/tb_reader.py).
#include <gtest/gtest.h>
#include <png.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "../data/data_test_util.h"
#include "deft/tensor/error.h"
#include "deft/tensor/random.h"
#include "deft/track/raster.h"
#include "deft/track/tensorboard.h"

namespace deft::track {
namespace {

using deft::test_util::TempDir;

std::string read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

std::vector<std::string> event_files(const std::string& dir) {
  std::vector<std::string> out;
  for (auto& e : std::filesystem::directory_iterator(dir))
    if (e.path().filename().string().rfind("events.out.tfevents.", 0) == 0) out.push_back(e.path().string());
  return out;
}

// RFC 3720 B.4 test vectors, and "123456789" (the CRC catalogue's check value).
TEST(Crc32c, KnownAnswers) {
  std::vector<uint8_t> zeros(32, 0), ones(32, 0xff), ascending(32);
  for (int i = 0; i < 32; ++i) ascending[static_cast<size_t>(i)] = static_cast<uint8_t>(i);
  for (auto* f : {&crc32c, &crc32c_portable}) {
    EXPECT_EQ(f(zeros.data(), zeros.size(), 0), 0x8A9136AAu);
    EXPECT_EQ(f(ones.data(), ones.size(), 0), 0x62A8AB43u);
    EXPECT_EQ(f(ascending.data(), ascending.size(), 0), 0x46DD794Eu);
    EXPECT_EQ(f("123456789", 9, 0), 0xE3069283u);
    EXPECT_EQ(f("", 0, 0), 0u);
  }
}

TEST(Crc32c, ContinuesAcrossPiecesAndAgreesWithTheTable) {
  Generator gen(3);
  const std::vector<float> r = Tensor::rand({1000}, gen).to_vector<float>();
  std::string data(reinterpret_cast<const char*>(r.data()), r.size() * sizeof(float));
  for (size_t n : {0u, 1u, 7u, 8u, 9u, 63u, 4000u}) {
    const uint32_t whole = crc32c(data.data(), n);
    EXPECT_EQ(whole, crc32c_portable(data.data(), n)) << n;
    const size_t cut = n / 3;
    EXPECT_EQ(crc32c(data.data() + cut, n - cut, crc32c(data.data(), cut)), whole) << n;
  }
}

TEST(Crc32c, Masking) {
  EXPECT_EQ(mask_crc(0), 0xa282ead8u);
  EXPECT_EQ(masked_crc32c("123456789", 9), 0xC78AB0E5u);  // ((c >> 15) | (c << 17)) + 0xa282ead8
}

// Event{wall_time 1.5, step 2, summary{value{tag "a", simple_value 1}}}, encoded and
// framed by hand (CRCs from a bit-at-a-time CRC-32C, not this library's).
const std::vector<uint8_t> kTinyRecord = {
    0x17, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,        // length 23
    0xe7, 0xce, 0xf8, 0x1e,                                // masked CRC of the length
    0x09, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xf8, 0x3f,  // 1: wall_time (fixed64) 1.5
    0x10, 0x02,                                            // 2: step 2
    0x2a, 0x0a,                                            // 5: summary, 10 bytes
    0x0a, 0x08,                                            //   1: value, 8 bytes
    0x0a, 0x01, 0x61,                                      //     1: tag "a"
    0x15, 0x00, 0x00, 0x80, 0x3f,                          //     2: simple_value (fixed32) 1.0f
    0xfd, 0xe5, 0x5f, 0x52,                                // masked CRC of the data
};

TEST(TensorBoard, FramesAHandComputedEvent) {
  const std::string event = tb::event_with_summary(1.5, 2, tb::scalar_summary("a", 1.0f));
  const std::string record = frame_record(event);
  EXPECT_EQ(std::vector<uint8_t>(record.begin(), record.end()), kTinyRecord);

  TempDir dir;
  {
    TensorBoardWriter w(dir.str());
    w.add_scalar("a", 1.0, 2, 1.5);
  }
  const auto files = event_files(dir.str());
  ASSERT_EQ(files.size(), 1u);
  EXPECT_NE(files[0].find("events.out.tfevents."), std::string::npos);
  const std::string bytes = read_all(files[0]);
  // First record: the file_version event; then ours, byte for byte.
  ASSERT_GE(bytes.size(), 12u);
  uint64_t first_len = 0;
  for (int i = 7; i >= 0; --i)
    first_len = (first_len << 8) | static_cast<uint8_t>(bytes[static_cast<size_t>(i)]);
  const std::string first = bytes.substr(12, first_len);
  EXPECT_NE(first.find("brain.Event:2"), std::string::npos);
  const std::string rest = bytes.substr(12 + first_len + 4);
  EXPECT_EQ(std::vector<uint8_t>(rest.begin(), rest.end()), kTinyRecord);
}

TEST(TensorBoard, ProtoWriterVarintsAndPackedDoubles) {
  ProtoWriter w;
  w.varint(1, 300).sint(2, -1);
  const std::vector<uint8_t> want = {0x08, 0xac, 0x02, 0x10, 0xff, 0xff, 0xff,
                                     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
  EXPECT_EQ(std::vector<uint8_t>(w.str().begin(), w.str().end()), want);
  ProtoWriter p;
  const double d[] = {1.0, -2.0};
  p.packed_doubles(6, d);
  ASSERT_EQ(p.str().size(), 2u + 16u);
  EXPECT_EQ(static_cast<uint8_t>(p.str()[0]), 0x32);  // field 6, wire type 2
  EXPECT_EQ(static_cast<uint8_t>(p.str()[1]), 16);
}

// Decodes PNG bytes with libpng's simplified API into 8-bit pixels of `channels`.
std::vector<uint8_t> decode_png(const std::string& png, int64_t& h, int64_t& w, int64_t channels) {
  png_image img{};
  img.version = PNG_IMAGE_VERSION;
  EXPECT_TRUE(png_image_begin_read_from_memory(&img, png.data(), png.size())) << img.message;
  static constexpr png_uint_32 kFormats[] = {PNG_FORMAT_GRAY, PNG_FORMAT_GA, PNG_FORMAT_RGB, PNG_FORMAT_RGBA};
  img.format = kFormats[channels - 1];
  std::vector<uint8_t> out(PNG_IMAGE_SIZE(img));
  EXPECT_TRUE(png_image_finish_read(&img, nullptr, out.data(), 0, nullptr)) << img.message;
  h = img.height, w = img.width;
  return out;
}

TEST(TensorBoardRaster, PngRoundTripsEveryChannelCount) {
  Generator gen(5);
  for (int64_t c = 1; c <= 4; ++c) {
    const int64_t h = 7, w = 13;
    const auto r = Tensor::uniform({h * w * c}, 0.f, 256.f, gen).to_vector<float>();
    std::vector<uint8_t> px(r.size());
    for (size_t i = 0; i < r.size(); ++i) px[i] = static_cast<uint8_t>(std::min(r[i], 255.f));
    const std::string png = encode_png(px, h, w, c);
    ASSERT_EQ(png.substr(1, 3), "PNG");
    int64_t dh = 0, dw = 0;
    EXPECT_EQ(decode_png(png, dh, dw, c), px) << c << " channels";
    EXPECT_EQ(dh, h);
    EXPECT_EQ(dw, w);
  }
  test_util::expect_input_error([] { encode_png(std::vector<uint8_t>(5), 2, 2, 1); }, {"5 bytes", "2x2x1"});
}

TEST(TensorBoardRaster, FontDrawsTheGlyphPattern) {
  // 'A' as the table holds it, bit 4 = leftmost column.
  const std::array<uint8_t, 7> a = {0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11};
  EXPECT_EQ(glyph('A'), a);
  EXPECT_EQ(glyph('\x01'), glyph('?'));  // unknown characters draw as '?'

  const char* want[] = {
      // "7" drawn at x=1, y=1 into a 7 wide, 9 high image
      ".......", ".#####.", ".....#.", "....#..", "...#...", "..#....", "..#....", "..#....", ".......",
  };
  Image img(9, 7, 3);
  draw_text(img, 1, 1, "7", {255, 0, 0});
  for (int y = 0; y < 9; ++y)
    for (int x = 0; x < 7; ++x) {
      const uint8_t* p = img.at(y, x);
      const bool on = want[y][x] == '#';
      EXPECT_EQ(p[0], on ? 255 : 0) << "pixel " << x << "," << y;
      EXPECT_EQ(p[1], 0);
    }
  // Scale 2: every font pixel becomes 2x2; the advance is 12 pixels.
  Image big(14, 24, 1);
  draw_text(big, 0, 0, "11", {255, 255, 255}, 2);
  EXPECT_EQ(*big.at(0, 4), 255);  // '1' row 0 is ..#.. -> x 4..5
  EXPECT_EQ(*big.at(1, 5), 255);
  EXPECT_EQ(*big.at(0, 3), 0);
  EXPECT_EQ(*big.at(0, 16), 255);  // the second '1'
  EXPECT_EQ(text_width("11", 2), 22);
}

TEST(TensorBoardRaster, PredictionGridColoursCaptionsAndConfusionMatrixShadesCells) {
  Tensor images = Tensor::zeros({3, 1, 4, 4}, DType::UInt8);
  images.data<uint8_t>()[0] = 200;
  const std::vector<int64_t> pred = {0, 1, 2}, truth = {0, 2, 2};
  const Image grid =
      render_prediction_grid(images, pred, truth, {"a", "b", "c"}, {.columns = 3, .min_tile_width = 16});
  // Tiles 16x16 (4x enlarged), two caption lines of 9 px below, 4 px padding.
  EXPECT_EQ(grid.width, 4 + 3 * (16 + 4));
  EXPECT_EQ(grid.height, 4 + (16 + 2 + 2 * 9) + 4);
  EXPECT_EQ(grid.at(4, 4)[0], 200);  // the enlarged first pixel
  EXPECT_EQ(grid.at(7, 7)[0], 200);
  auto caption_colour = [&](int64_t tile) {  // the first lit pixel under the tile
    for (int64_t y = 4 + 16; y < grid.height; ++y)
      for (int64_t x = 4 + tile * 20; x < 4 + tile * 20 + 16; ++x)
        if (grid.at(y, x)[0] != 24 || grid.at(y, x)[1] != 24)
          return Rgb{grid.at(y, x)[0], grid.at(y, x)[1], 0};
    return Rgb{};
  };
  EXPECT_GT(caption_colour(0).g, caption_colour(0).r);  // right: green
  EXPECT_GT(caption_colour(1).r, caption_colour(1).g);  // wrong: red

  const std::vector<int64_t> counts = {9, 1, 0, 10};
  const Image cm = render_confusion_matrix(counts, 2, {"cat", "dog"}, 1);
  EXPECT_EQ(cm.channels, 3);
  EXPECT_GT(cm.width, 2 * 12);
  test_util::expect_input_error([&] { render_confusion_matrix(counts, 3, {}, 1); },
                                {"4 counts", "3 classes"});
}

TEST(TensorBoard, HistogramCountsEveryFiniteValue) {
  std::vector<float> v;
  for (int i = 0; i < 100; ++i) v.push_back(static_cast<float>(i));
  v.push_back(NAN);
  const std::string h = tb::histogram_proto(v);
  // min 0 (fixed64 field 1) and max 99 (field 2) lead the message.
  double mn = 1, mx = 0, num = 0;
  std::memcpy(&mn, h.data() + 1, 8);
  std::memcpy(&mx, h.data() + 10, 8);
  std::memcpy(&num, h.data() + 19, 8);
  EXPECT_EQ(mn, 0.0);
  EXPECT_EQ(mx, 99.0);
  EXPECT_EQ(num, 100.0);
}

TEST(TensorBoard, WriterErrorsNameThePath) {
  TempDir dir;
  const std::string file = dir.file("plain-file");
  std::ofstream(file) << "x";
  const std::string bad = file + "/runs";
  test_util::expect_input_error([&] { TensorBoardWriter w(bad); }, {bad, "cannot create folder"});
}

TEST(TensorBoard, BufferedEventsReachTheFileWithoutAnExplicitFlush) {
  TempDir dir;
  TensorBoardWriter w(dir.str(), /*flush_seconds*/ 0.05);
  const auto size = [&] { return std::filesystem::file_size(w.path()); };
  const auto header = size();  // the file_version event is written at once
  EXPECT_GT(header, 0u);
  w.add_scalar("a", 1.0, 2, 1.5);
  for (int i = 0; i < 100 && size() == header; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(size(), header + kTinyRecord.size());
}

TEST(TensorBoard, HParamValuesTakeNumbersStringsAndBools) {
  const HParams h = {{"lr", 1e-3}, {"epochs", 10}, {"optimizer", "adam"}, {"bn", true}};
  EXPECT_EQ(std::get<double>(h.at("epochs").value), 10.0);
  EXPECT_EQ(std::get<std::string>(h.at("optimizer").value), "adam");
  EXPECT_TRUE(std::get<bool>(h.at("bn").value));
}

}  // namespace
}  // namespace deft::track
