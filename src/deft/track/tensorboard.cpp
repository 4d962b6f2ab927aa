#include "deft/track/tensorboard.h"
#include <cctype>

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <limits>

#include "deft/tensor/error.h"
#include "deft/track/raster.h"

namespace deft::track {

std::string log_dir_name(const std::string& name) {
  std::string out = name.empty() ? std::string("_") : name;
  for (char& ch : out)
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '.' && ch != '-' && ch != '_') ch = '_';
  if (out[0] == '.') out[0] = '_';
  return out;
}

// ---- CRC-32C ------------------------------------------------------------------------------

namespace {

constexpr std::array<uint32_t, 256> make_crc_table() {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k)
      c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;  // reflected Castagnoli polynomial
    t[i] = c;
  }
  return t;
}
constexpr std::array<uint32_t, 256> kCrcTable = make_crc_table();

}  // namespace

uint32_t crc32c_portable(const void* data, size_t len, uint32_t init) {
  const auto* p = static_cast<const uint8_t*>(data);
  uint32_t c = ~init;
  for (size_t i = 0; i < len; ++i) c = kCrcTable[(c ^ p[i]) & 0xff] ^ (c >> 8);
  return ~c;
}

uint32_t crc32c(const void* data, size_t len, uint32_t init) {
#if defined(__SSE4_2__) && defined(__x86_64__)
  const auto* p = static_cast<const uint8_t*>(data);
  uint64_t c = ~init;
  for (; len >= 8; len -= 8, p += 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    c = __builtin_ia32_crc32di(c, v);
  }
  auto c32 = static_cast<uint32_t>(c);
  for (; len > 0; --len, ++p) c32 = __builtin_ia32_crc32qi(c32, *p);
  return ~c32;
#else
  return crc32c_portable(data, len, init);
#endif
}

std::string frame_record(std::string_view data) {
  std::string out;
  out.reserve(data.size() + 16);
  const uint64_t n = data.size();
  char len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  auto put32 = [&out](uint32_t v) {
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  };
  out.append(len, 8);
  put32(masked_crc32c(len, 8));
  out.append(data);
  put32(masked_crc32c(data.data(), data.size()));
  return out;
}

// ---- messages -----------------------------------------------------------------------------
//
// Field numbers: tensorboard/compat/proto/{event,summary,histogram,tensor,tensor_shape}.proto,
// tensorboard/plugins/hparams/{api,plugin_data}.proto, google/protobuf/struct.proto.

