#include "switchyard/http_client.hpp"

#include <curl/curl.h>
#include <openssl/x509.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <mutex>
#include <queue>
#include <stdexcept>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

// Why an epoll loop over curl_multi_socket_action rather than
// curl_multi_poll: curl_multi_poll rebuilds a pollfd array of every socket
// and curl_multi_perform walks every transfer on each wake-up, O(n) per
// event; with thousands of open streams each trickling SSE chunks that is
// quadratic. socket_action touches only the socket that is ready, and the
// loop needs its own timer heap for the idle timeouts anyway, so curl's one
// timer joins it.

namespace switchyard {

namespace {

using clock_type = std::chrono::steady_clock;
constexpr auto never = clock_type::time_point::max();

void global_init_once() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

double ms_between(clock_type::time_point from, clock_type::time_point to) {
  return std::chrono::duration<double, std::milli>(to - from).count();
}

bool is_token(std::string_view s) {
  if (s.empty())
    return false;
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.' || c == '!' || c == '#' || c == '$' ||
              c == '%' || c == '&' || c == '\'' || c == '*' || c == '+' || c == '^' ||
              c == '`' || c == '|' || c == '~';
    if (!ok)
      return false;
  }
  return true;
}

bool has_line_break(std::string_view s) {
  return s.find_first_of("\r\n") != std::string_view::npos;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size())
    return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    auto x = static_cast<unsigned char>(a[i]);
    auto y = static_cast<unsigned char>(b[i]);
    if ((x | 0x20) != (y | 0x20) || ((x | 0x20) < 'a' && x != y))
      return false;
  }
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n'))
    s.remove_suffix(1);
  return s;
}

/// `scheme://host:port` of an http(s) URL, the only part of it errors may
/// show (a query can carry a key, a path a deployment secret). Empty, with
/// `problem` set, when the URL does not parse or is not http(s).
std::string origin_of(const std::string& url, std::string& problem) {
  CURLU* u = curl_url();
  if (!u) {
    problem = "out of memory";
    return {};
  }
  std::string out;
  char* scheme = nullptr;
  char* host = nullptr;
  char* port = nullptr;
  if (curl_url_set(u, CURLUPART_URL, url.c_str(), CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK ||
      curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK) {
    problem = "invalid URL (not shown: it may carry a key)";
  } else if (std::string_view(scheme) != "http" && std::string_view(scheme) != "https") {
    problem = std::string("unsupported URL scheme '") + scheme + "' (http and https only)";
  } else if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
             curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK) {
    problem = "invalid URL (not shown: it may carry a key)";
  } else {
    out = std::string(scheme) + "://" + host + ":" + port;
  }
  curl_free(scheme);
  curl_free(host);
  curl_free(port);
  curl_url_cleanup(u);
  return out;
}

/// What went wrong, in words that name the cause and nothing the caller
/// sent (curl's error buffer can quote a URL or a proxy's credentials, so
/// it is never used).
std::string cause_of(CURLcode code, long os_errno, long verify_result) {
  switch (code) {
    case CURLE_COULDNT_CONNECT:
      if (os_errno == ECONNREFUSED)
        return "connection refused";
      if (os_errno == ETIMEDOUT)
        return "connect timed out";
      if (os_errno == ENETUNREACH || os_errno == EHOSTUNREACH)
        return "host unreachable";
      return "could not connect";
    case CURLE_COULDNT_RESOLVE_HOST:
      return "could not resolve host";
    case CURLE_COULDNT_RESOLVE_PROXY:
      return "could not resolve proxy";
    case CURLE_GOT_NOTHING:
      return "connection closed with no answer (empty reply)";
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
      if (os_errno == ECONNRESET || os_errno == EPIPE)
        return "connection reset by peer";
      return code == CURLE_RECV_ERROR ? "receive failure" : "send failure";
    case CURLE_PARTIAL_FILE:
      return "connection closed before the answer was complete";
    case CURLE_PEER_FAILED_VERIFICATION:
      if (verify_result != 0)
        return std::string("certificate verify failed: ") +
               X509_verify_cert_error_string(verify_result);
      return "certificate verify failed";
    case CURLE_SSL_CACERT_BADFILE:
      return "the CA bundle (ca_file) could not be read";
    case CURLE_SSL_CONNECT_ERROR:
      return "TLS handshake failed";
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
      return "HTTP/2 protocol error";
    case CURLE_URL_MALFORMAT:
      return "invalid URL";
    case CURLE_UNSUPPORTED_PROTOCOL:
      return "unsupported URL scheme (http and https only)";
    case CURLE_WEIRD_SERVER_REPLY:
      return "malformed answer";
    case CURLE_OUT_OF_MEMORY:
      return "out of memory";
    default:
      // A static text per code: it never carries what the caller sent.
      return curl_easy_strerror(code);
  }
}

