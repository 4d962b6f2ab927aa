#include "deft/tensor/parallel.h"

#include <atomic>
#include <cstdlib>
#include <thread>

namespace deft {
namespace {

int default_threads() {
  if (const char* env = std::getenv("DEFT_NUM_THREADS")) {
    char* end = nullptr;
    const long v = std::strtol(env, &end, 10);
    if (end != env && *end == '\0' && v > 0) return static_cast<int>(v);
  }
  const unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(hw);
}

std::atomic<int>& threads_setting() {
  static std::atomic<int> value{default_threads()};
  return value;
}
std::atomic<int> generation{1};
thread_local int synced_generation = 0;
thread_local bool t_serial = false;
thread_local int t_threads = 0;  // > 0: this thread's ThreadCountScope

}  // namespace

int num_threads() { return t_threads > 0 ? t_threads : threads_setting().load(std::memory_order_relaxed); }

ThreadCountScope::ThreadCountScope(int n) : previous_(t_threads) {
  t_threads = n > 0 ? n : 0;
  synced_generation = -1;
}
ThreadCountScope::~ThreadCountScope() {
  t_threads = previous_;
  synced_generation = -1;
}

void set_num_threads(int n) {
  threads_setting().store(n <= 0 ? default_threads() : n);
  generation.fetch_add(1);
}

SerialScope::SerialScope() : previous_(t_serial) {
  t_serial = true;
  omp_set_num_threads(1);  // oneDNN reads the calling thread's team size
  synced_generation = -1;
}
SerialScope::~SerialScope() {
  t_serial = previous_;
  synced_generation = -1;
  if (!t_serial) detail::sync_thread_count();
}

namespace detail {
bool thread_is_serial() { return t_serial; }

void sync_thread_count() {
  if (t_serial) return;
  const int g = generation.load(std::memory_order_relaxed);
  if (synced_generation != g) {
    omp_set_num_threads(num_threads());
    synced_generation = g;
  }
}
}  // namespace detail

}  // namespace deft
