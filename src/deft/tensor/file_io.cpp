#include "deft/tensor/file_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "deft/tensor/error.h"

namespace deft {

namespace {

std::string errno_text(int err) { return std::strerror(err); }

// Closes the temporary file and removes it unless it was renamed into place.
class TempFile {
 public:
  TempFile(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  ~TempFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  int fd() const { return fd_; }
  const std::string& path() const { return path_; }
  // close() reports delayed write errors (NFS, quotas), so its result matters.
  int close() {
    const int rc = ::close(fd_);
    fd_ = -1;
    return rc;
  }
  void committed() { path_.clear(); }

 private:
  int fd_;
  std::string path_;
};

TempFile create_temp(const std::string& path) {
  // pid + a process-wide counter keeps concurrent writers (threads or processes)
  // of the same path apart; O_EXCL never reuses a stale file left by a crash.
  static std::atomic<uint64_t> counter{0};
  for (int attempt = 0;; ++attempt) {
    std::string tmp = fmt::format("{}.tmp.{}.{}", path, static_cast<long>(::getpid()), counter++);
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd >= 0) return TempFile(fd, std::move(tmp));
    const int err = errno;
    if (err == EEXIST && attempt < 100) continue;
    fail("{}: cannot create temporary file {}: {}", path, tmp, errno_text(err));
  }
}

// Makes the rename durable. Some filesystems cannot fsync a folder (EINVAL);
// the file's own data is already on disk then, so only real I/O errors count.
void sync_parent_folder(const std::string& path) {
  const std::string dir = std::filesystem::path(path).parent_path().string();
  const int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return;
  const int rc = ::fsync(dfd);
  const int err = errno;
  ::close(dfd);
  if (rc != 0 && err == EIO) fail("{}: fsync of the folder failed: {}", path, errno_text(err));
}

}  // namespace

void FileSink::write(const void* data, size_t n) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t w = ::write(fd_, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      fail("{}: write failed after {} bytes: {}", path_, written_, errno_text(w < 0 ? errno : EIO));
    }
    p += w;
    n -= static_cast<size_t>(w);
    written_ += static_cast<uint64_t>(w);
  }
}

void write_file_atomically(const std::string& path, const std::function<void(FileSink&)>& fill) {
  DEFT_CHECK(!path.empty(), "write_file_atomically: empty path");
  TempFile tmp = create_temp(path);
  FileSink sink(tmp.fd(), path);
  fill(sink);  // an exception leaves through ~TempFile, which removes the temporary file
  if (::fsync(tmp.fd()) != 0) fail("{}: fsync failed: {}", path, errno_text(errno));
  if (tmp.close() != 0) fail("{}: close failed: {}", path, errno_text(errno));
  if (::rename(tmp.path().c_str(), path.c_str()) != 0) {
    fail("{}: cannot rename {} into place: {}", path, tmp.path(), errno_text(errno));
  }
  tmp.committed();
  sync_parent_folder(path);
}

void write_file_atomically(const std::string& path, std::string_view bytes) {
  write_file_atomically(path, [bytes](FileSink& out) { out.write(bytes); });
}

InputFile::InputFile(const std::string& path) : path_(path) {
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) fail("cannot open {}: {}", path, errno_text(errno));
  struct stat st {};
  if (::fstat(fd_, &st) != 0) {
    const int err = errno;
    ::close(fd_);
    fail("cannot read {}: {}", path, errno_text(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd_);
    fail("cannot read {}: not a regular file", path);
  }
  size_ = static_cast<uint64_t>(st.st_size);
}

InputFile::~InputFile() {
  if (fd_ >= 0) ::close(fd_);
}

void InputFile::read_at(uint64_t offset, void* dst, size_t n) const {
  char* p = static_cast<char*>(dst);
  const uint64_t start = offset;
  while (n > 0) {
    const ssize_t r = ::pread(fd_, p, n, static_cast<off_t>(offset));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) fail("{}: read failed at byte {}: {}", path_, offset, errno_text(errno));
    if (r == 0) {
      fail("{}: file ends at byte {} while reading {} bytes from byte {} (truncated?)", path_, offset,
           offset - start + n, start);
    }
    p += r;
    n -= static_cast<size_t>(r);
    offset += static_cast<uint64_t>(r);
  }
}

}  // namespace deft