/// The request's headers as curl wants them, or nullptr with `problem`
/// set. A header's name may appear in `problem`, its value never.
curl_slist* header_list_of(const http_headers& headers, std::string& problem) {
  bool has_expect = false;
  bool has_content_type = false;
  curl_slist* list = nullptr;
  auto append = [&list](const std::string& line) {
    if (auto* next = curl_slist_append(list, line.c_str())) {
      list = next;
      return true;
    }
    return false;
  };
  for (const auto& h : headers) {
    if (!is_token(h.name) || has_line_break(h.value)) {
      curl_slist_free_all(list);
      problem = is_token(h.name) ? "invalid header '" + h.name + "' (its value has a line break)"
                                 : std::string("invalid header name");
      return nullptr;
    }
    has_expect = has_expect || iequals(h.name, "expect");
    has_content_type = has_content_type || iequals(h.name, "content-type");
    // curl's syntax for a header with an empty value is `Name;`.
    if (!(h.value.empty() ? append(h.name + ";") : append(h.name + ": " + h.value))) {
      curl_slist_free_all(list);
      problem = "out of memory";
      return nullptr;
    }
  }
  // No `Expect: 100-continue` round trip on large bodies, and no curl
  // default form content type on a body the codec did not type.
  if (!has_expect)
    append("Expect:");
  if (!has_content_type)
    append("Content-Type:");
  if (!list)
    problem = "out of memory";
  return list;
}

/// The method, and the body for methods that carry one. The body is not
/// copied: it lives in the call as long as the transfer.
void set_method(CURL* e, const http_request_spec& req) {
  const std::string& m = req.method;
  if (m == "GET") {
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
  } else if (m == "HEAD") {
    curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
  } else {
    if (m != "POST")
      curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, m.c_str());
    if (m == "POST" || !req.body.empty()) {
      curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
      curl_easy_setopt(e, CURLOPT_POSTFIELDS, req.body.data());
    }
  }
}

/// The connection cache's size (see http_client_options::connection_cache).
std::size_t connection_cache_of(const http_client_options& o) {
  constexpr std::size_t default_cache = 1024;
  if (o.connection_cache > 0)
    return o.connection_cache;
  return std::max(default_cache, o.max_total_connections);
}

/// The port of a `scheme://host:port` origin.
long port_of(const std::string& origin) {
  auto colon = origin.rfind(':');
  return colon == std::string::npos ? 0 : std::strtol(origin.c_str() + colon + 1, nullptr, 10);
}

/// The epoll registration of each socket the loop has seen, by fd (I/O
/// thread only; the destructor reads it after the thread ended).
///
/// Why: curl 7.88 reports a connection's socket as CURL_POLL_REMOVE when
/// its transfer ends and as CURL_POLL_IN again when the next transfer takes
/// the kept connection, so plain EPOLL_CTL_DEL and EPOLL_CTL_ADD cost two
/// epoll_ctl calls per call on a kept-alive connection. A socket that the
/// client itself opened (open_socket) and that curl closes through
/// close_socket stays registered instead while it waits in curl's
/// connection cache; epoll_ctl runs only when the wanted events change.
/// An event on such an idle socket (the server closed it, or sent bytes
/// nobody asked for) takes it out of epoll then, once: the level-triggered
/// event would otherwise repeat. Sockets curl opens itself (the threaded
/// resolver's socketpair, closed without close_socket) keep the plain
/// DEL on CURL_POLL_REMOVE: a stale registration of a closed fd number
/// would hide the next socket that gets it.
struct socket_table {
  struct entry {
    bool ours = false;      // opened by open_socket, closed by close_socket
    bool in_epoll = false;  // registered, with `events`
    bool wanted = false;    // curl wants events (not CURL_POLL_REMOVE)
    std::uint32_t events = 0;
  };
  std::vector<entry> by_fd;

  entry& at(int fd) {
    if (static_cast<std::size_t>(fd) >= by_fd.size())
      by_fd.resize(static_cast<std::size_t>(fd) + 64);
    return by_fd[static_cast<std::size_t>(fd)];
  }
};

/// One call. Its fields below `io thread only` belong to the I/O thread;
/// the callbacks run under callback_mutex, which cancel() takes to set
/// `cancelled`, so that once cancel() returns none runs again.
struct call {
  std::uint64_t id = 0;
  http_request_spec request;
  http_call_options options;
  http_call_events events;
  clock_type::time_point started_at;

  std::mutex callback_mutex;
  std::atomic<bool> cancelled{false};
  /// on_done was delivered (under callback_mutex).
  bool finished = false;

  // io thread only
  CURL* easy = nullptr;
  curl_slist* header_list = nullptr;
  std::string origin;
  http_headers head;
  long head_status = 0;
  bool head_done = false;
  bool got_body = false;
  clock_type::time_point first_body_at{};
  clock_type::time_point total_deadline = never;
  clock_type::time_point idle_deadline = never;
  long connects = 0;
  std::string last_peer; // ip:port of the last connect attempt
  long last_peer_port = 0;
  socket_table* sockets = nullptr; // the client's, for open_socket
};

