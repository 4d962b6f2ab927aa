// Whole-file writes that are atomic, and positioned reads with errors that name the file.
//
//   write_file_atomically("model.deft", bytes);          // all or nothing
//   write_file_atomically("model.deft", [&](FileSink& out) {
//     out.write(header);                                  // stream big tensors without
//     out.write(t.raw_data(), nbytes);                    // building the file in memory
//   });
//
//   InputFile f("model.deft");                            // InputError if it cannot be opened
//   f.read_at(0, buf, 8);                                 // InputError if the file is shorter
//
// The write goes to a temporary file in the same folder, is fsynced, renamed over
// `path` and the folder is fsynced: a reader (or a crash) sees either the old
// file or the complete new one, never a half-written file. When anything fails,
// including an exception thrown by the callback, the temporary file is removed,
// the old file is left as it was and the error propagates. Every writer in deft
// (model files, .npy, PNG, reports) goes through this one function.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace deft {

// The temporary file being written; handed to write_file_atomically's callback.
class FileSink {
 public:
  // Appends `n` bytes; throws InputError (naming the destination and errno's text) on failure.
  void write(const void* data, size_t n);
  void write(std::string_view bytes) { write(bytes.data(), bytes.size()); }
  uint64_t bytes_written() const { return written_; }

 private:
  friend void write_file_atomically(const std::string&, const std::function<void(FileSink&)>&);
  FileSink(int fd, const std::string& path) : fd_(fd), path_(path) {}
  int fd_;
  const std::string& path_;
  uint64_t written_ = 0;
};

// Writes whatever `fill` writes to `path`, atomically (see above). Errors name
// `path` and the system's reason: "out/m.deft: cannot create temporary file ...: No such file or directory".
void write_file_atomically(const std::string& path, const std::function<void(FileSink&)>& fill);
void write_file_atomically(const std::string& path, std::string_view bytes);
inline void write_file_atomically(const std::string& path, const std::vector<uint8_t>& bytes) {
  write_file_atomically(path, std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

// A regular file opened for reading at arbitrary offsets (pread), so a reader can
// check a header before it allocates or reads anything the header declares.
class InputFile {
 public:
  explicit InputFile(const std::string& path);  // InputError: missing, a folder, unreadable
  ~InputFile();
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;

  const std::string& path() const { return path_; }
  uint64_t size() const { return size_; }
  // Reads exactly `n` bytes at `offset`; InputError when the file ends first
  // (e.g. it was truncated after being opened) or the read fails.
  void read_at(uint64_t offset, void* dst, size_t n) const;

 private:
  std::string path_;
  int fd_ = -1;
  uint64_t size_ = 0;
};

}  // namespace deft
