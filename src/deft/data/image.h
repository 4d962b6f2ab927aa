// Images: PNG/JPEG decoding, PNG encoding, resizing, and image-folder datasets.
//
//   Tensor img = decode_image("cat.jpg");           // uint8 [C,H,W], C = 1 or 3
//   Tensor small = resize_image(img, 32, 32);       // bilinear, antialiased when shrinking
//   encode_png("out/cat.png", small);               // atomic: temp file + rename
//   Dataset d = load_image_folder("pets", {.resize = ImageSize{64, 64}});
//   d.features  // uint8 [N,C,64,64], raw pixels 0–255; d.class_names = sorted folder names
//
// Formats are recognised by content (PNG or JPEG magic bytes), never by the
// file name; extensions (.png .jpg .jpeg, any case) only decide which files of a
// folder are images. Decoding:
//   PNG  (libpng): any bit depth and colour type. Palette -> RGB, 1/2/4-bit gray
//        -> 8-bit, 16-bit -> 8-bit (rounded, v*255/65535), alpha (and tRNS)
//        dropped: gray(+alpha) -> C=1, RGB(A)/palette -> C=3. Interlaced files OK.
//   JPEG (libjpeg): grayscale -> C=1; YCbCr/RGB -> C=3; CMYK/YCCK -> C=3
//        (Adobe inverted CMYK, as Photoshop writes it).
// Corrupt, truncated or unsupported data is an InputError naming the file
// (never an abort): "cat.png: corrupt PNG: IDAT: CRC error". A JPEG that ends
// early is an error too (libjpeg would otherwise pad it with gray).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "deft/data/dataset.h"
#include "deft/tensor/tensor.h"

namespace deft::data {

struct ImageSize {
  int64_t height = 0;
  int64_t width = 0;
};

// "HxW" (also "H×W" or "HXW"), e.g. "28x28" -> {28, 28}; a single number "N"
// means NxN. Both positive. InputError naming the text otherwise.
ImageSize parse_image_size(const std::string& text);

// ---- decoding and encoding ------------------------------------------------------

// Decodes a PNG or JPEG file to uint8 [C,H,W] (C = 1 or 3).
Tensor decode_image(const std::string& path);
// The same from memory; `name` names the data in error messages.
Tensor decode_image_bytes(const uint8_t* data, size_t size, const std::string& name);

// PNG bytes of a uint8 image [C,H,W] (C = 1 gray, 3 RGB, 4 RGBA) or [H,W] (gray).
std::vector<uint8_t> encode_png_bytes(const Tensor& image);
// Writes encode_png_bytes(image) to `path` atomically (temp file in the same
// folder, fsync, rename): readers never see a half-written file.
void encode_png(const std::string& path, const Tensor& image);

// True when the file name ends in .png, .jpg or .jpeg (case-insensitive).
bool has_image_extension(const std::string& path);

// ---- pixel operations --------------------------------------------------------------

// Resizes a uint8 [C,H,W] image to [C,h,w]. Bilinear (pixel centres at +0.5,
// edges clamped); when shrinking, the triangle filter widens with the scale
// factor, so every source pixel contributes (area-averaging, no aliasing) —
// the same filter as PIL's Image.resize(BILINEAR). Same size: an exact copy.
Tensor resize_image(const Tensor& image, int64_t height, int64_t width);

// Converts a uint8 [C,H,W] image to `channels` (1 or 3): RGB -> gray by ITU-R
// BT.601 luma (0.299 R + 0.587 G + 0.114 B, rounded), gray -> RGB by copying.
// Same channel count: returned as is.
Tensor convert_channels(const Tensor& image, int64_t channels);

// ---- datasets ------------------------------------------------------------------------

struct ImageFolderOptions {
  // 1 or 3: convert every image to that many channels. 0: use the channel count
  // most images have (a tie goes to 3), converting the others.
  int64_t channels = 0;
  // Resize every image to this size. Unset: all images must have the same size.
  std::optional<ImageSize> resize;
  // Decoding threads; 0 = deft::num_threads(). The result never depends on it.
  int threads = 0;
};

// An image-classification folder:
//   dir/<class>/<file>.png|.jpg|.jpeg   (files may sit in nested sub-folders)
// Classes are the sub-folders of `dir` (sorted by name; hidden ones skipped);
// examples are ordered by class, then by path. Other files are ignored.
// Result: features uint8 [N,C,H,W] (raw pixels), labels int64 [N], class_names.
// InputError when: `dir` is missing or not a folder, it has no class
// sub-folders, a class folder holds no images, an image cannot be read or
// decoded (naming it), or sizes differ without options.resize:
//   "image folder: dir/b/x.png is 32×40, others are 28×28; pass --resize HxW".
Dataset load_image_folder(const std::string& dir, const ImageFolderOptions& options = {});

// Unlabeled images (e.g. the input of `deft predict`): features uint8 [N,C,H,W]
// in the order given; channels and sizes handled as in load_image_folder.
Dataset load_image_files(const std::vector<std::string>& paths, const ImageFolderOptions& options = {});

}  // namespace deft::data