namespace {

enum : int {
  kEventWallTime = 1,
  kEventStep = 2,
  kEventFileVersion = 3,
  kEventSummary = 5,
  kSummaryValue = 1,
  kValueTag = 1,
  kValueSimpleValue = 2,
  kValueImage = 4,
  kValueHisto = 5,
  kValueTensor = 8,
  kValueMetadata = 9,
  kMetadataPluginData = 1,
  kPluginName = 1,
  kPluginContent = 2,
  kImageHeight = 1,
  kImageWidth = 2,
  kImageColorspace = 3,
  kImageEncoded = 4,
  kHistoMin = 1,
  kHistoMax = 2,
  kHistoNum = 3,
  kHistoSum = 4,
  kHistoSumSquares = 5,
  kHistoBucketLimit = 6,
  kHistoBucket = 7,
  kTensorDtype = 1,
  kTensorShape = 2,
  kTensorStringVal = 8,
  kShapeDim = 2,
  kDimSize = 1,
  kDtFloat = 1,
  kDtString = 7,
  // google.protobuf.Value / ListValue
  kValueNumber = 2,
  kValueString = 3,
  kValueBool = 4,
  kListValues = 1,
  // hparams
  kPluginDataVersion = 1,
  kPluginDataExperiment = 2,
  kPluginDataSessionStart = 3,
  kPluginDataSessionEnd = 4,
  kExperimentTimeCreated = 3,
  kExperimentHParamInfos = 4,
  kExperimentMetricInfos = 5,
  kHParamName = 1,
  kHParamDisplayName = 2,
  kHParamDescription = 3,
  kHParamType = 4,
  kHParamDomainDiscrete = 5,
  kHParamDomainInterval = 6,
  kIntervalMin = 1,
  kIntervalMax = 2,
  kMetricInfoName = 1,
  kMetricInfoDisplayName = 3,
  kMetricInfoDescription = 4,
  kMetricInfoDatasetType = 5,
  kMetricNameGroup = 1,
  kMetricNameTag = 2,
  kStartHParams = 1,
  kStartGroupName = 4,
  kStartTime = 5,
  kEndStatus = 1,
  kEndTime = 2,
  kMapKey = 1,
  kMapValue = 2,
};

std::string summary_of(const ProtoWriter& value) { return ProtoWriter().message(kSummaryValue, value).str(); }

ProtoWriter plugin_metadata(std::string_view plugin, std::string_view content) {
  ProtoWriter pd;
  pd.bytes(kPluginName, plugin);
  if (!content.empty()) pd.bytes(kPluginContent, content);
  ProtoWriter metadata;
  metadata.message(kMetadataPluginData, pd);
  return metadata;
}

ProtoWriter struct_value(const HParamValue& v) {
  ProtoWriter out;
  if (const auto* d = std::get_if<double>(&v.value))
    out.double_(kValueNumber, *d);
  else if (const auto* s = std::get_if<std::string>(&v.value))
    out.bytes(kValueString, *s);
  else
    out.varint(kValueBool, std::get<bool>(v.value) ? 1 : 0);
  return out;
}

std::string plugin_data(int field, const ProtoWriter& message) {
  // version 0 is proto3's default: left out, as the Python writer leaves it out.
  return ProtoWriter().message(field, message).str();
}

// Summary.Value{tag, metadata{plugin_data{"hparams", content}}, tensor = float [0]}.
std::string hparams_summary(const std::string& tag, const std::string& content) {
  ProtoWriter dim;  // size 0 is the default: an empty Dim
  ProtoWriter shape;
  shape.message(kShapeDim, dim);
  ProtoWriter tensor;
  tensor.varint(kTensorDtype, kDtFloat).message(kTensorShape, shape);
  ProtoWriter value;
  value.bytes(kValueTag, tag)
      .message(kValueMetadata, plugin_metadata("hparams", content))
      .message(kValueTensor, tensor);
  return summary_of(value);
}

double or_now(double t) { return t < 0 ? unix_time_now() : t; }

}  // namespace

double unix_time_now() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

