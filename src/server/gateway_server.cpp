#include "gateway_server.hpp"

#include "asio_loop_host.hpp"

#include "gateway_http.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <spdlog/spdlog.h>

#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <deque>
#include <list>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>

namespace switchyard::server {

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using error_code = beast::error_code;
using steady = std::chrono::steady_clock;

constexpr std::size_t header_limit = 64 * 1024;
constexpr std::string_view continue_line = "HTTP/1.1 100 Continue\r\n\r\n";

// Statuses without a router error kind of their own, in OpenAI's shape.
router_error http_error(error_kind kind, int status, std::string message) {
  auto e = router_error::make(kind, std::move(message));
  e.status = status;
  return e;
}

double ms_since(steady::time_point start) {
  return std::chrono::duration<double, std::milli>(steady::now() - start).count();
}

bool iequals(std::string_view a, std::string_view b) {
  return beast::iequals(a, b);
}

std::optional<std::string_view> field(const http::request<http::string_body>& req,
                                      std::string_view name) {
  auto it = req.find(beast::string_view(name.data(), name.size()));
  if (it == req.end())
    return std::nullopt;
  auto v = it->value();
  return std::string_view(v.data(), v.size());
}

template <class Message>
void set_headers(Message& m, const header_list& headers) {
  m.set(http::field::server, "switchyard");
  for (const auto& [name, value] : headers)
    m.set(name, value);
}

// A response's head (status line, Beast's fields, the blank line) into
// `out`, which the write then sends as one buffer. The fields are Beast's
// (set, keep_alive, prepare_payload and chunked settle them); only the
// copy into one string is done here. Beast's serializer gives each field
// a buffer of its own, and walking that sequence (through its variant
// iterators, several times per write) took 6 % of serve's CPU with the
// 14 fields of an answer.
template <class Body>
void head_into(std::string& out, const http::response<Body>& m) {
  out.clear();
  out.reserve(1024);
  out += "HTTP/";
  out += static_cast<char>('0' + m.version() / 10);
  out += '.';
  out += static_cast<char>('0' + m.version() % 10);
  out += ' ';
  out += std::to_string(m.result_int());
  out += ' ';
  const auto reason = m.reason();
  out.append(reason.data(), reason.size());
  out += "\r\n";
  for (const auto& f : m) {
    const auto name = f.name_string();
    const auto value = f.value();
    out.append(name.data(), name.size());
    out += ": ";
    out.append(value.data(), value.size());
    out += "\r\n";
  }
  out += "\r\n";
}

/// An answer as the bytes of its HTTP response.
void wire_into(std::string& out, http_answer a, unsigned version, bool keep_alive) {
  http::response<http::string_body> res(static_cast<http::status>(a.status), version);
  set_headers(res, a.headers);
  res.set(http::field::content_type, a.content_type);
  res.body() = std::move(a.body);
  res.keep_alive(keep_alive);
  res.prepare_payload();
  out.clear();
  out.reserve(1024 + res.body().size()); // head_into keeps it: one allocation
  head_into(out, res);
  out += res.body();
}

/// The answer to a non-streamed chat request: the completion, or the
/// error, with the route's headers.
http_answer routed_answer(const route_result& r, const std::string& model_group,
                          double duration_ms) {
  auto headers = route_headers(r, model_group, duration_ms);
  if (!r.ok) {
    auto a = error_answer(r.error);
    a.headers.insert(a.headers.end(), headers.begin(), headers.end());
    return a;
  }
  return http_answer{200, "application/json", completion_body(r), std::move(headers)};
}

/// A non-streamed chat request's answer, rendered where the router
/// completes it: the connection's I/O thread then only writes the bytes,
/// and the result (its JSON tree) is freed on the router's thread.
struct rendered_answer {
  int status = 0;
  std::string wire;
  std::string deployment;
  int attempts = 0;
};

/// A stream's bytes queued and not yet written, counted from the router's
/// thread, where its chunks are made: past --max-stream-buffer-bytes no
/// further chunk is even queued, and the connection's thread is told once.
/// Counted on the connection's thread only, a reader too slow for a fast
/// upstream would let chunks pile up in the queue of work for that thread
/// (and the upstream call run on) until it got to them.
struct stream_budget {
  std::atomic<std::size_t> unsent{0};
  std::atomic<bool> over{false};
};

class session;

} // namespace

