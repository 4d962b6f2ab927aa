// TensorBoard event files, written without TensorFlow or protoc: scalars,
// histograms, images, text and the hparams plugin's experiment and sessions.
//
//   track::TensorBoardWriter tb("runs/fmnist/run-3/train");   // creates the folder
//   tb.add_scalar("epoch_loss", 0.41, /*step*/ 0);
//   tb.add_histogram("1.kernel/histogram", weights, 0);       // span<const float>
//   tb.add_image("samples", pixels, h, w, 3, 0);              // HWC uint8, stored as PNG
//   tb.add_text("config", "```json\n{...}\n```", 0);
//   tb.add_session_start({{"lr", 1e-3}, {"optimizer", "adam"}, {"bn", true}});
//   tb.add_session_end(track::SessionStatus::Success);
//   tb.flush();                                               // also every 2 s and on destruction
//
// The file is `events.out.tfevents.<10-digit unix time>.<host>` (".1", ".2", ... appended
// when that name is taken), a sequence of records as TensorFlow's RecordWriter frames
// them: uint64 LE length, masked CRC-32C of those 8 bytes, the serialized Event,
// masked CRC-32C of the Event. The first Event carries file_version "brain.Event:2".
// Messages are encoded by hand (ProtoWriter) with the field numbers of TensorBoard's
// event.proto, summary.proto, tensor.proto and plugins/hparams/{api,plugin_data}.proto.
//
// Histograms: 30 equal-width buckets between the finite min and max (TensorBoard
// re-bins whatever it gets to 30 buckets for display, so finer edges buy nothing);
// non-finite values are left out of every field. The hparams summaries are what
// tensorboard/plugins/hparams/summary_v2.py writes: a Summary.Value with the tag
// "_hparams_/experiment" | "_hparams_/session_start_info" | "_hparams_/session_end_info",
// metadata.plugin_data {plugin_name "hparams", content = HParamsPluginData{version 0, ...}}
// and an empty float tensor of shape [0].
//
// Writes are buffered; the buffer goes to the file on flush(), on destruction, when it
// passes 1 MiB, and from a background thread at least every `flush_seconds`. A failed
// write is an InputError naming the file (a background failure is thrown by the next
// call). One writer may be used from several threads.
#pragma once
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "deft/tensor/protobuf.h"

namespace deft::track {

// ---- CRC-32C (Castagnoli), as TFRecord framing uses it -----------------------------------

// CRC-32C of `len` bytes, continuing from `init` (the CRC of the bytes before them; 0 to
// start): crc32c(ab) == crc32c(b, len_b, crc32c(a, len_a)). The SSE4.2 crc32 instruction
// when the build targets it, else crc32c_portable.
uint32_t crc32c(const void* data, size_t len, uint32_t init = 0);
uint32_t crc32c_portable(const void* data, size_t len, uint32_t init = 0);  // table, byte at a time
// TFRecord's masking, so that a CRC stored inside CRC'd data does not weaken it.
constexpr uint32_t mask_crc(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + 0xa282ead8u; }
inline uint32_t masked_crc32c(const void* data, size_t len) { return mask_crc(crc32c(data, len)); }

// One TFRecord: length, masked CRC of the length, data, masked CRC of the data.
std::string frame_record(std::string_view data);

// ---- protobuf wire format -----------------------------------------------------------------

// The protobuf wire-format writer the event messages are built with (deft/tensor/protobuf.h).
using deft::ProtoWriter;

// ---- hparams plugin types (tensorboard/plugins/hparams/api.proto) --------------------------

// A hyperparameter value: a number, a string or a bool (google.protobuf.Value's
// number_value / string_value / bool_value). Integers convert to numbers.
struct HParamValue {
  std::variant<double, std::string, bool> value;
  HParamValue(double v) : value(v) {}  // NOLINT: implicit, so maps read {{"lr", 1e-3}, {"opt", "adam"}}
  template <class I>
  requires(std::is_integral_v<I> && !std::is_same_v<I, bool>) HParamValue(I v)
      : value(static_cast<double>(v)) {}                 // NOLINT
  HParamValue(bool v) : value(v) {}                      // NOLINT
  HParamValue(std::string v) : value(std::move(v)) {}    // NOLINT
  HParamValue(const char* v) : value(std::string(v)) {}  // NOLINT
  bool operator==(const HParamValue&) const = default;
};
using HParams = std::map<std::string, HParamValue>;

enum class HParamType { Unset = 0, String = 1, Bool = 2, Float64 = 3 };
enum class DatasetType { Unknown = 0, Training = 1, Validation = 2 };
enum class SessionStatus { Unknown = 0, Success = 1, Failure = 2, Running = 3 };

struct HParamInfo {
  std::string name;
  HParamType type = HParamType::Unset;
  std::string display_name, description;
  std::vector<HParamValue> domain_discrete;  // or:
  bool has_interval = false;
  double min_value = 0, max_value = 0;  // domain_interval, numbers only
};

// A metric is the scalar `tag` in the run "<session run>/<group>" (group "" = the
// session's own folder); TensorBoard shows its last value per session.
struct MetricInfo {
  std::string tag;
  std::string group;
  std::string display_name, description;
  DatasetType dataset_type = DatasetType::Unknown;
};

// ---- the writer ---------------------------------------------------------------------------

double unix_time_now();

// A study or run name as one folder name under the TensorBoard root: characters other
// than letters, digits, '.', '-' and '_' become '_', and a leading '.' too, so a name
// like "../x" or "a/b" stays one folder inside the root.
std::string log_dir_name(const std::string& name);

class TensorBoardWriter {
 public:
  // Creates `dir` (and its parents) and a new event file in it; InputError naming the
  // folder or file when that fails.
  explicit TensorBoardWriter(const std::string& dir, double flush_seconds = 2.0);
  ~TensorBoardWriter();  // flushes; a failure here is reported on stderr, not thrown
  TensorBoardWriter(const TensorBoardWriter&) = delete;
  TensorBoardWriter& operator=(const TensorBoardWriter&) = delete;

