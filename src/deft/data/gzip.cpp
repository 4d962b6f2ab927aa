#include "deft/data/gzip.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>

#include "deft/tensor/bytes.h"
#include "deft/tensor/error.h"

namespace deft::data {

namespace {

// DEFLATE cannot expand more than 1032:1 (a 258-byte match per two bits).
constexpr uint64_t kMaxDeflateRatio = 1032;
constexpr size_t kReadChunk = size_t{1} << 20;
constexpr size_t kMinOutChunk = size_t{1} << 16;

const char* zmsg(const z_stream& zs, int rc) {
  if (zs.msg != nullptr) return zs.msg;
  switch (rc) {
    case Z_NEED_DICT: return "needs a preset dictionary";
    case Z_MEM_ERROR: return "out of memory";
    case Z_STREAM_ERROR: return "stream error";
    case Z_BUF_ERROR: return "unexpected end of data";
    default: return "invalid data";
  }
}

// Owns a z_stream set up for inflate.
class Inflater {
 public:
  explicit Inflater(int window_bits, const std::string& name) {
    std::memset(&zs_, 0, sizeof(zs_));
    const int rc = inflateInit2(&zs_, window_bits);
    if (rc != Z_OK) fail<Error>("{}: zlib inflateInit2 failed ({})", name, zmsg(zs_, rc));
  }
  ~Inflater() { inflateEnd(&zs_); }
  Inflater(const Inflater&) = delete;
  Inflater& operator=(const Inflater&) = delete;
  z_stream& z() { return zs_; }

 private:
  z_stream zs_;
};

// Streams one or more concatenated gzip members into `out`. Input arrives in
// chunks through feed(); finish() checks that the last member was complete.
class GunzipStream {
 public:
  GunzipStream(const std::string& name, size_t max_bytes, size_t size_hint)
      : name_(name), max_bytes_(max_bytes), inflater_(16 + MAX_WBITS, name) {
    out_.resize(std::min(std::max(size_hint, kMinOutChunk), max_bytes_ + 1));
  }

  void feed(const uint8_t* p, size_t n) {
    z_stream& zs = inflater_.z();
    zs.next_in = const_cast<Bytef*>(p);
    size_t left = n;
    while (left > 0) {
      if (member_done_) {
        // Another member follows (gzip allows concatenation), or junk.
        inflateReset(&zs);
        member_done_ = false;
        member_start_ = offset_ + (n - left);
        produced_at_member_start_ = produced_;
        ++members_;
      }
      if (produced_ == out_.size()) grow();
      const uInt in_now = static_cast<uInt>(std::min<size_t>(left, std::numeric_limits<uInt>::max()));
      const uInt out_now =
          static_cast<uInt>(std::min<size_t>(out_.size() - produced_, std::numeric_limits<uInt>::max()));
      zs.avail_in = in_now;
      zs.next_out = out_.data() + produced_;
      zs.avail_out = out_now;
      const int rc = inflate(&zs, Z_NO_FLUSH);
      const size_t used_in = in_now - zs.avail_in;
      const size_t used_out = out_now - zs.avail_out;
      left -= used_in;
      produced_ += used_out;
      const uint64_t at = offset_ + (n - left);
      if (produced_ > max_bytes_) {
        fail("{}: gzip data decompresses to more than {} bytes, at byte {}", name_, max_bytes_, at);
      }
      if (rc == Z_STREAM_END) {
        member_done_ = true;
        continue;
      }
      if (rc == Z_OK) continue;
      if (rc == Z_BUF_ERROR && used_in == 0 && used_out == 0 && zs.avail_out != 0) {
        fail<Error>("{}: zlib made no progress, at byte {}", name_, at);
      }
      if (rc == Z_BUF_ERROR) continue;
      if (members_ > 0 && at <= member_start_ + 10 && rc == Z_DATA_ERROR) {
        fail("{}: unexpected data after the end of the gzip stream, at byte {}", name_, member_start_);
      }
      fail("{}: corrupt gzip data ({}), at byte {}", name_, zmsg(zs, rc), at);
    }
    offset_ += n;
  }

  std::vector<uint8_t> finish() {
    if (!member_done_ && members_ > 0 && produced_ == produced_at_member_start_) {
      fail("{}: unexpected data after the end of the gzip stream, at byte {}", name_, member_start_);
    }
    if (!member_done_) {
      fail("{}: truncated gzip data: the file ends at byte {} inside the compressed stream "
           "({} bytes decompressed so far)",
           name_, offset_, produced_);
    }
    out_.resize(produced_);
    if (out_.capacity() > 2 * out_.size() + kMinOutChunk) out_.shrink_to_fit();
    return std::move(out_);
  }

 private:
  void grow() {
    if (out_.size() > max_bytes_) {
      fail("{}: gzip data decompresses to more than {} bytes", name_, max_bytes_);
    }
    size_t next = std::max(out_.size() * 2, out_.size() + kMinOutChunk);
    next = std::min(next, max_bytes_ + 1);
    out_.resize(next);
  }

  std::string name_;
  size_t max_bytes_;
  Inflater inflater_;
  std::vector<uint8_t> out_;
  size_t produced_ = 0;
  uint64_t offset_ = 0;        // compressed bytes fed before the current chunk
  uint64_t member_start_ = 0;  // compressed offset where the current member began
  size_t produced_at_member_start_ = 0;
  int members_ = 0;            // completed members before the current one
  bool member_done_ = false;
};

// A hint for the output buffer from the trailer's ISIZE field (the size mod
// 2^32), capped by what the compressed size can possibly produce.
size_t gzip_size_hint(uint32_t isize, uint64_t compressed, size_t max_bytes) {
  const uint64_t cap = std::min<uint64_t>(compressed * kMaxDeflateRatio, max_bytes);
  return static_cast<size_t>(std::min<uint64_t>(isize, cap));
}

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};

}  // namespace