std::size_t default_io_threads() {
  return std::max(1u, std::thread::hardware_concurrency());
}

/// What every connection shares: the router, the metrics, the options, the
/// io_context and the registry of live sessions. Owned by the server and by
/// each session (so a router callback that outlives the server still finds
/// it); the io_context is declared first, so it is destroyed last.
struct gateway_server::state {
  net::io_context ioc;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
  router& routes;
  std::shared_ptr<metrics> counts;
  gateway_options options;
  key_check keys;
  tcp::acceptor acceptor;
  net::steady_timer accept_retry;
  std::vector<std::thread> threads;

  std::atomic<bool> draining{false};
  std::atomic<bool> stopped{false};
  std::atomic<std::size_t> connections{0};
  std::atomic<std::size_t> in_flight{0};

  std::mutex sessions_mutex;
  std::list<std::weak_ptr<session>> sessions;

  state(router& r, std::shared_ptr<metrics> m, gateway_options o)
    : ioc(static_cast<int>(o.threads ? o.threads : default_io_threads())),
      routes(r),
      counts(std::move(m)),
      options(std::move(o)),
      keys(options.master_key),
      acceptor(connection_executor()),
      accept_retry(acceptor.get_executor()) {}

  void accept(std::shared_ptr<state> self);

  // Each connection's handlers run one at a time: on a strand of its own,
  // or, with one I/O thread, on the io_context itself (a strand there
  // would only add a queue, a lock and an allocation to every handler).
  net::any_io_executor connection_executor() {
    if (threads_configured() == 1)
      return ioc.get_executor();
    return net::make_strand(ioc);
  }
  std::size_t threads_configured() const {
    return options.threads ? options.threads : default_io_threads();
  }

  // Calls f outside the registry's lock: dropping the last reference to a
  // session runs its destructor, which takes that lock.
  template <class F>
  void for_each_session(F f) {
    std::vector<std::shared_ptr<session>> live;
    {
      std::lock_guard<std::mutex> lock(sessions_mutex);
      for (auto& w : sessions)
        if (auto s = w.lock())
          live.push_back(std::move(s));
    }
    for (auto& s : live)
      f(s);
  }
};

namespace {

using state = gateway_server::state;

/// One connection: reads requests one at a time, answers each, and keeps
/// the connection alive between them. Every member is touched only on the
/// connection's strand; router callbacks post onto it.
class session : public std::enable_shared_from_this<session> {
public:
  session(std::shared_ptr<state> st, tcp::socket socket)
    : st_(std::move(st)), stream_(std::move(socket)) {}

  ~session() {
    st_->connections.fetch_sub(1);
    if (!registered_)
      return;
    std::lock_guard<std::mutex> lock(st_->sessions_mutex);
    st_->sessions.erase(registry_entry_);
  }

  void start(bool reject) {
    // For write_answer's first try, which must not wait; the asynchronous
    // operations do not care.
    error_code nb;
    stream_.socket().non_blocking(true, nb);
    {
      std::lock_guard<std::mutex> lock(st_->sessions_mutex);
      registry_entry_ = st_->sessions.insert(st_->sessions.end(), weak_from_this());
      registered_ = true;
    }
    net::post(stream_.get_executor(), [self = shared_from_this(), reject] {
      if (reject) {
        self->begin_exchange("-", "-", 11, false);
        self->answer(error_answer(http_error(error_kind::service_unavailable, 503,
                                             "too many connections; retry later")));
      } else {
        self->read_request();
      }
    });
  }