using call_ptr = std::shared_ptr<call>;

/// Runs `f` (a callback of `c`) unless the call was cancelled; false if it
/// was.
template <class F>
bool deliver(call& c, F&& f) {
  if (c.cancelled.load())
    return false;
  std::lock_guard lock(c.callback_mutex);
  if (c.cancelled.load())
    return false;
  f();
  return true;
}

/// " (through the proxy at ip:port)" when the address curl last connected
/// or tried to connect to is not the URL's port: a proxy from the
/// environment was in the way, and "connection refused" was the proxy's.
/// Only the proxy's address is shown, never its URL (it may carry
/// credentials).
std::string proxy_note(const call& c) {
  if (c.last_peer_port == 0 || c.last_peer_port == port_of(c.origin))
    return {};
  return " (through the proxy at " + c.last_peer + ")";
}

/// curl's socket factory, to remember the address of each connect attempt
/// (curl 7.88 reports none for a failed one) and to make sockets
/// close-on-exec, so that a child process never holds a connection open.
curl_socket_t open_socket(void* clientp, curlsocktype, curl_sockaddr* addr) {
  auto& c = *static_cast<call*>(clientp);
  char text[INET6_ADDRSTRLEN] = {};
  if (addr->family == AF_INET) {
    auto* in = reinterpret_cast<const sockaddr_in*>(&addr->addr);
    inet_ntop(AF_INET, &in->sin_addr, text, sizeof text);
    c.last_peer = std::string(text) + ":" + std::to_string(ntohs(in->sin_port));
    c.last_peer_port = ntohs(in->sin_port);
  } else if (addr->family == AF_INET6) {
    auto* in6 = reinterpret_cast<const sockaddr_in6*>(&addr->addr);
    inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text);
    c.last_peer = std::string("[") + text + "]:" + std::to_string(ntohs(in6->sin6_port));
    c.last_peer_port = ntohs(in6->sin6_port);
  }
  int fd = socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
  if (fd < 0)
    return CURL_SOCKET_BAD;
  c.sockets->at(fd) = socket_table::entry{true, false, false, 0};
  return fd;
}

/// curl's closing of a socket open_socket made: a closed fd leaves the
/// epoll set by itself (nothing else refers to its file), so its entry is
/// only forgotten.
int close_socket(void* clientp, curl_socket_t fd) {
  static_cast<socket_table*>(clientp)->at(fd) = socket_table::entry{};
  return close(fd);
}

void head_complete(call& c) {
  c.head_done = true;
  if (c.events.on_head)
    deliver(c, [&] { c.events.on_head(c.head_status, std::move(c.head)); });
}

} // namespace

class http_client::impl {
public:
  explicit impl(http_client_options options);
  ~impl();

  std::uint64_t start(http_request_spec request, http_call_options options,
                      http_call_events events);
  void cancel(std::uint64_t id) noexcept;
  stats snapshot() const;

private:
  // The loop and its parts (I/O thread).
  void run();
  /// One turn: waits at most timeout_ms (-1: no bound) for the sockets
  /// and the wake-up, then does all that is ready. Returns what
  /// next_wait_ms() says after it.
  int turn(int timeout_ms);
  int next_wait_ms() const;
  void drain_queues();
  void add_call(const call_ptr& c);
  void read_completions();
  void fire_timers();
  void detach(call& c, bool unfinished = false);
  void compact_timers();
  void finish(const call_ptr& c, http_result result);
  http_result result_of(call& c, CURLcode code);
  void fail_at_once(const call_ptr& c, std::string error);
  /// This thread is running this client's loop now (its own thread, or
  /// a host's thread inside a turn).
  bool on_io_thread() const noexcept { return running_loop_ == this; }
  static thread_local const impl* running_loop_;
  void wake() noexcept;
  const std::string& origin_for(const std::string& url, std::string& problem);
  CURL* take_easy();
  void release_easy(CURL* e);

  static int socket_cb(CURL* easy, curl_socket_t s, int what, void* userp, void* socketp);
  static int timer_cb(CURLM* multi, long timeout_ms, void* userp);
  static std::size_t header_cb(char* buffer, std::size_t size, std::size_t n, void* userdata);
  static std::size_t write_cb(char* buffer, std::size_t size, std::size_t n, void* userdata);

  http_client_options options_;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  CURLM* multi_ = nullptr;
  std::atomic<bool> stop_{false};
  /// A wake-up is written and not yet taken by the loop: later wake()s
  /// skip the eventfd write (one syscall per burst of starts, not per
  /// start). The loop clears it before it drains the queues, so a start
  /// queued after the clear writes again and none is left unseen.
  std::atomic<bool> wake_pending_{false};
  std::thread thread_;
  std::vector<epoll_event> events_ = std::vector<epoll_event>(512);
  /// read_completions' batch: (call id, result), kept for its capacity.
  std::vector<std::pair<std::uint64_t, CURLcode>> done_;