bool is_gzip(const uint8_t* data, size_t size) {
  return size >= 2 && data[0] == 0x1f && data[1] == 0x8b;
}

std::vector<uint8_t> decode_maybe_gzip(const uint8_t* data, size_t size, const std::string& name,
                                       size_t max_bytes) {
  if (!is_gzip(data, size)) {
    if (size > max_bytes) fail("{}: file is larger than {} bytes", name, max_bytes);
    return std::vector<uint8_t>(data, data + size);
  }
  const uint32_t isize = size >= 18 ? le32(data + size - 4) : 0;
  GunzipStream gz(name, max_bytes, gzip_size_hint(isize, size, max_bytes));
  gz.feed(data, size);
  return gz.finish();
}

std::vector<uint8_t> read_file_maybe_gzip(const std::string& path, size_t max_bytes) {
  errno = 0;
  std::unique_ptr<std::FILE, FileCloser> f(std::fopen(path.c_str(), "rb"));
  if (!f) fail("{}: cannot open: {}", path, std::strerror(errno));

  // Size and the gzip trailer, for buffer hints only (never trusted).
  uint64_t file_size = 0;
  uint32_t isize = 0;
  if (std::fseek(f.get(), 0, SEEK_END) == 0) {
    const long end = std::ftell(f.get());
    if (end > 0) file_size = static_cast<uint64_t>(end);
    uint8_t tail[4];
    if (file_size >= 18 && std::fseek(f.get(), -4, SEEK_END) == 0 &&
        std::fread(tail, 1, 4, f.get()) == 4) {
      isize = le32(tail);
    }
  }
  std::rewind(f.get());

  std::vector<uint8_t> chunk(kReadChunk);
  auto read_chunk = [&]() -> size_t {
    const size_t got = std::fread(chunk.data(), 1, chunk.size(), f.get());
    if (got < chunk.size() && std::ferror(f.get())) {
      fail("{}: read error: {}", path, std::strerror(errno != 0 ? errno : EIO));
    }
    return got;
  };

  size_t got = read_chunk();
  if (!is_gzip(chunk.data(), got)) {
    if (file_size > max_bytes) fail("{}: file is larger than {} bytes", path, max_bytes);
    std::vector<uint8_t> out;
    out.reserve(static_cast<size_t>(std::max<uint64_t>(file_size, got)));
    while (got > 0) {
      if (out.size() + got > max_bytes) fail("{}: file is larger than {} bytes", path, max_bytes);
      out.insert(out.end(), chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(got));
      got = read_chunk();
    }
    return out;
  }

  GunzipStream gz(path, max_bytes, gzip_size_hint(isize, file_size, max_bytes));
  while (got > 0) {
    gz.feed(chunk.data(), got);
    got = read_chunk();
  }
  return gz.finish();
}

std::vector<uint8_t> inflate_raw(const uint8_t* data, size_t size, size_t expected_size,
                                 const std::string& name) {
  if (expected_size > static_cast<uint64_t>(size) * kMaxDeflateRatio + 1024) {
    fail("{}: declared size {} bytes is impossible for {} bytes of deflate data", name, expected_size,
         size);
  }
  std::vector<uint8_t> out(expected_size);
  Inflater inf(-MAX_WBITS, name);
  z_stream& zs = inf.z();
  size_t in_pos = 0;
  size_t out_pos = 0;
  uint8_t spill[1];  // detects output beyond the declared size
  for (;;) {
    const uInt in_now = static_cast<uInt>(std::min<size_t>(size - in_pos, std::numeric_limits<uInt>::max()));
    const bool to_spill = out_pos == expected_size;
    const uInt out_now = to_spill ? 1u
                                  : static_cast<uInt>(std::min<size_t>(expected_size - out_pos,
                                                                       std::numeric_limits<uInt>::max()));
    zs.next_in = const_cast<Bytef*>(data + in_pos);
    zs.avail_in = in_now;
    zs.next_out = to_spill ? spill : out.data() + out_pos;
    zs.avail_out = out_now;
    const int rc = inflate(&zs, Z_NO_FLUSH);
    const size_t used_in = in_now - zs.avail_in;
    const size_t used_out = out_now - zs.avail_out;
    in_pos += used_in;
    if (to_spill && used_out > 0) {
      fail("{}: deflate data decompresses to more than the declared {} bytes, at byte {}", name,
           expected_size, in_pos);
    }
    out_pos += to_spill ? 0 : used_out;
    if (rc == Z_STREAM_END) {
      if (out_pos != expected_size) {
        fail("{}: deflate data decompresses to {} bytes, expected {}", name, out_pos, expected_size);
      }
      return out;
    }
    if (rc == Z_OK) continue;
    if (rc == Z_BUF_ERROR && used_in == 0 && used_out == 0) {
      fail("{}: truncated deflate data: ends at byte {} ({} of {} bytes decompressed)", name, in_pos,
           out_pos, expected_size);
    }
    if (rc == Z_BUF_ERROR) continue;
    fail("{}: corrupt deflate data ({}), at byte {}", name, zmsg(zs, rc), in_pos);
  }
}

}  // namespace deft::data
