#include "deft/deploy/serve.h"

#include <fmt/format.h>
#include <httplib.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>
#include <vector>

#include "deft/deploy/serve_protocol.h"
#include "deft/tensor/error.h"
#include "deft/version.h"

namespace deft::deploy {
namespace {

using json = nlohmann::json;

void reply(httplib::Response& res, int status, const std::string& body) {
  res.status = status;
  res.set_content(body, "application/json");
}

void reply_error(httplib::Response& res, int status, const std::string& message) {
  if (status == 503) res.set_header("Retry-After", "1");
  reply(res, status, error_body(message));
}

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> seg;
  size_t i = 0;
  while (i < path.size()) {
    const size_t j = path.find('/', i);
    const size_t end = j == std::string::npos ? path.size() : j;
    if (end > i) seg.push_back(path.substr(i, end - i));
    i = end + 1;
  }
  return seg;
}

// What identifies the file at a path: replaced atomically, the inode changes; rewritten
// in place, the size or modification time does.
struct FileStamp {
  dev_t dev = 0;
  ino_t ino = 0;
  off_t size = 0;
  int64_t mtime_ns = 0;
  bool operator==(const FileStamp&) const = default;
};

std::optional<FileStamp> stamp_of(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  return FileStamp{st.st_dev, st.st_ino, st.st_size,
                   int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec};
}

// httplib listens with a backlog of 5 connections: 64 clients connecting at once would
// see SYNs dropped and retried a second later. listen() again widens it.
class HttpServer : public httplib::Server {
 public:
  void widen_backlog(int backlog) { ::listen(svr_sock_, backlog); }
};

}  // namespace

std::string model_name_for(const std::string& path) {
  std::string stem = std::filesystem::path(path).stem().string();
  for (char& c : stem)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-')) c = '_';
  return stem.empty() ? "model" : stem;
}

struct ModelServer::Impl {
  ServeOptions o;
  std::string name;
  std::unique_ptr<Batcher> batcher;
  HttpServer server;
  std::thread server_thread, watcher;
  int bound_port = -1;
  std::atomic<bool> stopping{false};
  std::mutex stop_mu;
  std::condition_variable stop_cv;
  bool stopped = false;
  std::optional<FileStamp> loaded_stamp;

  explicit Impl(ServeOptions options) : o(std::move(options)) {
    if (!o.loader) {
      const InferOptions io{.threads = o.threads, .max_batch = std::max<int64_t>(o.max_batch, 1)};
      o.loader = [io](const std::string& path) { return Predictor::load(path, io); };
    }
    DEFT_CHECK(!o.model.empty(), "serve: no model file given (--model)");
    DEFT_CHECK(o.max_body > 0, "serve: --max-body must be positive");
    DEFT_CHECK(o.workers > 0, "serve: --workers must be positive, got {}", o.workers);
    name = o.name.empty() ? model_name_for(o.model) : o.name;
    DEFT_CHECK(name.find_first_of("/:?#") == std::string::npos && !name.empty(),
               "serve: model name '{}' cannot appear in a URL path", name);
    loaded_stamp = stamp_of(o.model);  // before loading: a replacement during the load is seen next time
    batcher = std::make_unique<Batcher>(
        o.loader(o.model),
        BatcherOptions{.max_batch = o.max_batch, .max_delay_ms = o.max_delay_ms, .max_queue = o.max_queue});
  }

  // ---- routes -----------------------------------------------------------------------------

  // Checks /MODELS/NAME[/versions/V]...; returns the index of the segment after it, or
  // answers 404 and returns 0.
  size_t match_model(const std::vector<std::string>& seg, std::string& last_verb, httplib::Response& res,
                     const ServedModel& m) {
    // seg[0] = v1|v2, seg[1] = models, seg[2] = NAME (TF: NAME:verb when no more segments)
    std::string model = seg[2];
    size_t next = 3;
    auto take_verb = [&](std::string& s) {
      if (seg[0] != "v1") return;
      if (auto colon = s.find(':'); colon != std::string::npos) {
        last_verb = s.substr(colon + 1);
        s.resize(colon);
      }
    };
    if (seg.size() == 3) take_verb(model);
    if (model != name) {
      reply_error(res, 404, fmt::format("unknown model '{}': this server serves '{}'", model, name));
      return 0;
    }
    if (seg.size() >= 5 && seg[3] == "versions") {
      std::string version = seg[4];
      if (seg.size() == 5) take_verb(version);
      if (version != std::to_string(m.version)) {
        reply_error(
            res, 404,
            fmt::format("model '{}' has no version '{}' (serving version {})", name, version, m.version));
        return 0;
      }
      next = 5;
    }
    return next;
  }