  /// After stop(), with no I/O thread left: close from the stopping thread.
  void close_now() { close(); }

private:
  // One request and its answer.
  struct exchange {
    std::string method;
    std::string path;
    unsigned version = 11;
    bool keep_alive = true;
    steady::time_point start = steady::now();
    std::string model_group;
    request_handle handle;
    bool routed = false;     // counted in in_flight until finished
    bool stream = false;
    bool done = false;       // the router's completion arrived
    bool committed = false;  // SSE headers sent (or being sent)
    bool client_gone = false;
    int status = 0;
    std::string deployment;
    int attempts = 0;
    // SSE output: events not yet written, the one being written, and the
    // end of the stream once the completion is in.
    std::deque<std::string> pending;
    std::size_t pending_bytes = 0;
    std::shared_ptr<stream_budget> budget; // every stream has one
    std::string writing_buf;
    bool too_slow = false;   // cancelled for back-pressure (reader_too_slow)
    bool writing = false;
    bool ended = false;      // the terminating event is queued
    bool finished = false;   // the last chunk is written
  };

  // ---- reading ------------------------------------------------------------

  void read_request() {
    parser_.emplace();
    parser_->body_limit(st_->options.max_body_bytes);
    parser_->header_limit(header_limit);
    if (!first_ && buffer_.size() == 0)
      wait_for_request();
    else
      read_header();
  }

  // Keep-alive: the next request must start within the idle timeout; from
  // its first byte on, the header timeout applies.
  void wait_for_request() {
    stream_.expires_after(st_->options.idle_timeout);
    stream_.async_read_some(buffer_.prepare(4096),
                            [self = shared_from_this()](error_code ec, std::size_t n) {
                              self->buffer_.commit(n);
                              if (ec)
                                return self->close();
                              self->read_header();
                            });
  }

  void read_header() {
    first_ = false;
    stream_.expires_after(st_->options.header_timeout);
    http::async_read_header(stream_, buffer_, *parser_,
                            [self = shared_from_this()](error_code ec, std::size_t) {
                              self->on_header(ec);
                            });
  }

  void on_header(error_code ec) {
    if (ec)
      return on_read_error(ec);
    const auto& req = parser_->get();
    if (auto expect = field(req, "expect"); expect && iequals(*expect, "100-continue")) {
      stream_.expires_after(st_->options.body_timeout);
      net::async_write(stream_, net::buffer(continue_line.data(), continue_line.size()),
                       [self = shared_from_this()](error_code ec, std::size_t) {
                         if (ec)
                           return self->close();
                         self->read_body();
                       });
      return;
    }
    read_body();
  }

  void read_body() {
    // A body that came whole with its header (most do) goes to Beast's
    // parser from the buffer here: no composed read to queue and complete.
    error_code ec;
    while (!parser_->is_done() && buffer_.size() != 0) {
      const std::size_t used = parser_->put(buffer_.data(), ec);
      buffer_.consume(used);
      if (ec == http::error::need_more) {
        ec = {};
        break;
      }
      if (ec)
        return on_read_error(ec);
      if (used == 0)
        break;
    }
    if (parser_->is_done()) {
      stream_.expires_never();
      return handle(parser_->release());
    }
    stream_.expires_after(st_->options.body_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](error_code ec, std::size_t) {
                       if (ec)
                         return self->on_read_error(ec);
                       self->stream_.expires_never();
                       self->handle(self->parser_->release());
                     });
  }

  void on_read_error(error_code ec) {
    if (ec == http::error::body_limit) {
      begin_from_parser();
      exchange_->keep_alive = false; // the rest of the body is never read
      return answer(error_answer(http_error(
        error_kind::bad_request, 413,
        "request body is larger than " + std::to_string(st_->options.max_body_bytes)
          + " bytes (--max-body-bytes)")));
    }
    if (ec == http::error::header_limit) {
      begin_exchange("-", "-", 11, false);
      return answer(error_answer(http_error(error_kind::bad_request, 431,
                                            "request headers are too large")));
    }
    if (ec == beast::error::timeout)
      spdlog::debug("gateway: closing a connection that sent no complete request in time");
    // A parse error: answer it when the client can still read.
    if (ec.category() == http::make_error_code(http::error::bad_target).category()
        && ec != http::error::end_of_stream && ec != http::error::partial_message) {
      begin_exchange("-", "-", 11, false);
      return answer(error_answer(
        http_error(error_kind::bad_request, 400, "malformed HTTP request: " + ec.message())));
    }
    close();
  }