  std::mutex queue_mutex_;
  std::vector<call_ptr> start_queue_;
  std::vector<std::uint64_t> cancel_queue_;

  /// Calls started and neither finished nor cancelled: what cancel() finds.
  mutable std::mutex registry_mutex_;
  std::unordered_map<std::uint64_t, call_ptr> registry_;

  std::atomic<std::uint64_t> next_id_{1};
  std::atomic<std::uint64_t> started_{0};
  std::atomic<std::uint64_t> completed_{0};
  std::atomic<std::uint64_t> cancelled_{0};
  std::atomic<std::uint64_t> connections_opened_{0};

  // io thread only
  std::unordered_map<std::uint64_t, call_ptr> active_;
  using timer_entry = std::pair<clock_type::time_point, std::uint64_t>;
  std::priority_queue<timer_entry, std::vector<timer_entry>, std::greater<>> timers_;
  clock_type::time_point curl_deadline_ = never;
  /// Easy handles of ended transfers, reset (curl_easy_reset, after
  /// curl_multi_remove_handle) and kept for the next calls: curl_easy_init
  /// and curl_easy_cleanup cost more than the rest of a loopback call's
  /// bookkeeping. At most max_idle_easy are kept.
  std::vector<CURL*> idle_easy_;
  static constexpr std::size_t max_idle_easy = 512;
  /// The validated origin (or the problem) of each URL seen: a URL parse
  /// per call costs as much as curl's own. Bounded: cleared when full.
  struct origin_entry {
    std::string origin;
    std::string problem;
  };
  std::unordered_map<std::string, origin_entry> origins_;
  static constexpr std::size_t max_origins = 1024;
  socket_table sockets_;
};

http_client::impl::impl(http_client_options options) : options_(options) {
  global_init_once();
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  multi_ = curl_multi_init();
  if (epoll_fd_ < 0 || wake_fd_ < 0 || !multi_) {
    if (epoll_fd_ >= 0)
      close(epoll_fd_);
    if (wake_fd_ >= 0)
      close(wake_fd_);
    if (multi_)
      curl_multi_cleanup(multi_);
    throw std::runtime_error("http_client: cannot create its event loop (epoll, eventfd or curl multi)");
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = wake_fd_;
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev);

  curl_multi_setopt(multi_, CURLMOPT_SOCKETFUNCTION, &impl::socket_cb);
  curl_multi_setopt(multi_, CURLMOPT_SOCKETDATA, this);
  curl_multi_setopt(multi_, CURLMOPT_TIMERFUNCTION, &impl::timer_cb);
  curl_multi_setopt(multi_, CURLMOPT_TIMERDATA, this);
  curl_multi_setopt(multi_, CURLMOPT_MAX_HOST_CONNECTIONS,
                    static_cast<long>(options_.max_connections_per_host));
  curl_multi_setopt(multi_, CURLMOPT_MAX_TOTAL_CONNECTIONS,
                    static_cast<long>(options_.max_total_connections));
  curl_multi_setopt(multi_, CURLMOPT_MAXCONNECTS, static_cast<long>(connection_cache_of(options_)));
  curl_multi_setopt(multi_, CURLMOPT_PIPELINING,
                    options_.http2 ? CURLPIPE_MULTIPLEX : CURLPIPE_NOTHING);

  if (options_.host) {
    options_.host->attach({epoll_fd_, [this] { return turn(0); }});
    return;
  }
  thread_ = std::thread([this] { run(); });
}

http_client::impl::~impl() {
  if (options_.host) {
    options_.host->detach();
  } else {
    stop_ = true;
    wake();
    if (thread_.joinable())
      thread_.join();
  }
  for (auto& [id, c] : active_) {
    curl_multi_remove_handle(multi_, c->easy);
    curl_easy_cleanup(c->easy);
    curl_slist_free_all(c->header_list);
  }
  active_.clear();
  for (CURL* e : idle_easy_)
    curl_easy_cleanup(e);
  idle_easy_.clear();
  curl_multi_cleanup(multi_);
  close(wake_fd_);
  close(epoll_fd_);
}

void http_client::impl::wake() noexcept {
  if (wake_pending_.exchange(true))
    return; // the loop has a wake-up to take, and drains the queues after
  std::uint64_t one = 1;
  // A full counter still wakes the loop: the write may fail harmlessly.
  [[maybe_unused]] auto n = write(wake_fd_, &one, sizeof one);
}