  void handle_get(const httplib::Request& req, httplib::Response& res) {
    const auto seg = split_path(req.path);
    const auto m = batcher->model();
    const bool ready = !stopping;
    if (seg.size() == 1 && seg[0] == "v2") {
      return reply(res, 200,
                   json{{"name", "deft"}, {"version", DEFT_VERSION}, {"extensions", json::array()}}.dump());
    }
    if (seg.size() == 3 && seg[0] == "v2" && seg[1] == "health") {
      if (seg[2] == "live") return reply(res, 200, R"({"live":true})");
      if (seg[2] == "ready")
        return ready ? reply(res, 200, R"({"ready":true})")
                     : reply_error(res, 503, "not ready: the server is shutting down");
    }
    if (seg.size() >= 3 && (seg[0] == "v2" || seg[0] == "v1") && seg[1] == "models") {
      std::string verb;
      const size_t next = match_model(seg, verb, res, *m);
      if (next == 0) return;
      const std::string version = std::to_string(m->version);
      if (seg[0] == "v2") {
        if (seg.size() == next) return reply(res, 200, kserve_model_metadata(m->info, name, version));
        if (seg.size() == next + 1 && seg[next] == "ready") {
          if (!ready) return reply_error(res, 503, "not ready: the server is shutting down");
          return reply(res, 200, json{{"name", name}, {"ready", true}}.dump());
        }
        if (seg.size() == next + 1 && seg[next] == "infer")
          return reply_error(res, 405, fmt::format("GET {}: inference is POST", req.path));
      } else if (seg.size() == next) {
        if (verb.empty()) {
          const json status{{"version", version},
                            {"state", ready ? "AVAILABLE" : "END"},
                            {"status", {{"error_code", "OK"}, {"error_message", ""}}}};
          return reply(res, 200, json{{"model_version_status", json::array({status})}}.dump());
        }
        if (verb == "predict") return reply_error(res, 405, fmt::format("GET {}: predict is POST", req.path));
      } else if (seg.size() == next + 1 && seg[next] == "metadata") {
        return reply(res, 200,
                     json{{"model_spec", {{"name", name}, {"version", version}}},
                          {"metadata", json::parse(kserve_model_metadata(m->info, name, version))}}
                         .dump());
      }
    }
    reply_error(res, 404, fmt::format("no route GET {}", req.path));
  }

  void handle_post(const httplib::Request& req, httplib::Response& res) {
    const auto seg = split_path(req.path);
    if (seg.size() >= 3 && (seg[0] == "v2" || seg[0] == "v1") && seg[1] == "models") {
      const auto m = batcher->model();
      std::string verb;
      const size_t next = match_model(seg, verb, res, *m);
      if (next == 0) return;
      if (seg[0] == "v2" && seg.size() == next + 1 && seg[next] == "infer") return infer(req, res, m, true);
      if (seg[0] == "v1" && seg.size() == next && verb == "predict") return infer(req, res, m, false);
      if (seg[0] == "v1" && seg.size() == next && (verb == "classify" || verb == "regress"))
        return reply_error(
            res, 404, fmt::format("{}: TF-Serving's :{} API is not served; use :predict", req.path, verb));
    }
    reply_error(res, 404, fmt::format("no route POST {}", req.path));
  }

  void infer(const httplib::Request& req, httplib::Response& res, const std::shared_ptr<const ServedModel>& m,
             bool kserve) {
    // No check of `stopping` here: a request already received while stop() drains is answered.
    batcher->arriving();
    bool announced = true;  // until run() takes over the announcement
    try {
      if (kserve) {
        KServeRequest r = parse_kserve_request(req.body, m->info);
        Examples ex = std::move(r.examples);
        r.examples.n = ex.n;
        announced = false;
        const BatchResult out = batcher->run(std::move(ex), m->info.input_shape, true);
        reply(res, 200,
              kserve_response(r, out.outputs.data(), out.model->info, name,
                              std::to_string(out.model->version)));
      } else {
        TfServingRequest r = parse_tf_serving_request(req.body, m->info);
        Examples ex = std::move(r.examples);
        r.examples.n = ex.n;
        announced = false;
        const BatchResult out = batcher->run(std::move(ex), m->info.input_shape, true);
        reply(res, 200, tf_serving_response(r, out.outputs.data(), out.model->info));
      }
    } catch (const ProtocolError& e) {
      if (announced) batcher->departed();
      reply_error(res, e.status(), e.what());
    } catch (const InputError& e) {
      if (announced) batcher->departed();
      reply_error(res, 400, e.what());
    } catch (...) {
      if (announced) batcher->departed();
      throw;  // the exception handler answers 500
    }
  }

  // ---- serving ----------------------------------------------------------------------------