  // A wall_time below 0 means "now".
  void add_scalar(const std::string& tag, double value, int64_t step, double wall_time = -1);
  void add_histogram(const std::string& tag, std::span<const float> values, int64_t step,
                     double wall_time = -1);
  // `pixels`: height×width×channels uint8, row-major (HWC); channels 1 gray, 2 gray+alpha,
  // 3 RGB, 4 RGBA (also the Summary.Image colorspace). Stored as PNG.
  void add_image(const std::string& tag, std::span<const uint8_t> pixels, int64_t height, int64_t width,
                 int64_t channels, int64_t step, double wall_time = -1);
  // Markdown, shown by the text plugin.
  void add_text(const std::string& tag, const std::string& markdown, int64_t step, double wall_time = -1);

  // The hparams plugin. The experiment (which hparams and metrics exist) is written once
  // for a whole log folder; each run that is a session writes its start and end.
  void add_hparams_config(const std::vector<HParamInfo>& hparams, const std::vector<MetricInfo>& metrics,
                          double time_created = -1);
  void add_session_start(const HParams& hparams, const std::string& group_name = "", double start_time = -1);
  void add_session_end(SessionStatus status, double end_time = -1);

  // An already serialized Event (tests, other summary kinds).
  void write_event(std::string_view event);
  void flush();
  const std::string& path() const { return path_; }

 private:
  void write_summary(const std::string& summary, int64_t step, double wall_time);
  void flush_locked();
  void flusher();

  std::string path_;
  int fd_ = -1;
  double flush_seconds_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::string buffer_;
  std::string error_;  // from the background flush, thrown by the next call
  bool stop_ = false;
  std::thread thread_;
};

// ---- the messages, serialized (exposed for tests and other writers) ------------------------

namespace tb {
// Event{wall_time, step, summary}; step 0 is omitted as proto3 does.
std::string event_with_summary(double wall_time, int64_t step, const std::string& summary);
// Summary{value {tag, simple_value}}.
std::string scalar_summary(const std::string& tag, float value);
// HistogramProto of the finite values (see the top of this file for the buckets).
std::string histogram_proto(std::span<const float> values, int buckets = 30);
// HParamsPluginData{version 0, <one of experiment / session_start_info / session_end_info>}.
std::string experiment_plugin_data(const std::vector<HParamInfo>& hparams,
                                   const std::vector<MetricInfo>& metrics, double time_created);
std::string session_start_plugin_data(const HParams& hparams, const std::string& group_name,
                                      double start_time);
std::string session_end_plugin_data(SessionStatus status, double end_time);
}  // namespace tb

}  // namespace deft::track