std::uint64_t http_client::impl::start(http_request_spec request, http_call_options options,
                                       http_call_events events) {
  auto c = std::make_shared<call>();
  c->id = next_id_.fetch_add(1);
  c->request = std::move(request);
  c->options = std::move(options);
  c->events = std::move(events);
  c->started_at = clock_type::now();
  {
    std::lock_guard lock(registry_mutex_);
    registry_.emplace(c->id, c);
  }
  started_.fetch_add(1);
  {
    std::lock_guard lock(queue_mutex_);
    start_queue_.push_back(c);
  }
  wake();
  return c->id;
}

void http_client::impl::cancel(std::uint64_t id) noexcept {
  call_ptr c;
  {
    std::lock_guard lock(registry_mutex_);
    auto it = registry_.find(id);
    if (it == registry_.end())
      return;
    c = it->second;
    registry_.erase(it);
  }
  bool counted = false;
  if (on_io_thread()) {
    // Inside some callback on the loop: no other callback runs now, and
    // this one's own mutex may be held by this very thread.
    if (!c->finished && !c->cancelled.exchange(true))
      counted = true;
  } else {
    std::lock_guard lock(c->callback_mutex);
    if (!c->finished && !c->cancelled.exchange(true))
      counted = true;
  }
  if (!counted)
    return;
  cancelled_.fetch_add(1);
  try {
    std::lock_guard lock(queue_mutex_);
    cancel_queue_.push_back(id);
  } catch (...) {
    // Out of memory: the transfer still stops at its next callback (the
    // write callback refuses bytes of a cancelled call).
  }
  wake();
}

http_client::stats http_client::impl::snapshot() const {
  stats s;
  s.started = started_.load();
  s.completed = completed_.load();
  s.cancelled = cancelled_.load();
  s.connections_opened = connections_opened_.load();
  std::lock_guard lock(registry_mutex_);
  s.active = registry_.size();
  return s;
}

// ---------------------------------------------------------------- the loop

thread_local const http_client::impl* http_client::impl::running_loop_ = nullptr;

void http_client::impl::run() {
  int wait_ms = next_wait_ms();
  while (!stop_.load())
    wait_ms = turn(wait_ms);
}

int http_client::impl::turn(int timeout_ms) {
  struct loop_mark {
    const impl* previous;
    explicit loop_mark(const impl* self) : previous(running_loop_) { running_loop_ = self; }
    ~loop_mark() { running_loop_ = previous; }
  } mark(this);
  int running = 0;
  int n = epoll_wait(epoll_fd_, events_.data(), static_cast<int>(events_.size()), timeout_ms);
  if (n < 0)
    n = 0; // EINTR; nothing else can fail on a valid epoll descriptor
  for (int i = 0; i < n; ++i) {
    int fd = events_[i].data.fd;
    if (fd == wake_fd_) {
      // One read resets the counter; then the flag, before the queues
      // are drained below (see wake_pending_).
      std::uint64_t count;
      [[maybe_unused]] auto r = read(wake_fd_, &count, sizeof count);
      wake_pending_.store(false);
      continue;
    }
    if (auto& e = sockets_.at(fd); !e.wanted) {
      // A kept connection's socket that curl does not watch now: out of
      // epoll until curl wants it again (see socket_table).
      epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
      e.in_epoll = false;
      continue;
    }
    int flags = 0;
    if (events_[i].events & EPOLLIN)
      flags |= CURL_CSELECT_IN;
    if (events_[i].events & EPOLLOUT)
      flags |= CURL_CSELECT_OUT;
    if (events_[i].events & (EPOLLERR | EPOLLHUP))
      flags |= CURL_CSELECT_ERR;
    curl_multi_socket_action(multi_, fd, flags, &running);
  }
  if (stop_.load())
    return -1;
  drain_queues();
  if (curl_deadline_ != never && clock_type::now() >= curl_deadline_) {
    curl_deadline_ = never;
    curl_multi_socket_action(multi_, CURL_SOCKET_TIMEOUT, 0, &running);
  }
  read_completions();
  fire_timers();
  return next_wait_ms();
}