  void configure() {
    const int workers = o.workers;
    server.new_task_queue = [workers] { return new httplib::ThreadPool(static_cast<size_t>(workers)); };
    server.set_socket_options([](socket_t sock) {  // SO_REUSEADDR only: never share a port in use
      int yes = 1;
      setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    });
    server.set_keep_alive_timeout(2);  // also how long stop() may wait for an idle keep-alive connection
    server.set_keep_alive_max_count(10000);
    server.set_tcp_nodelay(true);
    server.set_payload_max_length(o.max_body);
    server.set_read_timeout(10);
    server.Get(".*", [this](const httplib::Request& req, httplib::Response& res) { handle_get(req, res); });
    server.Post(".*", [this](const httplib::Request& req, httplib::Response& res) { handle_post(req, res); });
    const auto not_allowed = [](const httplib::Request& req, httplib::Response& res) {
      res.set_header("Allow", "GET, POST");
      reply_error(res, 405, fmt::format("{} {}: only GET and POST are served", req.method, req.path));
    };
    server.Put(".*", not_allowed);
    server.Patch(".*", not_allowed);
    server.Delete(".*", not_allowed);
    server.Options(".*", not_allowed);
    // Errors httplib answers itself (a body over the limit, a malformed request) get a JSON body too.
    const size_t max_body = o.max_body;
    server.set_error_handler(
        httplib::Server::HandlerWithResponse([max_body](const httplib::Request& req, httplib::Response& res) {
          if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;  // ours, already JSON
          std::string message;
          switch (res.status) {
            case 413:
              message = fmt::format("the request body is larger than {} bytes (--max-body)", max_body);
              break;
            case 414:
              message = "the request URI is too long";
              break;
            case 400:
              message = "malformed HTTP request";
              break;
            case 404:
              message = fmt::format("no route {} {}", req.method, req.path);
              break;
            default:
              message = fmt::format("HTTP {}", res.status);
          }
          reply(res, res.status, error_body(message));
          return httplib::Server::HandlerResponse::Handled;
        }));
    server.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
      std::string what = "unknown error";
      try {
        std::rethrow_exception(ep);
      } catch (const std::exception& e) {
        what = e.what();
      } catch (...) {
      }
      reply_error(res, 500, fmt::format("internal error: {}", what));
    });
  }

  void start() {
    DEFT_CHECK(bound_port < 0, "serve: start() is called once");
    configure();
    if (o.port == 0) {
      bound_port = server.bind_to_any_port(o.host);
      DEFT_CHECK(bound_port > 0,
                 "serve: cannot listen on {} (any port): is the host one of this machine's addresses?",
                 o.host);
    } else {
      DEFT_CHECK(
          server.bind_to_port(o.host, o.port),
          "serve: cannot listen on {} port {}: the port is in use or the address is not this machine's "
          "(choose another with --port, or --port 0 for any free port)",
          o.host, o.port);
      bound_port = o.port;
    }
    server.widen_backlog(1024);
    server_thread = std::thread([this] { server.listen_after_bind(); });
    for (int i = 0; i < 10000 && !server.is_running(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    if (o.reload_interval_s > 0) watcher = std::thread([this] { watch(); });
  }

  void watch() {
    const auto interval = std::chrono::duration<double>(o.reload_interval_s);
    std::string last_error;
    for (;;) {
      {
        std::unique_lock<std::mutex> hold(stop_mu);
        if (stop_cv.wait_for(hold, interval, [&] { return stopped; })) return;
      }
      const auto stamp = stamp_of(o.model);
      if (!stamp || stamp == loaded_stamp) continue;  // gone (keep serving) or unchanged
      loaded_stamp = stamp;
      try {
        auto next = o.loader(o.model);
        const int64_t version = batcher->model()->version + 1;
        std::fprintf(stderr, "deft serve: %s changed: loaded %s, serving it as version %lld\n",
                     o.model.c_str(), next->info().architecture.c_str(), static_cast<long long>(version));
        batcher->replace(std::move(next));
      } catch (const std::exception& e) {
        std::fprintf(stderr, "deft serve: %s changed but cannot be loaded; still serving version %lld: %s\n",
                     o.model.c_str(), static_cast<long long>(batcher->model()->version), e.what());
      }
    }
  }

  void stop() {
    {
      std::lock_guard<std::mutex> hold(stop_mu);
      if (stopped) return;
      stopped = true;
    }
    stopping = true;
    stop_cv.notify_all();
    if (watcher.joinable()) watcher.join();
    if (server_thread.joinable()) {
      server.stop();         // no new connections ...
      server_thread.join();  // ... and every request received is answered (the pool drains)
    }
    batcher->stop();
  }
};

ModelServer::ModelServer(ServeOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
ModelServer::~ModelServer() { impl_->stop(); }
void ModelServer::start() { impl_->start(); }
void ModelServer::stop() { impl_->stop(); }
int ModelServer::port() const { return impl_->bound_port; }
const std::string& ModelServer::name() const { return impl_->name; }
std::shared_ptr<const ServedModel> ModelServer::model() const { return impl_->batcher->model(); }
BatcherStats ModelServer::stats() const { return impl_->batcher->stats(); }

std::string ModelServer::url() const {
  const std::string& h = impl_->o.host;
  const bool v6 = h.find(':') != std::string::npos;
  return "http://" + (v6 ? "[" + h + "]" : h) + ":" + std::to_string(impl_->bound_port);
}

}  // namespace deft::deploy