  // ---- dispatch -------------------------------------------------------------

  void begin_exchange(std::string method, std::string path, unsigned version,
                      bool keep_alive) {
    exchange_.emplace();
    exchange_->method = std::move(method);
    exchange_->path = std::move(path);
    exchange_->version = version;
    exchange_->keep_alive = keep_alive;
  }

  void begin_from_parser() {
    const auto& req = parser_->get();
    std::string target(req.target());
    begin_exchange(std::string(req.method_string()), target.substr(0, target.find('?')),
                   req.version(), req.keep_alive());
  }

  void handle(http::request<http::string_body> req) {
    // Handlers that run after stop() (the server's destructor drains them)
    // must not reach the router, which may be gone.
    if (st_->stopped.load())
      return close();
    std::string target(req.target());
    begin_exchange(std::string(req.method_string()), target.substr(0, target.find('?')),
                   req.version(), req.keep_alive());
    const std::string& path = exchange_->path;
    const auto method = req.method();
    const bool get = method == http::verb::get;
    if (path == "/v1/chat/completions" || path == "/chat/completions") {
      if (method != http::verb::post)
        return not_allowed("POST");
      if (!authorized(req))
        return unauthorized();
      return chat(req.body());
    }
    if (path == "/v1/models" || path == "/models") {
      if (!get)
        return not_allowed("GET");
      if (!authorized(req))
        return unauthorized();
      return answer(http_answer{200, "application/json", models_body(st_->routes.config()), {}});
    }
    if (path == "/health/liveliness" || path == "/health/liveness") {
      if (!get)
        return not_allowed("GET");
      const bool up = !st_->draining.load();
      return answer(http_answer{up ? 200 : 503, "application/json",
                                up ? "\"I'm alive!\"" : "\"shutting down\"", {}});
    }
    if (path == "/health/readiness") {
      if (!get)
        return not_allowed("GET");
      const bool draining = st_->draining.load();
      return answer(http_answer{
        draining ? 503 : 200, "application/json",
        readiness_body(st_->routes.config(), draining, st_->counts->cooling_deployments(),
                       st_->routes.shared_state_status()),
        {}});
    }
    if (path == "/metrics") {
      if (!get)
        return not_allowed("GET");
      return answer(http_answer{200, "text/plain; version=0.0.4; charset=utf-8",
                                st_->counts->prometheus_text(), {}});
    }
    answer(error_answer(router_error::make(error_kind::not_found,
                                           "no such endpoint: " + exchange_->method + " " + path)));
  }

  bool authorized(const http::request<http::string_body>& req) const {
    return st_->keys.accepts(field(req, "authorization"), field(req, "api-key"),
                             field(req, "x-api-key"));
  }

  void unauthorized() {
    answer(error_answer(router_error::make(
      error_kind::authentication,
      "missing or invalid API key: pass the master key as 'Authorization: Bearer <key>', "
      "'api-key: <key>' or 'x-api-key: <key>'")));
  }

  void not_allowed(const char* allowed) {
    auto a = error_answer(http_error(error_kind::bad_request, 405,
                                     "method " + exchange_->method + " is not allowed on "
                                       + exchange_->path + "; use " + allowed));
    a.headers.emplace_back("allow", allowed);
    answer(std::move(a));
  }