int http_client::impl::next_wait_ms() const {
  auto deadline = curl_deadline_;
  if (!timers_.empty() && timers_.top().first < deadline)
    deadline = timers_.top().first;
  if (deadline == never)
    return -1;
  auto now = clock_type::now();
  if (deadline <= now)
    return 0;
  // Rounded up, so the loop never wakes a little early and spins.
  auto ms = std::chrono::ceil<std::chrono::milliseconds>(deadline - now).count();
  return static_cast<int>(std::min<long long>(ms, 60'000));
}

void http_client::impl::drain_queues() {
  std::vector<call_ptr> starts;
  std::vector<std::uint64_t> cancels;
  {
    std::lock_guard lock(queue_mutex_);
    starts.swap(start_queue_);
    cancels.swap(cancel_queue_);
  }
  for (auto& c : starts)
    if (!c->cancelled.load())
      add_call(c);
  for (auto id : cancels) {
    auto it = active_.find(id);
    if (it == active_.end())
      continue;
    auto c = it->second;
    detach(*c, true);
  }
}

void http_client::impl::fail_at_once(const call_ptr& c, std::string error) {
  http_result r;
  r.error = std::move(error);
  r.total_ms = ms_between(c->started_at, clock_type::now());
  finish(c, std::move(r));
}

const std::string& http_client::impl::origin_for(const std::string& url, std::string& problem) {
  auto it = origins_.find(url);
  if (it == origins_.end()) {
    if (origins_.size() >= max_origins)
      origins_.clear();
    origin_entry e;
    e.origin = origin_of(url, e.problem);
    it = origins_.emplace(url, std::move(e)).first;
  }
  problem = it->second.problem;
  return it->second.origin;
}

CURL* http_client::impl::take_easy() {
  if (idle_easy_.empty())
    return curl_easy_init();
  CURL* e = idle_easy_.back();
  idle_easy_.pop_back();
  return e;
}

void http_client::impl::release_easy(CURL* e) {
  // Only once it is out of the multi handle (the caller removed it): then
  // no callback of its last call can run, and the reset drops every
  // option that pointed into that call (its body, header list, private
  // and callback data), so nothing stale reaches the next one.
  if (idle_easy_.size() >= max_idle_easy) {
    curl_easy_cleanup(e);
    return;
  }
  curl_easy_reset(e);
  idle_easy_.push_back(e);
}

void http_client::impl::add_call(const call_ptr& c) {
  const auto& req = c->request;
  std::string problem;
  c->origin = origin_for(req.url, problem);
  if (c->origin.empty())
    return fail_at_once(c, "http_client: " + problem);
  if (!is_token(req.method))
    return fail_at_once(c, c->origin + ": invalid HTTP method");
  std::string bad_header;
  curl_slist* list = header_list_of(req.headers, bad_header);
  if (!list)
    return fail_at_once(c, c->origin + ": " + bad_header);
  c->header_list = list;

  CURL* e = take_easy();
  if (!e) {
    curl_slist_free_all(list);
    c->header_list = nullptr;
    return fail_at_once(c, c->origin + ": out of memory");
  }
  c->easy = e;
  curl_easy_setopt(e, CURLOPT_URL, req.url.c_str());
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_PRIVATE, c.get());
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, list);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &impl::header_cb);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, c.get());
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &impl::write_cb);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, c.get());
  curl_easy_setopt(e, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
  curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, &open_socket);
  curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, c.get());
  // The connection outlives the call: its close goes to the client's table.
  curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, &close_socket);
  curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, &sockets_);
  c->sockets = &sockets_;
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  bool https = c->origin.compare(0, 8, "https://") == 0;
  curl_easy_setopt(e, CURLOPT_HTTP_VERSION,
                   options_.http2 ? CURL_HTTP_VERSION_2TLS : CURL_HTTP_VERSION_1_1);
  if (options_.http2 && https)
    curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L); // share an h2 connection rather than open more
  const auto& tls = c->options.tls;
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, tls.verify ? 1L : 0L);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, tls.verify ? 2L : 0L);
  if (!tls.ca_file.empty())
    curl_easy_setopt(e, CURLOPT_CAINFO, tls.ca_file.c_str());
  // curl reads only lower-case http_proxy for http:// URLs (the httpoxy
  // guard for CGI programs); we are not one, and httpx (LiteLLM) honours
  // HTTP_PROXY, so it is honoured too. NO_PROXY still applies: curl checks
  // it for a proxy set here as well.
  if (!https && !std::getenv("http_proxy"))
    if (const char* p = std::getenv("HTTP_PROXY"); p && *p)
      curl_easy_setopt(e, CURLOPT_PROXY, p);

  set_method(e, req);

  const auto& o = c->options;
  if (o.total_timeout.count() > 0)
    c->total_deadline = c->started_at + o.total_timeout;
  if (o.idle_timeout.count() > 0)
    c->idle_deadline = c->started_at + o.idle_timeout;
  auto first = std::min(c->total_deadline, c->idle_deadline);
  if (first != never)
    timers_.emplace(first, c->id);

  if (curl_multi_add_handle(multi_, e) != CURLM_OK) {
    release_easy(e);
    curl_slist_free_all(c->header_list);
    c->easy = nullptr;
    c->header_list = nullptr;
    return fail_at_once(c, c->origin + ": could not add the transfer");
  }
  active_.emplace(c->id, c);
}

