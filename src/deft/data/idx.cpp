#include "deft/data/idx.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <vector>

#include "deft/data/gzip.h"

namespace deft::data {

namespace fs = std::filesystem;

namespace {

uint32_t be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

uint64_t be64(const uint8_t* p) { return (uint64_t{be32(p)} << 32) | be32(p + 4); }

struct IdxType {
  const char* name;
  size_t size;
  DType dtype;
};

bool idx_type(uint8_t code, IdxType* t) {
  switch (code) {
    case 0x08: *t = {"uint8", 1, DType::UInt8}; return true;
    case 0x09: *t = {"int8", 1, DType::Int64}; return true;
    case 0x0B: *t = {"int16", 2, DType::Int64}; return true;
    case 0x0C: *t = {"int32", 4, DType::Int64}; return true;
    case 0x0D: *t = {"float32", 4, DType::Float32}; return true;
    case 0x0E: *t = {"float64", 8, DType::Float32}; return true;
    default: return false;
  }
}

void decode_values(uint8_t code, const uint8_t* p, int64_t n, const Tensor& out) {
  switch (code) {
    case 0x08: std::memcpy(out.data<uint8_t>(), p, static_cast<size_t>(n)); break;
    case 0x09: {
      int64_t* o = out.data<int64_t>();
      for (int64_t i = 0; i < n; ++i) o[i] = static_cast<int8_t>(p[i]);
      break;
    }
    case 0x0B: {
      int64_t* o = out.data<int64_t>();
      for (int64_t i = 0; i < n; ++i) {
        o[i] = static_cast<int16_t>(static_cast<uint16_t>((p[2 * i] << 8) | p[2 * i + 1]));
      }
      break;
    }
    case 0x0C: {
      int64_t* o = out.data<int64_t>();
      for (int64_t i = 0; i < n; ++i) o[i] = static_cast<int32_t>(be32(p + 4 * i));
      break;
    }
    case 0x0D: {
      float* o = out.data<float>();
      for (int64_t i = 0; i < n; ++i) {
        const uint32_t bits = be32(p + 4 * i);
        std::memcpy(&o[i], &bits, 4);
      }
      break;
    }
    case 0x0E: {
      float* o = out.data<float>();
      for (int64_t i = 0; i < n; ++i) {
        const uint64_t bits = be64(p + 8 * i);
        double d;
        std::memcpy(&d, &bits, 8);
        o[i] = static_cast<float>(d);
      }
      break;
    }
    default: break;
  }
}

// True when the product of the non-zero dims exceeds what strides (in elements,
// times up to 8 bytes) can hold in an int64.
bool extent_overflows(const Shape& shape) {
  uint64_t p = 1;
  for (int64_t d : shape) {
    if (d != 0 && (__builtin_mul_overflow(p, static_cast<uint64_t>(d), &p) || p > (uint64_t{1} << 59))) return true;
  }
  return false;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool contains(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// train-images-idx3-ubyte, train-images.idx3-ubyte, emnist-digits-test-labels-idx1-ubyte, x.idx
// (already without ".gz"); not partial downloads such as *.gz.part.
bool looks_like_idx_name(const std::string& lname) { return ends_with(lname, "-ubyte") || ends_with(lname, ".idx"); }

// Records `path` for a role; a raw file wins over its own .gz, anything else is ambiguous.
void assign_role(std::string& slot, const std::string& path, const std::string& dir, const char* role) {
  if (slot.empty()) {
    slot = path;
    return;
  }
  if (slot + ".gz" == path) return;  // keep the raw file
  if (path + ".gz" == slot) {
    slot = path;
    return;
  }
  fail("{}: two files for the {}: {} and {}; keep one IDX dataset per folder", dir, role, slot, path);
}

// Reshapes a contiguous tensor (no copy).
Tensor reshaped(const Tensor& t, Shape shape) {
  Shape strides = contiguous_strides(shape);
  return make_view(t, std::move(shape), std::move(strides), t.offset());
}

Dataset load_idx_split(const std::string& images_path, const std::string& labels_path,
                       const std::string& dir) {
  Tensor images = read_idx(images_path);
  Tensor labels = read_idx(labels_path);
  const Shape& is = images.shape();
  if (is.size() == 3) {
    images = reshaped(images, {is[0], 1, is[1], is[2]});
  } else if (is.size() != 4 && is.size() != 2) {
    fail("{}: expected images of shape [N,H,W] (idx3), got {} dims {}", images_path, is.size(),
         shape_str(is));
  }
  // Features are uint8 images or float32 (see dataset.h): integer IDX data becomes float32.
  if (images.dtype() == DType::Int64) images = images.to(DType::Float32);
  if (images.dim() == 2 && images.dtype() == DType::UInt8) images = images.to(DType::Float32);

  if (labels.dim() == 2 && labels.shape()[1] == 1) labels = reshaped(labels, {labels.shape()[0]});
  if (labels.dim() != 1) {
    fail("{}: expected labels of shape [N] (idx1), got {}", labels_path, shape_str(labels.shape()));
  }
  if (labels.dtype() == DType::Float32) {
    fail("{}: labels must be integers (IDX type uint8/int8/int16/int32), got floating point",
         labels_path);
  }
  if (labels.dtype() != DType::Int64) labels = labels.to(DType::Int64);
  const int64_t n_images = images.shape()[0];
  const int64_t n_labels = labels.shape()[0];
  if (n_images != n_labels) {
    fail("{}: {} images but {} has {} labels", images_path, n_images, labels_path, n_labels);
  }
  const int64_t* lp = labels.data<int64_t>();
  for (int64_t i = 0; i < n_labels; ++i) {
    if (lp[i] < 0) fail("{}: label {} at index {} is negative", labels_path, lp[i], i);
  }
  Dataset d;
  d.name = dir;
  d.source = dir;
  d.features = images;
  d.labels = labels;
  d.task = Task::Classification;
  return d;
}

int64_t max_label(const Dataset& d) {
  int64_t m = -1;
  const int64_t* lp = d.labels.data<int64_t>();
  for (int64_t i = 0, n = d.labels.numel(); i < n; ++i) m = std::max(m, lp[i]);
  return m;
}

}  // namespace

Tensor parse_idx(const uint8_t* data, size_t size, const std::string& name) {
  if (size == 0) fail("{}: empty file, expected an IDX header", name);
  if (size < 4) fail("{}: file too short for an IDX header ({} bytes), at byte 0", name, size);
  if (data[0] != 0 || data[1] != 0) {
    fail("{}: not an IDX file: bad magic {:02x} {:02x} (expected 00 00), at byte 0", name, data[0], data[1]);
  }
  IdxType type;
  if (!idx_type(data[2], &type)) {
    fail("{}: unknown IDX type code 0x{:02x} (expected 08, 09, 0B, 0C, 0D or 0E), at byte 2", name, data[2]);
  }
  const int ndim = data[3];
  if (ndim < 1 || ndim > 4) fail("{}: IDX file has {} dims, expected 1 to 4, at byte 3", name, ndim);
  const size_t header = 4 + 4 * static_cast<size_t>(ndim);
  if (size < header) {
    fail("{}: truncated IDX header: {} dims need {} header bytes, file has {}", name, ndim, header, size);
  }
  Shape shape(static_cast<size_t>(ndim));
  const uint64_t payload = size - header;
  // Checked product: absurd dims (up to (2^32-1)^4) must not wrap around.
  uint64_t numel = 1;
  bool overflow = false;
  for (int i = 0; i < ndim; ++i) {
    const uint32_t d = be32(data + 4 + 4 * i);
    shape[static_cast<size_t>(i)] = d;
    overflow = __builtin_mul_overflow(numel, uint64_t{d}, &numel) || overflow;
  }
  if (std::find(shape.begin(), shape.end(), 0) != shape.end()) {
    // Empty, but the other dims still size the strides: they must stay representable.
    if (extent_overflows(shape)) {
      fail("{}: IDX dims {} are too large (their product overflows), at byte 4", name, shape_str(shape));
    }
    numel = 0;
    overflow = false;
  }
  uint64_t expected = 0;
  if (overflow || __builtin_mul_overflow(numel, uint64_t{type.size}, &expected)) {
    fail("{}: IDX dims {} of {} need more than 2^64 payload bytes, file has {} (truncated)", name,
         shape_str(shape), type.name, payload);
  }
  if (payload != expected) {
    fail("{}: IDX dims {} of {} need {} payload bytes, file has {} ({}), at byte {}", name,
         shape_str(shape), type.name, expected, payload,
         payload < expected ? "truncated" : "trailing data", header + std::min(payload, expected));
  }
  Tensor out = Tensor::empty(shape, type.dtype);
  if (numel > 0) decode_values(data[2], data + header, static_cast<int64_t>(numel), out);
  return out;
}

Tensor read_idx(const std::string& path) {
  const std::vector<uint8_t> bytes = read_file_maybe_gzip(path);
  return parse_idx(bytes.data(), bytes.size(), path);
}

IdxFolderFiles find_idx_files(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) fail("{}: not a folder", dir);
  std::vector<fs::path> entries;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code ec2;
    if (it->is_regular_file(ec2)) entries.push_back(it->path());
  }
  if (ec) fail("{}: cannot list folder: {}", dir, ec.message());
  std::sort(entries.begin(), entries.end());