  void chat(const std::string& body) {
    if (st_->draining.load()) {
      exchange_->keep_alive = false;
      return answer(error_answer(
        router_error::make(error_kind::shutdown, "the gateway is shutting down; retry elsewhere")));
    }
    body_result parsed = parse_body(body);
    if (!parsed.request)
      return answer(std::move(*parsed.error));
    auto& ex = *exchange_;
    ex.model_group = resolved_group(st_->routes.config(), parsed.request->model);
    ex.stream = parsed.request->stream;
    ex.routed = true;
    st_->in_flight.fetch_add(1);
    st_->counts->add_in_flight(1);
    auto self = shared_from_this();
    auto exec = stream_.get_executor();
    const std::uint64_t gen = ++generation_;
    if (!ex.stream) {
      // Rendered on the router's thread, which has time to spare: the I/O
      // thread, which carries every connection and the upstream calls,
      // is the gateway's bottleneck.
      completion_handler done = [self, exec, gen, group = ex.model_group, start = ex.start,
                                 version = ex.version, keep = ex.keep_alive](route_result r) {
        rendered_answer a;
        a.deployment = r.ok ? r.deployment_id : r.error.deployment_id;
        a.attempts = static_cast<int>(r.attempts.size());
        auto answer = routed_answer(r, group, ms_since(start));
        a.status = answer.status;
        wire_into(a.wire, std::move(answer), version, self->keep_alive(keep));
        net::post(exec, [self, gen, a = std::move(a)]() mutable {
          self->on_answered(gen, std::move(a));
        });
      };
      ex.handle = st_->routes.async_complete(std::move(*parsed.request), std::move(done));
      return watch_for_disconnect(gen);
    }
    completion_handler done = [self, exec, gen](route_result r) {
      net::post(exec, [self, gen, r = std::move(r)]() mutable {
        self->on_done(gen, std::move(r));
      });
    };
    {
      // Posted from the orchestrator in order, so the strand runs the
      // commit before the first chunk.
      commit_handler on_commit = [self, exec, gen](const stream_commit& c) {
        net::post(exec, [self, gen, c]() { self->on_commit(gen, c); });
      };
      ex.budget = std::make_shared<stream_budget>();
      chunk_handler on_chunk = [self, exec, gen, budget = ex.budget,
                                cap = st_->options.max_stream_buffer_bytes](
                                 const nlohmann::json& chunk) {
        if (budget->over.load(std::memory_order_relaxed))
          return; // being cut off
        auto event = sse_event(chunk);
        const std::size_t unsent = budget->unsent.fetch_add(event.size()) + event.size();
        if (unsent > cap) {
          budget->over.store(true);
          net::post(exec, [self, gen, unsent] { self->on_too_slow(gen, unsent); });
          return;
        }
        net::post(exec, [self, gen, event = std::move(event)]() mutable {
          self->on_chunk(gen, std::move(event));
        });
      };
      ex.handle = st_->routes.async_stream(std::move(*parsed.request), std::move(on_commit),
                                           std::move(on_chunk), std::move(done));
    }
    watch_for_disconnect(gen);
  }