void http_client::impl::detach(call& c, bool unfinished) {
  if (!c.easy)
    return;
  // A transfer stopped in mid-answer: its connection is closed unless
  // another transfer still shares it (curl checks that). HTTP/1.1 closes
  // anyway; for HTTP/2 this is what makes the bytes stop, because curl
  // before 8.15 queues the RST_STREAM of a removed stream without sending
  // it until the connection's next write (curl issue #17611).
  if (unfinished)
    curl_easy_setopt(c.easy, CURLOPT_FORBID_REUSE, 1L);
  long connects = 0;
  curl_easy_getinfo(c.easy, CURLINFO_NUM_CONNECTS, &connects);
  c.connects = connects;
  connections_opened_.fetch_add(static_cast<std::uint64_t>(connects));
  curl_multi_remove_handle(multi_, c.easy);
  release_easy(c.easy);
  c.easy = nullptr;
  curl_slist_free_all(c.header_list);
  c.header_list = nullptr;
  active_.erase(c.id);
  compact_timers();
}

void http_client::impl::compact_timers() {
  // A finished call leaves its entry behind until its deadline (up to the
  // whole timeout, often minutes); rebuild once most entries are stale, so
  // the heap stays O(active calls) at O(1) amortised cost per call.
  if (timers_.size() < 1024 || timers_.size() < 4 * active_.size())
    return;
  std::vector<timer_entry> live;
  live.reserve(active_.size());
  for (const auto& [id, c] : active_) {
    auto due = std::min(c->total_deadline, c->idle_deadline);
    if (due != never)
      live.emplace_back(due, id);
  }
  timers_ = decltype(timers_)(std::greater<>(), std::move(live));
}

http_result http_client::impl::result_of(call& c, CURLcode code) {
  http_result r;
  long status = 0;
  curl_easy_getinfo(c.easy, CURLINFO_RESPONSE_CODE, &status);
  r.status = c.head_status ? c.head_status : status;
  long version = 0;
  curl_easy_getinfo(c.easy, CURLINFO_HTTP_VERSION, &version);
  switch (version) {
    case CURL_HTTP_VERSION_1_0: r.http_version = 10; break;
    case CURL_HTTP_VERSION_1_1: r.http_version = 11; break;
    case CURL_HTTP_VERSION_2_0: r.http_version = 20; break;
    case CURL_HTTP_VERSION_3: r.http_version = 30; break;
    default: r.http_version = 0;
  }
  r.transport_ok = code == CURLE_OK;
  if (!r.transport_ok) {
    long os_errno = 0;
    long verify = 0;
    curl_easy_getinfo(c.easy, CURLINFO_OS_ERRNO, &os_errno);
    curl_easy_getinfo(c.easy, CURLINFO_SSL_VERIFYRESULT, &verify);
    r.error = c.origin + ": " + cause_of(code, os_errno, verify) + proxy_note(c);
  }
  return r;
}

void http_client::impl::finish(const call_ptr& c, http_result result) {
  auto now = clock_type::now();
  result.total_ms = ms_between(c->started_at, now);
  if (c->got_body)
    result.first_byte_ms = ms_between(c->started_at, c->first_body_at);
  result.reused_connection = result.transport_ok && c->connects == 0;
  {
    std::lock_guard lock(c->callback_mutex);
    if (!c->cancelled.load()) {
      c->finished = true;
      completed_.fetch_add(1);
      if (c->events.on_done)
        c->events.on_done(std::move(result));
    }
  }
  std::lock_guard lock(registry_mutex_);
  registry_.erase(c->id);
}

void http_client::impl::read_completions() {
  // Every message first, then the removals: curl_multi_remove_handle
  // (curl 7.88) walks the messages still queued to drop the removed
  // handle's, so removing while reading made a batch of k completions cost
  // O(k^2) (3 % of the transport benchmark's CPU at 512 in flight).
  done_.clear();
  int left = 0;
  while (CURLMsg* msg = curl_multi_info_read(multi_, &left)) {
    if (msg->msg != CURLMSG_DONE)
      continue;
    call* raw = nullptr;
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &raw);
    if (raw)
      done_.emplace_back(raw->id, msg->data.result);
  }
  for (auto [id, code] : done_) {
    auto it = active_.find(id);
    if (it == active_.end())
      continue;
    call_ptr c = it->second;
    http_result r = result_of(*c, code);
    detach(*c, c->cancelled.load());
    if (c->cancelled.load())
      continue; // aborted by its own write callback after a cancel
    finish(c, std::move(r));
  }
}

void http_client::impl::fire_timers() {
  auto now = clock_type::now();
  while (!timers_.empty() && timers_.top().first <= now) {
    auto [when, id] = timers_.top();
    timers_.pop();
    auto it = active_.find(id);
    if (it == active_.end())
      continue;
    call_ptr c = it->second;
    auto due = std::min(c->total_deadline, c->idle_deadline);
    if (due > now) {
      // The idle deadline moved on with body bytes: wait for the new one.
      timers_.emplace(due, id);
      continue;
    }
    bool total = c->total_deadline <= now;
    http_result r = result_of(*c, CURLE_OK);
    r.transport_ok = false;
    r.timed_out = true;
    const auto& o = c->options;
    r.error = c->origin + ": " +
              (total ? "timed out after " + std::to_string(o.total_timeout.count()) + " ms (total timeout)"
                     : std::string(c->got_body ? "no body bytes for " : "no first body byte within ") +
                           std::to_string(o.idle_timeout.count()) + " ms (idle timeout)");
    detach(*c, true);
    finish(c, std::move(r));
  }
}