  IdxFolderFiles files;
  for (const fs::path& p : entries) {
    std::string lname = lower(p.filename().string());
    if (ends_with(lname, ".gz")) lname.resize(lname.size() - 3);
    if (!looks_like_idx_name(lname)) continue;
    const bool train = contains(lname, "train");
    const bool test = contains(lname, "t10k") || contains(lname, "test");
    const bool images = contains(lname, "image") || contains(lname, "imgs");
    const bool labels = contains(lname, "label");
    if (train == test || images == labels) continue;
    const std::string path = p.string();
    if (train && images) assign_role(files.train_images, path, dir, "training images");
    if (train && labels) assign_role(files.train_labels, path, dir, "training labels");
    if (test && images) assign_role(files.test_images, path, dir, "test images");
    if (test && labels) assign_role(files.test_labels, path, dir, "test labels");
  }
  return files;
}

DatasetSplits load_idx_folder(const std::string& dir) {
  const IdxFolderFiles f = find_idx_files(dir);
  if (f.train_images.empty() || f.train_labels.empty()) {
    fail("{}: missing {}: an IDX dataset folder needs train-images-idx3-ubyte[.gz] and "
         "train-labels-idx1-ubyte[.gz] (and optionally t10k-images-idx3-ubyte[.gz], "
         "t10k-labels-idx1-ubyte[.gz])",
         dir,
         f.train_images.empty() && f.train_labels.empty() ? "the training images and labels"
         : f.train_images.empty()                         ? "the training images"
                                                          : "the training labels");
  }
  if (f.test_images.empty() != f.test_labels.empty()) {
    fail("{}: found {} but no test {} file", dir,
         f.test_images.empty() ? f.test_labels : f.test_images,
         f.test_images.empty() ? "images (t10k-images-idx3-ubyte[.gz])" : "labels (t10k-labels-idx1-ubyte[.gz])");
  }
  DatasetSplits out;
  out.train = load_idx_split(f.train_images, f.train_labels, dir);
  int64_t top = max_label(out.train);
  if (!f.test_images.empty()) {
    out.test = load_idx_split(f.test_images, f.test_labels, dir);
    const Shape& a = out.train.features.shape();
    const Shape& b = out.test->features.shape();
    if (!std::equal(a.begin() + 1, a.end(), b.begin() + 1, b.end())) {
      fail("{}: training images are {} per example but test images ({}) are {}", dir,
           shape_str(Shape(a.begin() + 1, a.end())), f.test_images, shape_str(Shape(b.begin() + 1, b.end())));
    }
    top = std::max(top, max_label(*out.test));
  }
  std::vector<std::string> names;
  for (int64_t k = 0; k <= top; ++k) names.push_back(std::to_string(k));
  out.train.class_names = names;
  if (out.test) out.test->class_names = names;
  return out;
}

}  // namespace deft::data