  // While the router works there is no read on the socket, so a client
  // that hangs up would go unnoticed: wait for readability, and a peek of
  // zero bytes (or an error) means it is gone. Bytes mean a pipelined
  // request, left for the parser.
  void watch_for_disconnect(std::uint64_t gen) {
    stream_.socket().async_wait(
      tcp::socket::wait_read, [self = shared_from_this(), gen](error_code ec) {
        if (!self->exchange_ || gen != self->generation_ || self->exchange_->done
            || ec == net::error::operation_aborted)
          return;
        char byte;
        const auto n = ::recv(self->stream_.socket().native_handle(), &byte, 1,
                              MSG_PEEK | MSG_DONTWAIT);
        if (!ec && n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
          return self->watch_for_disconnect(gen);
        if (!ec && n > 0)
          return;
        self->client_gone();
      });
  }

  void client_gone() {
    auto& ex = *exchange_;
    if (ex.client_gone)
      return;
    ex.client_gone = true;
    if (!st_->stopped.load())
      ex.handle.cancel();
    // The completion still comes (cancelled): the exchange ends there.
  }

  // ---- answers --------------------------------------------------------------

  // The router committed the stream: its status line and headers go now,
  // ahead of the first chunk.
  void on_commit(std::uint64_t gen, const stream_commit& c) {
    if (!exchange_ || gen != generation_ || exchange_->client_gone || exchange_->done
        || exchange_->committed)
      return;
    commit_stream(commit_headers(c, exchange_->model_group, ms_since(exchange_->start)));
  }

  void on_chunk(std::uint64_t gen, std::string event) {
    if (!exchange_ || gen != generation_ || exchange_->client_gone || exchange_->done)
      return;
    auto& ex = *exchange_;
    if (!ex.committed) // the router always commits first; never a stream without a head
      commit_stream({{"x-switchyard-model-group", ex.model_group},
                     {"x-litellm-model-group", ex.model_group}});
    ex.pending_bytes += event.size(); // counted in the budget by its maker
    ex.pending.push_back(std::move(event));
    pump();
  }

  // An event of the stream's own (its replay, its end), counted here.
  void queue_event(std::string event) {
    auto& ex = *exchange_;
    ex.budget->unsent.fetch_add(event.size());
    ex.pending_bytes += event.size();
    ex.pending.push_back(std::move(event));
  }

  void on_too_slow(std::uint64_t gen, std::size_t unsent) {
    if (!exchange_ || gen != generation_ || exchange_->client_gone || exchange_->done)
      return;
    reader_too_slow(unsent);
  }

  // Back-pressure: the transport cannot pause a call, so a client that
  // reads slower than its upstream writes would make this connection
  // buffer without bound. Past the cap the request is cancelled (upstream
  // call included) and the connection closed; the warning says why.
  void reader_too_slow(std::size_t unsent) {
    auto& ex = *exchange_;
    spdlog::warn("gateway: {} {}: cancelling a stream: the client reads too slowly ({} bytes "
                 "unsent, over --max-stream-buffer-bytes {}); model_group={}",
                 ex.method, ex.path, unsent,
                 st_->options.max_stream_buffer_bytes, ex.model_group);
    ex.too_slow = true;
    ex.pending.clear();
    ex.pending_bytes = 0;
    client_gone();
    // Aborts the write in progress, which ends the exchange once the
    // cancelled completion is in.
    close();
  }

  // The router's completion is in. False when the exchange ends here:
  // it is another's (a late completion) or its client is gone.
  bool completed(std::uint64_t gen, std::string deployment, int attempts) {
    if (!exchange_ || gen != generation_)
      return false;
    auto& ex = *exchange_;
    ex.done = true;
    ex.deployment = std::move(deployment);
    ex.attempts = attempts;
    if (!ex.client_gone)
      return true;
    if (!ex.too_slow)
      ex.status = 499; // nginx's "client closed request", for the access log
    // A write still in progress ends the exchange when it completes.
    if (!ex.writing)
      finish(false);
    return false;
  }

  void on_answered(std::uint64_t gen, rendered_answer a) {
    if (!completed(gen, std::move(a.deployment), a.attempts))
      return;
    exchange_->status = a.status;
    out_ = std::move(a.wire);
    write_answer();
  }

  // A streamed request's completion.
  void on_done(std::uint64_t gen, route_result r) {
    if (!completed(gen, r.ok ? r.deployment_id : r.error.deployment_id,
                   static_cast<int>(r.attempts.size())))
      return;
    auto& ex = *exchange_;
    if (ex.committed) {
      queue_event(r.ok ? std::string(sse_done) : sse_error(r.error));
      ex.ended = true;
      return pump();
    }
    if (!r.ok)
      return answer(routed_answer(r, ex.model_group, ms_since(ex.start)));
    // The answer came whole: replay it as the stream it would have been.
    commit_stream(route_headers(r, ex.model_group, ms_since(ex.start)));
    for (const auto& chunk : replay_chunks(r))
      queue_event(sse_event(chunk));
    queue_event(std::string(sse_done));
    ex.ended = true;
    pump();
  }

  bool keep_alive() const { return keep_alive(exchange_->keep_alive); }
  // Any thread: the drain flag is atomic.
  bool keep_alive(bool asked) const { return asked && !st_->draining.load(); }

  void answer(http_answer a) {
    exchange_->status = a.status;
    wire_into(out_, std::move(a), exchange_->version, keep_alive());
    write_answer();
  }

  // Writes out_, a whole answer, then finish(). Most answers fit in the
  // socket's send buffer: sent here at once, with no operation, timer or
  // handler queued (together they cost more than the send itself); what
  // does not fit goes asynchronously, under the write timeout. Callers
  // return right after: finish() may have ended the exchange.
  void write_answer() {
    error_code ec;
    const std::size_t n = stream_.socket().write_some(net::buffer(out_), ec);
    if (!ec && n == out_.size())
      return finish(true);
    if (ec && ec != net::error::would_block && ec != net::error::try_again)
      return finish(false);
    write_out([self = shared_from_this()](error_code e) { self->finish(!e); }, ec ? 0 : n);
  }

  // Writes out_ (an answer or a stream's head) from `from` on: one write
  // at a time.
  template <class Handler>
  void write_out(Handler&& h, std::size_t from = 0) {
    stream_.expires_after(st_->options.body_timeout);
    net::async_write(stream_, net::buffer(out_) + from,
                     [h = std::forward<Handler>(h)](error_code ec, std::size_t) { h(ec); });
  }

  // The status line of a stream: sent with its first chunk.
  void commit_stream(header_list headers) {
    auto& ex = *exchange_;
    ex.committed = true;
    ex.status = 200;
    http::response<http::empty_body> head(http::status::ok, ex.version);
    set_headers(head, headers);
    head.set(http::field::content_type, "text/event-stream");
    head.set(http::field::cache_control, "no-cache");
    head.keep_alive(keep_alive());
    head.chunked(true);
    head_into(out_, head);
    ex.writing = true;
    write_out([self = shared_from_this()](error_code ec) { self->on_stream_written(ec); });
  }

  // Writes what is queued as one chunk; then the last chunk once the
  // completion is in.
  void pump() {
    auto& ex = *exchange_;
    if (ex.writing || ex.finished)
      return;
    if (!ex.pending.empty()) {
      ex.writing_buf.clear();
      ex.writing_buf.reserve(ex.pending_bytes);
      for (auto& e : ex.pending)
        ex.writing_buf += e;
      ex.pending.clear();
      ex.pending_bytes = 0;
      ex.writing = true;
      stream_.expires_after(st_->options.body_timeout);
      net::async_write(stream_, http::make_chunk(net::buffer(ex.writing_buf)),
                       [self = shared_from_this()](error_code ec, std::size_t) {
                         self->on_stream_written(ec);
                       });
      return;
    }
    if (ex.ended) {
      ex.writing = true;
      ex.finished = true;
      stream_.expires_after(st_->options.body_timeout);
      net::async_write(stream_, http::make_chunk_last(),
                       [self = shared_from_this()](error_code ec, std::size_t) {
                         self->exchange_->writing = false;
                         self->finish(!ec);
                       });
    }
  }

  void on_stream_written(error_code ec) {
    auto& ex = *exchange_;
    ex.writing = false;
    ex.budget->unsent.fetch_sub(ex.writing_buf.size());
    ex.writing_buf.clear();
    stream_.expires_never();
    if (ec) {
      // The client is gone mid-stream: cancel, and end at the completion.
      ex.finished = true;
      client_gone();
    }
    if (ex.client_gone) {
      if (ex.done)
        finish(false);
      return;
    }
    pump();
  }

  // The exchange is over: account for it, then read the next request or
  // close.
  void finish(bool written) {
    auto& ex = *exchange_;
    if (ex.routed) {
      st_->in_flight.fetch_sub(1);
      st_->counts->add_in_flight(-1);
    }
    spdlog::info("{} {} {} model_group={} deployment={} attempts={} {:.1f}ms", ex.method,
                 ex.path, ex.status, ex.model_group.empty() ? "-" : ex.model_group,
                 ex.deployment.empty() ? "-" : ex.deployment, ex.attempts, ms_since(ex.start));
    const bool again = written && keep_alive() && !ex.client_gone;
    exchange_.reset();
    ++generation_;
    if (again)
      read_request();
    else if (written)
      linger_close();
    else
      close();
  }

  // After an answer with `connection: close`: stop sending, then read and
  // drop what the client still sends (the rest of a refused body) until
  // it closes or a second passes. Closing at once with unread input makes
  // the kernel send a reset that can destroy the answer before the client
  // reads it.
  void linger_close() {
    error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    if (ec)
      return close();
    stream_.expires_after(std::chrono::seconds(1));
    drain_input();
  }

  void drain_input() {
    buffer_.clear();
    stream_.async_read_some(buffer_.prepare(16 * 1024),
                            [self = shared_from_this()](error_code ec, std::size_t) {
                              if (ec)
                                return self->close();
                              self->drain_input();
                            });
  }

  void close() {
    error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.socket().close(ec);
  }

  std::shared_ptr<state> st_; // first: outlives the stream
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  // An answer or a stream's head as bytes (wire_into, head_into), while
  // it is written.
  std::string out_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<exchange> exchange_;
  std::uint64_t generation_ = 0;
  bool first_ = true;
  std::list<std::weak_ptr<session>>::iterator registry_entry_;
  bool registered_ = false;
};

} // namespace