namespace tb {

std::string event_with_summary(double wall_time, int64_t step, const std::string& summary) {
  ProtoWriter e;
  e.double_(kEventWallTime, wall_time);
  if (step != 0) e.sint(kEventStep, step);
  e.bytes(kEventSummary, summary);
  return e.str();
}

std::string scalar_summary(const std::string& tag, float value) {
  ProtoWriter v;
  v.bytes(kValueTag, tag).float_(kValueSimpleValue, value);
  return summary_of(v);
}

std::string histogram_proto(std::span<const float> values, int buckets) {
  buckets = std::max(buckets, 1);
  double lo = std::numeric_limits<double>::infinity(), hi = -lo, num = 0, sum = 0, sum_sq = 0;
  for (float f : values) {
    if (!std::isfinite(f)) continue;
    const double v = f;
    lo = std::min(lo, v), hi = std::max(hi, v);
    num += 1, sum += v, sum_sq += v * v;
  }
  std::vector<double> limits, counts;
  if (num == 0) {
    lo = hi = 0;
    limits = {0.0}, counts = {0.0};  // TensorBoard needs at least one bucket
  } else if (lo == hi) {
    limits = {hi}, counts = {num};
  } else {
    const double width = (hi - lo) / buckets;
    counts.assign(static_cast<size_t>(buckets), 0.0);
    for (int i = 0; i < buckets; ++i) limits.push_back(i + 1 == buckets ? hi : lo + width * (i + 1));
    for (float f : values) {
      if (!std::isfinite(f)) continue;
      const auto b = std::min<int64_t>(static_cast<int64_t>((f - lo) / width), buckets - 1);
      counts[static_cast<size_t>(std::max<int64_t>(b, 0))] += 1;
    }
  }
  ProtoWriter h;
  h.double_(kHistoMin, lo).double_(kHistoMax, hi).double_(kHistoNum, num).double_(kHistoSum, sum);
  h.double_(kHistoSumSquares, sum_sq)
      .packed_doubles(kHistoBucketLimit, limits)
      .packed_doubles(kHistoBucket, counts);
  return h.str();
}

std::string experiment_plugin_data(const std::vector<HParamInfo>& hparams,
                                   const std::vector<MetricInfo>& metrics, double time_created) {
  ProtoWriter exp;
  exp.double_(kExperimentTimeCreated, time_created);
  for (const HParamInfo& h : hparams) {
    ProtoWriter info;
    info.bytes(kHParamName, h.name);
    if (!h.display_name.empty()) info.bytes(kHParamDisplayName, h.display_name);
    if (!h.description.empty()) info.bytes(kHParamDescription, h.description);
    if (h.type != HParamType::Unset) info.varint(kHParamType, static_cast<uint64_t>(h.type));
    if (!h.domain_discrete.empty()) {
      ProtoWriter list;
      for (const HParamValue& v : h.domain_discrete) list.message(kListValues, struct_value(v));
      info.message(kHParamDomainDiscrete, list);
    } else if (h.has_interval) {
      ProtoWriter interval;
      interval.double_(kIntervalMin, h.min_value).double_(kIntervalMax, h.max_value);
      info.message(kHParamDomainInterval, interval);
    }
    exp.message(kExperimentHParamInfos, info);
  }
  for (const MetricInfo& m : metrics) {
    ProtoWriter name;
    if (!m.group.empty()) name.bytes(kMetricNameGroup, m.group);
    name.bytes(kMetricNameTag, m.tag);
    ProtoWriter info;
    info.message(kMetricInfoName, name);
    if (!m.display_name.empty()) info.bytes(kMetricInfoDisplayName, m.display_name);
    if (!m.description.empty()) info.bytes(kMetricInfoDescription, m.description);
    if (m.dataset_type != DatasetType::Unknown)
      info.varint(kMetricInfoDatasetType, static_cast<uint64_t>(m.dataset_type));
    exp.message(kExperimentMetricInfos, info);
  }
  return plugin_data(kPluginDataExperiment, exp);
}

std::string session_start_plugin_data(const HParams& hparams, const std::string& group_name,
                                      double start_time) {
  ProtoWriter start;
  for (const auto& [name, value] : hparams) {  // a map field: one {key, value} entry message each
    ProtoWriter entry;
    entry.bytes(kMapKey, name).message(kMapValue, struct_value(value));
    start.message(kStartHParams, entry);
  }
  if (!group_name.empty()) start.bytes(kStartGroupName, group_name);
  start.double_(kStartTime, start_time);
  return plugin_data(kPluginDataSessionStart, start);
}

std::string session_end_plugin_data(SessionStatus status, double end_time) {
  ProtoWriter end;
  if (status != SessionStatus::Unknown) end.varint(kEndStatus, static_cast<uint64_t>(status));
  end.double_(kEndTime, end_time);
  return plugin_data(kPluginDataSessionEnd, end);
}

}  // namespace tb

// ---- TensorBoardWriter --------------------------------------------------------------------

TensorBoardWriter::TensorBoardWriter(const std::string& dir, double flush_seconds)
    : flush_seconds_(flush_seconds) {
  DEFT_CHECK(!dir.empty(), "TensorBoardWriter: empty folder name");
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec || !std::filesystem::is_directory(dir))
    fail("TensorBoardWriter: cannot create folder '{}': {}", dir, ec ? ec.message() : "not a folder");
  char host[256] = "localhost";
  if (gethostname(host, sizeof host - 1) != 0) std::snprintf(host, sizeof host, "localhost");
  host[sizeof host - 1] = '\0';
  const std::string base =
      (std::filesystem::path(dir) / fmt::format("events.out.tfevents.{:010d}.{}", std::time(nullptr), host))
          .string();
  // Another writer in this folder within the same second gets its own file.
  for (int k = 0; fd_ < 0; ++k) {
    path_ = k == 0 ? base : fmt::format("{}.{}", base, k);
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd_ < 0 && (errno != EEXIST || k >= 1000))
      fail("TensorBoardWriter: cannot create '{}': {}", path_, std::strerror(errno));
  }
  ProtoWriter first;
  first.double_(kEventWallTime, unix_time_now()).bytes(kEventFileVersion, "brain.Event:2");
  {
    std::lock_guard lock(mu_);
    buffer_ = frame_record(first.str());
    try {
      flush_locked();  // a valid file from the start, even if the process dies
    } catch (...) {
      ::close(fd_);
      throw;
    }
  }
  if (flush_seconds_ > 0) thread_ = std::thread([this] { flusher(); });
}