// ---------------------------------------------------------------- curl hooks

int http_client::impl::socket_cb(CURL*, curl_socket_t s, int what, void* userp, void*) {
  auto* self = static_cast<impl*>(userp);
  auto& e = self->sockets_.at(s);
  if (what == CURL_POLL_REMOVE) {
    e.wanted = false;
    if (e.ours)
      return 0; // stays registered while curl keeps its connection
    if (e.in_epoll)
      epoll_ctl(self->epoll_fd_, EPOLL_CTL_DEL, s, nullptr);
    e.in_epoll = false;
    return 0;
  }
  e.wanted = true;
  std::uint32_t events = 0;
  if (what & CURL_POLL_IN)
    events |= EPOLLIN;
  if (what & CURL_POLL_OUT)
    events |= EPOLLOUT;
  if (e.in_epoll && e.events == events)
    return 0;
  epoll_event ev{};
  ev.events = events;
  ev.data.fd = s;
  if (e.in_epoll) {
    if (epoll_ctl(self->epoll_fd_, EPOLL_CTL_MOD, s, &ev) != 0 && errno == ENOENT)
      epoll_ctl(self->epoll_fd_, EPOLL_CTL_ADD, s, &ev);
  } else if (epoll_ctl(self->epoll_fd_, EPOLL_CTL_ADD, s, &ev) != 0 && errno == EEXIST) {
    epoll_ctl(self->epoll_fd_, EPOLL_CTL_MOD, s, &ev);
  }
  e.in_epoll = true;
  e.events = events;
  return 0;
}

int http_client::impl::timer_cb(CURLM*, long timeout_ms, void* userp) {
  auto* self = static_cast<impl*>(userp);
  self->curl_deadline_ = timeout_ms < 0 ? never
                                        : clock_type::now() + std::chrono::milliseconds(timeout_ms);
  return 0;
}

std::size_t http_client::impl::header_cb(char* buffer, std::size_t size, std::size_t n,
                                         void* userdata) {
  auto& c = *static_cast<call*>(userdata);
  std::size_t len = size * n;
  if (c.cancelled.load())
    return 0;
  if (c.head_done)
    return len; // trailers
  std::string_view line(buffer, len);
  if (line.rfind("HTTP/", 0) == 0) {
    // A new head: the first, or the real one after a 1xx.
    c.head.clear();
    c.head.reserve(16); // no regrowth for a usual head
    c.head_status = 0;
    auto sp = line.find(' ');
    if (sp != std::string_view::npos) {
      long status = 0;
      for (std::size_t i = sp + 1; i < line.size() && line[i] >= '0' && line[i] <= '9'; ++i)
        status = status * 10 + (line[i] - '0');
      c.head_status = status;
    }
    return len;
  }
  std::string_view t = trim(line);
  if (t.empty()) {
    if (c.head_status >= 100 && c.head_status < 200)
      return len; // an interim head; the final one follows
    head_complete(c);
    return len;
  }
  if ((line.front() == ' ' || line.front() == '\t') && !c.head.empty()) {
    c.head.back().value += " ";
    c.head.back().value += t;
    return len;
  }
  auto colon = t.find(':');
  if (colon == std::string_view::npos)
    return len;
  c.head.push_back({std::string(trim(t.substr(0, colon))), std::string(trim(t.substr(colon + 1))), false});
  return len;
}

std::size_t http_client::impl::write_cb(char* buffer, std::size_t size, std::size_t n,
                                        void* userdata) {
  auto& c = *static_cast<call*>(userdata);
  std::size_t len = size * n;
  if (c.cancelled.load())
    return 0;
  auto now = clock_type::now();
  if (!c.got_body) {
    c.got_body = true;
    c.first_body_at = now;
  }
  if (c.options.idle_timeout.count() > 0)
    c.idle_deadline = now + c.options.idle_timeout;
  if (!c.head_done)
    head_complete(c); // a head-less answer still gets on_head first
  if (!c.events.on_body)
    return len;
  return deliver(c, [&] { c.events.on_body(std::string_view(buffer, len)); }) ? len : 0;
}

// ---------------------------------------------------------------- the facade

http_client::http_client(http_client_options options)
    : impl_(std::make_unique<impl>(options)) {}

http_client::~http_client() = default;

std::uint64_t http_client::start(http_request_spec request, http_call_options options,
                                 http_call_events events) {
  return impl_->start(std::move(request), std::move(options), std::move(events));
}

void http_client::cancel(std::uint64_t id) noexcept {
  impl_->cancel(id);
}

http_client::stats http_client::snapshot() const {
  return impl_->snapshot();
}

} // namespace switchyard