void gateway_server::state::accept(std::shared_ptr<state> self) {
  acceptor.async_accept(
    connection_executor(), [self](error_code ec, tcp::socket socket) {
      if (ec == net::error::operation_aborted || self->draining.load())
        return;
      if (ec) {
        // Out of descriptors, most likely: wait a little instead of spinning.
        spdlog::warn("gateway: accept failed: {}", ec.message());
        self->accept_retry.expires_after(std::chrono::milliseconds(50));
        self->accept_retry.async_wait([self](error_code e) {
          if (!e)
            self->accept(self);
        });
        return;
      }
      const bool reject = self->connections.fetch_add(1) >= self->options.max_connections;
      std::make_shared<session>(self, std::move(socket))->start(reject);
      self->accept(self);
    });
}

gateway_server::gateway_server(router& r, std::shared_ptr<metrics> m, gateway_options options)
  : state_(std::make_shared<state>(r, std::move(m), std::move(options))) {}

gateway_server::~gateway_server() {
  stop();
  // No I/O thread runs now: close every connection from here, then run
  // what is still queued (the aborted operations, late router
  // completions), so the sessions they hold are released.
  state_->for_each_session([](const std::shared_ptr<session>& s) { s->close_now(); });
  state_->ioc.restart();
  state_->ioc.poll();
}