TensorBoardWriter::~TensorBoardWriter() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  try {
    std::lock_guard lock(mu_);
    if (error_.empty()) flush_locked();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "deft: warning: %s\n", e.what());
  }
  ::close(fd_);
}

void TensorBoardWriter::flusher() {
  std::unique_lock lock(mu_);
  while (!stop_) {
    cv_.wait_for(lock, std::chrono::duration<double>(flush_seconds_), [this] { return stop_; });
    if (stop_ || buffer_.empty() || !error_.empty()) continue;
    try {
      flush_locked();
    } catch (const std::exception&) {
      // kept in error_, thrown by the next call
    }
  }
}

void TensorBoardWriter::flush_locked() {
  size_t done = 0;
  while (done < buffer_.size()) {
    const ssize_t n = ::write(fd_, buffer_.data() + done, buffer_.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      // The file now ends in a partial record; later writes would only add to the damage.
      error_ = fmt::format("TensorBoardWriter: cannot write '{}': {}", path_,
                           n < 0 ? std::strerror(errno) : "no progress");
      buffer_.clear();
      throw InputError(error_);
    }
    done += static_cast<size_t>(n);
  }
  buffer_.clear();
}

void TensorBoardWriter::write_event(std::string_view event) {
  std::lock_guard lock(mu_);
  if (!error_.empty()) throw InputError(error_);
  buffer_ += frame_record(event);
  if (buffer_.size() >= (1u << 20)) flush_locked();
}

void TensorBoardWriter::flush() {
  std::lock_guard lock(mu_);
  if (!error_.empty()) throw InputError(error_);
  flush_locked();
}

void TensorBoardWriter::write_summary(const std::string& summary, int64_t step, double wall_time) {
  write_event(tb::event_with_summary(or_now(wall_time), step, summary));
}

void TensorBoardWriter::add_scalar(const std::string& tag, double value, int64_t step, double wall_time) {
  write_summary(tb::scalar_summary(tag, static_cast<float>(value)), step, wall_time);
}

void TensorBoardWriter::add_histogram(const std::string& tag, std::span<const float> values, int64_t step,
                                      double wall_time) {
  ProtoWriter v;
  v.bytes(kValueTag, tag).bytes(kValueHisto, tb::histogram_proto(values));
  write_summary(summary_of(v), step, wall_time);
}

void TensorBoardWriter::add_image(const std::string& tag, std::span<const uint8_t> pixels, int64_t height,
                                  int64_t width, int64_t channels, int64_t step, double wall_time) {
  ProtoWriter img;
  img.varint(kImageHeight, static_cast<uint64_t>(height)).varint(kImageWidth, static_cast<uint64_t>(width));
  img.varint(kImageColorspace, static_cast<uint64_t>(channels));
  img.bytes(kImageEncoded, encode_png(pixels, height, width, channels));
  ProtoWriter v;
  v.bytes(kValueTag, tag).message(kValueImage, img);
  write_summary(summary_of(v), step, wall_time);
}

void TensorBoardWriter::add_text(const std::string& tag, const std::string& markdown, int64_t step,
                                 double wall_time) {
  ProtoWriter tensor;
  tensor.varint(kTensorDtype, kDtString)
      .message(kTensorShape, ProtoWriter())
      .bytes(kTensorStringVal, markdown);
  ProtoWriter v;
  v.bytes(kValueTag, tag).message(kValueMetadata, plugin_metadata("text", "")).message(kValueTensor, tensor);
  write_summary(summary_of(v), step, wall_time);
}

void TensorBoardWriter::add_hparams_config(const std::vector<HParamInfo>& hparams,
                                           const std::vector<MetricInfo>& metrics, double time_created) {
  const double t = or_now(time_created);
  write_summary(hparams_summary("_hparams_/experiment", tb::experiment_plugin_data(hparams, metrics, t)), 0,
                t);
}

void TensorBoardWriter::add_session_start(const HParams& hparams, const std::string& group_name,
                                          double start_time) {
  const double t = or_now(start_time);
  write_summary(
      hparams_summary("_hparams_/session_start_info", tb::session_start_plugin_data(hparams, group_name, t)),
      0, t);
}

void TensorBoardWriter::add_session_end(SessionStatus status, double end_time) {
  const double t = or_now(end_time);
  write_summary(hparams_summary("_hparams_/session_end_info", tb::session_end_plugin_data(status, t)), 0, t);
}

}  // namespace deft::track