std::uint16_t gateway_server::start() {
  auto& st = *state_;
  error_code ec;
  const std::string host = st.options.host == "localhost" ? "127.0.0.1" : st.options.host;
  const auto address = net::ip::make_address(host, ec);
  if (ec)
    throw std::runtime_error("--host: '" + st.options.host + "' is not an IP address");
  const tcp::endpoint endpoint(address, st.options.port);
  const auto fail = [&](const char* what) {
    throw std::runtime_error(std::string("cannot ") + what + " " + host + ":"
                             + std::to_string(st.options.port) + ": " + ec.message());
  };
  st.acceptor.open(endpoint.protocol(), ec);
  if (ec)
    fail("open a socket for");
  st.acceptor.set_option(net::socket_base::reuse_address(true), ec);
  st.acceptor.bind(endpoint, ec);
  if (ec)
    fail("bind");
  st.acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec)
    fail("listen on");
  const auto port = st.acceptor.local_endpoint().port();
  st.work.emplace(st.ioc.get_executor());
  if (st.options.transport_loop)
    st.options.transport_loop->bind(st.ioc);
  st.accept(state_);
  const std::size_t n = st.threads_configured();
  for (std::size_t i = 0; i < n; ++i)
    st.threads.emplace_back([s = state_] { s->ioc.run(); });
  return port;
}

void gateway_server::begin_shutdown() {
  auto& st = *state_;
  if (st.draining.exchange(true))
    return;
  // Open connections stay: their next request (a health probe, most
  // likely) is answered, with 503 for readiness, liveness and new chat
  // requests, and `connection: close`.
  net::post(st.acceptor.get_executor(), [s = state_] {
    error_code ec;
    s->acceptor.close(ec);
    s->accept_retry.cancel();
  });
}

std::size_t gateway_server::in_flight() const noexcept {
  return state_->in_flight.load();
}

void gateway_server::stop() {
  auto& st = *state_;
  if (st.stopped.exchange(true))
    return;
  begin_shutdown();
  st.work.reset();
  st.ioc.stop();
  for (auto& t : st.threads)
    t.join();
  st.threads.clear();
  // Calls still in flight stay with the router, which cancels them.
  if (st.options.transport_loop)
    st.options.transport_loop->unbind();
}

} // namespace switchyard::server
