#include "switchyard/redis_shared_state.hpp"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <spdlog/spdlog.h>

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <unordered_map>

namespace switchyard {

namespace {

using steady = std::chrono::steady_clock;
using std::chrono::milliseconds;

// A counter key outlives its minute by one more, so the fleet totals of the
// current minute stay readable while the next one starts.
constexpr int counts_ttl_s = 120;
// Long enough for any reconnect; refreshed by every batch.
constexpr int batch_seq_ttl_ms = 3'600'000;
// Counts older than this (in minutes) are not sent: nobody reads them.
constexpr std::int64_t stale_minutes = 2;

// KEYS[1] the cooldown key. ARGV: deadline, value, ttl ms, channel, message.
// A deadline never replaces a later one (EVAL, so that the compare and the
// write are one atomic step; a MULTI could not compare).
constexpr const char* cooldown_script = R"lua(
local cur = redis.call('GET', KEYS[1])
if cur then
  local d = tonumber(string.match(cur, '^%-?%d+'))
  if d and d >= tonumber(ARGV[1]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
redis.call('PUBLISH', ARGV[4], ARGV[5])
return 1
)lua";

// KEYS[1] this replica's batch sequence key, KEYS[2..] counter hashes.
// ARGV: seq, seq ttl ms, counts ttl s, then per hash: n, n field/value
// pairs. Applies the whole batch once: a resend of a batch already applied
// (its reply was lost) returns 0 and changes nothing.
constexpr const char* counts_script = R"lua(
local seq = tonumber(ARGV[1])
local last = tonumber(redis.call('GET', KEYS[1]) or '-1')
if seq <= last then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
local a = 4
for i = 2, #KEYS do
  local n = tonumber(ARGV[a]); a = a + 1
  for j = 1, n do
    redis.call('HINCRBY', KEYS[i], ARGV[a], ARGV[a + 1]); a = a + 2
  end
  redis.call('EXPIRE', KEYS[i], ARGV[3])
end
return 1
)lua";

struct counts {
  std::uint64_t rpm = 0, tpm = 0, calls = 0, fails = 0;
  void add(const counts& o) {
    rpm += o.rpm;
    tpm += o.tpm;
    calls += o.calls;
    fails += o.fails;
  }
};

// "<minute>:<id>": the map key of a counter entry and the tail of its
// Redis key.
void minute_key(std::string& out, std::int64_t minute, std::string_view id) {
  out.clear();
  out += std::to_string(minute);
  out += ':';
  out += id;
}

std::int64_t minute_of_key(const std::string& key) {
  std::int64_t m = 0;
  std::from_chars(key.data(), key.data() + key.find(':'), m);
  return m;
}

std::optional<std::int64_t> to_int(std::string_view s) {
  std::int64_t v = 0;
  auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  if (r.ec != std::errc() || r.ptr != s.data() + s.size())
    return std::nullopt;
  return v;
}

std::string_view next_token(std::string_view& s) {
  auto sp = s.find(' ');
  auto tok = s.substr(0, sp);
  s = sp == std::string_view::npos ? std::string_view() : s.substr(sp + 1);
  return tok;
}

// "<deadline> <status> <kind>" (stored) with "<origin> <id>" after it
// (published). Returns nullopt for anything else.
struct parsed_cooldown {
  shared_cooldown c;
  std::string origin;
};
std::optional<parsed_cooldown> parse_cooldown(std::string_view s, bool with_tail) {
  parsed_cooldown p;
  auto deadline = to_int(next_token(s));
  auto status = to_int(next_token(s));
  auto kind = parse_error_kind(next_token(s));
  if (!deadline || !status || !kind)
    return std::nullopt;
  p.c.deadline_ms = *deadline;
  p.c.status = static_cast<int>(*status);
  p.c.kind = *kind;
  if (with_tail) {
    p.origin = std::string(next_token(s));
    if (p.origin.empty() || s.empty())
      return std::nullopt;
    p.c.deployment_id = std::string(s);
  }
  return p;
}

std::string cooldown_value(const shared_cooldown& c) {
  return std::to_string(c.deadline_ms) + ' ' + std::to_string(c.status) + ' '
         + std::string(name_of(c.kind));
}

std::string random_instance_id() {
  std::random_device rd;
  std::uint64_t v = (static_cast<std::uint64_t>(rd()) << 32) ^ rd()
                    ^ static_cast<std::uint64_t>(::getpid());
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

// Redis's own error text, with the password cut out should it ever echo it.
std::string scrub(std::string s, const secret& password) {
  const auto& pw = password.reveal();
  if (pw.empty())
    return s;
  for (auto at = s.find(pw); at != std::string::npos; at = s.find(pw, at))
    s.replace(at, pw.size(), secret::redacted);
  return s;
}

std::string lowercase_first(std::string s) {
  if (!s.empty() && s[0] >= 'A' && s[0] <= 'Z' && (s.size() < 2 || s[1] < 'A' || s[1] > 'Z'))
    s[0] = static_cast<char>(s[0] - 'A' + 'a');
  return s;
}

// An argv for redisAsyncCommandArgv that owns its strings.
struct argv_builder {
  std::vector<std::string> args;
  argv_builder& operator<<(std::string s) {
    args.push_back(std::move(s));
    return *this;
  }
  argv_builder& operator<<(std::int64_t v) { return *this << std::to_string(v); }

  // Queues the command on `ac` (no I/O yet: the loop writes it).
  int queue(redisAsyncContext* ac, redisCallbackFn* fn, void* privdata) const {
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    argv.reserve(args.size());
    lens.reserve(args.size());
    for (const auto& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    return redisAsyncCommandArgv(ac, fn, privdata, static_cast<int>(argv.size()),
                                 argv.data(), lens.data());
  }
};

using reply_fn = std::function<void(redisReply*)>;

} // namespace

// --- the I/O side: one thread, a poll() loop, two hiredis connections -----

struct redis_shared_state::impl {
  impl(redis_shared_state_options options, std::shared_ptr<shared_state_listener> l);
  ~impl();

  // One hiredis connection and the five hooks' view of it.
  struct conn {
    impl* owner = nullptr;
    const char* name = "";
    redisAsyncContext* ac = nullptr;
    bool reading = false, writing = false;
    bool ready = false;                ///< authenticated (and subscribed)
    steady::time_point started{};      ///< of the current attempt
    steady::time_point retry_at{};     ///< when down: next attempt
    milliseconds backoff{0};
    int outstanding = 0;               ///< replies awaited (command conn)
    steady::time_point last_progress{};
    std::string failure;               ///< why the last attempt ended
    bool reset_requested = false;
    bool ended = false;                ///< an attempt ended: schedule the next
  };

  // Caller side -------------------------------------------------------
  void wake();
  void add_counts(std::string_view id, std::int64_t minute, const counts& c);

  // I/O side ------------------------------------------------------------
  void run();
  int poll_timeout(steady::time_point now) const;
  void handle_events(conn& c, short revents);
  void on_timers(steady::time_point now);
  void connect(conn& c, steady::time_point now);
  void fail(conn& c, std::string reason);
  void teardown(conn& c, steady::time_point now);
  void on_ready_cmd();
  void on_ready_sub();
  void update_status();
  void send(conn& c, const argv_builder& argv, reply_fn fn);
  void flush_counts(steady::time_point now);
  void send_batch();
  void flush_cooldowns();
  void reread_cooldowns();
  void read_totals();
  void heard_cooldown(const shared_cooldown& c);
  void prune(std::int64_t minute);
  wall_ms wall_now() const { return opt_.wall_clock(); }
  // "<minute>:<id>" -> "P counts:<id>:<minute>".
  std::string counts_key(const std::string& mk) const {
    const auto colon = mk.find(':');
    return key("counts:", mk.substr(colon + 1) + ':' + mk.substr(0, colon));
  }
  std::string key(std::string_view kind, std::string_view rest) const {
    std::string k = opt_.server.key_prefix;
    k += kind;
    k += rest;
    return k;
  }

  static void add_read(void* p) { static_cast<conn*>(p)->reading = true; }
  static void del_read(void* p) { static_cast<conn*>(p)->reading = false; }
  static void add_write(void* p) { static_cast<conn*>(p)->writing = true; }
  static void del_write(void* p) { static_cast<conn*>(p)->writing = false; }
  static void cleanup(void* p) {
    auto* c = static_cast<conn*>(p);
    c->ac = nullptr;
    c->reading = c->writing = false;
    c->ended = true;
  }
  static void on_connect(const redisAsyncContext* ac, int status);
  static void on_disconnect(const redisAsyncContext* ac, int status);
  static void on_reply(redisAsyncContext* ac, void* reply, void* privdata);
  static void on_message(redisAsyncContext* ac, void* reply, void* privdata);

  redis_shared_state_options opt_;
  std::shared_ptr<shared_state_listener> listener_;
  std::string channel_;

  // Shared between callers and the I/O thread, under mu_.
  mutable std::mutex mu_;
  std::unordered_map<std::string, counts> pending_;
  std::unordered_map<std::string, shared_cooldown> pending_cooldowns_;
  bool woken_ = false;
  shared_state_status status_;
  shared_state_stats stats_;
  /// The latest cooldown per deployment, own or heard (for cooldowns()).
  std::unordered_map<std::string, shared_cooldown> current_;
  void remember(const shared_cooldown& c) { // with mu_ held
    auto& cur = current_[c.deployment_id];
    if (cur.deployment_id.empty() || cur.deadline_ms < c.deadline_ms)
      cur = c;
  }

  int wake_fd_ = -1;
  std::atomic<bool> stop_{false};

  // The I/O thread's own.
  conn cmd_, sub_;
  struct batch {
    std::uint64_t seq = 0;
    std::vector<std::pair<std::string, counts>> items; ///< "<minute>:<id>"
    bool in_flight = false;
    bool lost_reply = false; ///< its connection died before the reply
  };
  std::optional<batch> batch_;
  std::uint64_t seq_ = 0;
  bool flush_due_ = false;
  steady::time_point flush_at_{};
  steady::time_point batch_sent_at_{}; ///< when the last new batch left
  steady::time_point totals_at_{}, reread_at_{};
  bool totals_reading_ = false, reread_reading_ = false;
  /// What this replica's batches added per "<minute>:<id>" (sent or acked).
  std::unordered_map<std::string, counts> own_;
  /// The latest deadline known per deployment (own or heard).
  std::unordered_map<std::string, wall_ms> known_;
  struct delivered {
    std::int64_t minute = -1;
    counts fleet, own;
  };
  std::unordered_map<std::string, delivered> delivered_usage_, delivered_outcomes_;
  std::string last_logged_;
  bool tearing_down_ = false;

  std::thread thread_;
};

redis_shared_state::impl::impl(redis_shared_state_options options,
                               std::shared_ptr<shared_state_listener> l)
  : opt_(std::move(options)), listener_(std::move(l)) {
  if (!opt_.wall_clock)
    opt_.wall_clock = [] {
      return std::chrono::duration_cast<milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
    };
  if (opt_.instance_id.empty())
    opt_.instance_id = random_instance_id();
  channel_ = opt_.server.key_prefix + "cooldowns";
  cmd_.owner = sub_.owner = this;
  cmd_.name = "command";
  sub_.name = "subscribe";
  cmd_.backoff = sub_.backoff = opt_.backoff_min;
  status_.value = shared_state_status::state::down;
  status_.reason = "not connected yet";
  last_logged_ = "down: not connected yet";
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  // spdlog creates its registry on first use; do it here, before the I/O
  // thread logs, so the creation happens-before every use (libspdlog is not
  // instrumented, and ThreadSanitizer would see a race in it).
  spdlog::default_logger_raw();
  thread_ = std::thread([this] { run(); });
}

redis_shared_state::impl::~impl() {
  stop_ = true;
  wake();
  if (thread_.joinable())
    thread_.join();
  if (wake_fd_ >= 0)
    ::close(wake_fd_);
}

void redis_shared_state::impl::wake() {
  if (wake_fd_ < 0)
    return;
  std::uint64_t one = 1;
  // Non-blocking: a full counter already means "wake up".
  [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof one);
}

void redis_shared_state::impl::run() {
  const auto start = steady::now();
  cmd_.retry_at = sub_.retry_at = start;
  totals_at_ = reread_at_ = start;
  while (!stop_) {
    // Status first: it schedules the next attempt of a connection that
    // just ended, so that a refused connect waits out its backoff.
    update_status();
    auto now = steady::now();
    if (!cmd_.ac && now >= cmd_.retry_at)
      connect(cmd_, now);
    if (!sub_.ac && now >= sub_.retry_at)
      connect(sub_, now);

    pollfd fds[3];
    conn* owners[3] = {nullptr, nullptr, nullptr};
    nfds_t n = 0;
    fds[n++] = pollfd{wake_fd_, POLLIN, 0};
    for (conn* c : {&cmd_, &sub_})
      if (c->ac && c->ac->c.fd >= 0) {
        short ev = (c->reading ? POLLIN : 0) | (c->writing ? POLLOUT : 0);
        owners[n] = c;
        fds[n++] = pollfd{c->ac->c.fd, ev, 0};
      }
    int rc = ::poll(fds, n, poll_timeout(now));
    if (rc < 0 && errno != EINTR)
      break;
    if (rc > 0 && (fds[0].revents & POLLIN)) {
      std::uint64_t v;
      [[maybe_unused]] auto r = ::read(wake_fd_, &v, sizeof v);
    }
    for (nfds_t k = 1; k < n; ++k)
      if (rc > 0 && fds[k].revents)
        handle_events(*owners[k], fds[k].revents);
    now = steady::now();
    for (conn* c : {&cmd_, &sub_})
      if (c->reset_requested)
        teardown(*c, now);
    on_timers(now);
    for (conn* c : {&cmd_, &sub_})
      if (c->reset_requested)
        teardown(*c, now);
  }
  tearing_down_ = true;
  for (conn* c : {&cmd_, &sub_})
    if (c->ac)
      redisAsyncFree(c->ac);
}

int redis_shared_state::impl::poll_timeout(steady::time_point now) const {
  auto next = now + milliseconds(1000);
  const auto earlier = [&next](steady::time_point t) { next = std::min(next, t); };
  for (const conn* c : {&cmd_, &sub_}) {
    if (!c->ac)
      earlier(c->retry_at);
    else if (!c->ready)
      earlier(c->started + opt_.connect_timeout);
    if (c->outstanding > 0)
      earlier(c->last_progress + opt_.reply_timeout);
  }
  if (cmd_.ready) {
    earlier(totals_at_);
    earlier(reread_at_);
    if (flush_due_ && !batch_) // with a batch in flight, its reply wakes us
      earlier(flush_at_);
  }
  auto ms = std::chrono::ceil<milliseconds>(next - now).count();
  return static_cast<int>(std::clamp<std::int64_t>(ms, 0, 1000));
}

void redis_shared_state::impl::handle_events(conn& c, short revents) {
  if (!c.ac)
    return;
  if (!(c.ac->c.flags & REDIS_CONNECTED)) {
    redisAsyncHandleWrite(c.ac); // completes (or fails) the connect
    return;
  }
  if (revents & (POLLIN | POLLERR | POLLHUP))
    redisAsyncHandleRead(c.ac);
  if (c.ac && (revents & POLLOUT))
    redisAsyncHandleWrite(c.ac);
}

void redis_shared_state::impl::connect(conn& c, steady::time_point now) {
  c.ready = false;
  c.outstanding = 0;
  c.reset_requested = false;
  c.started = c.last_progress = now;
  c.failure.clear();
  redisAsyncContext* ac = redisAsyncConnect(opt_.server.host.c_str(), opt_.server.port);
  // A failure here leaves ac unset: update_status schedules the retry.
  if (!ac) {
    c.failure = "out of memory";
    c.ended = true;
    return;
  }
  if (ac->err) {
    c.failure = lowercase_first(ac->errstr);
    redisAsyncFree(ac);
    c.ended = true;
    return;
  }
  c.ac = ac;
  ac->data = &c;
  ac->ev.data = &c;
  ac->ev.addRead = add_read;
  ac->ev.delRead = del_read;
  ac->ev.addWrite = add_write;
  ac->ev.delWrite = del_write;
  ac->ev.cleanup = cleanup;
  redisAsyncSetConnectCallback(ac, on_connect);
  redisAsyncSetDisconnectCallback(ac, on_disconnect);

  // The first command also starts the connect (hiredis waits for a write).
  if (!opt_.server.password.empty()) {
    argv_builder auth;
    auth << "AUTH";
    if (!opt_.server.username.empty())
      auth << opt_.server.username;
    auth << opt_.server.password.reveal();
    send(c, auth, [this, &c](redisReply* r) {
      if (r && r->type == REDIS_REPLY_ERROR)
        fail(c, "authentication failed: " + scrub(r->str, opt_.server.password));
    });
  }
  if (&c == &cmd_) {
    if (opt_.server.db != 0)
      send(c, argv_builder() << "SELECT" << opt_.server.db, [this, &c](redisReply* r) {
        if (r && r->type == REDIS_REPLY_ERROR)
          fail(c, "SELECT failed: " + scrub(r->str, opt_.server.password));
      });
    send(c, argv_builder() << "PING", [this, &c](redisReply* r) {
      if (!r)
        return;
      if (r->type == REDIS_REPLY_ERROR)
        fail(c, lowercase_first(scrub(r->str, opt_.server.password)));
      else if (!c.reset_requested)
        on_ready_cmd();
    });
  } else {
    // The subscription's callback runs once per message: no privdata to free.
    (argv_builder() << "SUBSCRIBE" << channel_).queue(ac, on_message, this);
  }
}

void redis_shared_state::impl::send(conn& c, const argv_builder& a, reply_fn fn) {
  if (!c.ac || tearing_down_)
    return;
  auto* cb = new reply_fn(std::move(fn));
  if (a.queue(c.ac, on_reply, cb) != REDIS_OK) {
    (*cb)(nullptr);
    delete cb;
    return;
  }
  if (c.outstanding++ == 0)
    c.last_progress = steady::now();
}

void redis_shared_state::impl::on_reply(redisAsyncContext* ac, void* reply, void* privdata) {
  auto* cb = static_cast<reply_fn*>(privdata);
  auto* c = static_cast<conn*>(ac->data);
  if (c) {
    --c->outstanding;
    c->last_progress = steady::now();
  }
  (*cb)(static_cast<redisReply*>(reply));
  delete cb;
}

void redis_shared_state::impl::on_connect(const redisAsyncContext* ac, int status) {
  if (status == REDIS_OK)
    return;
  auto* c = static_cast<conn*>(ac->data);
  // hiredis frees the context right after this; cleanup() forgets it.
  if (c->failure.empty())
    c->failure = lowercase_first(ac->errstr ? ac->errstr : "cannot connect");
}

void redis_shared_state::impl::on_disconnect(const redisAsyncContext* ac, int status) {
  auto* c = static_cast<conn*>(ac->data);
  if (c->failure.empty())
    c->failure = "connection lost"
                 + (ac->errstr && *ac->errstr ? ": " + lowercase_first(ac->errstr)
                                              : std::string());
}

void redis_shared_state::impl::fail(conn& c, std::string reason) {
  if (c.failure.empty())
    c.failure = std::move(reason);
  c.reset_requested = true;
}

void redis_shared_state::impl::teardown(conn& c, steady::time_point now) {
  c.reset_requested = false;
  if (c.ac) {
    tearing_down_ = true;
    redisAsyncFree(c.ac); // pending callbacks see a null reply
    tearing_down_ = false;
  }
  c.ac = nullptr;
  if (c.failure.empty())
    c.failure = "connection lost";
}

void redis_shared_state::impl::on_ready_cmd() {
  cmd_.ready = true;
  cmd_.backoff = opt_.backoff_min;
  // What a previous connection left unconfirmed goes first, under its old
  // sequence number: Redis applies it only if it never did.
  if (batch_) {
    if (batch_->lost_reply) {
      std::lock_guard lock(mu_);
      ++stats_.batches_resent;
    }
    send_batch();
  }
  flush_cooldowns();
  reread_cooldowns();
  totals_at_ = steady::now();
}

void redis_shared_state::impl::on_ready_sub() {
  sub_.ready = true;
  sub_.backoff = opt_.backoff_min;
  // Messages published while unsubscribed are found by a re-read.
  if (cmd_.ready)
    reread_cooldowns();
}

void redis_shared_state::impl::update_status() {
  // A connection that is gone with a failure, or whose attempt ran out of
  // time, says why it is down.
  const auto now = steady::now();
  for (conn* c : {&cmd_, &sub_}) {
    if (c->ac && !c->ready && now - c->started >= opt_.connect_timeout) {
      fail(*c, "no answer within " + std::to_string(opt_.connect_timeout.count())
                 + " ms of connecting");
      teardown(*c, now);
    } else if (c->ac && c->outstanding > 0 && now - c->last_progress >= opt_.reply_timeout) {
      fail(*c, "no reply within " + std::to_string(opt_.reply_timeout.count()) + " ms");
      teardown(*c, now);
    }
    if (!c->ac && c->ended) {
      // Just torn down (or failed to start): schedule the next attempt.
      c->ended = false;
      c->ready = false;
      c->outstanding = 0;
      c->retry_at = now + c->backoff;
      c->backoff = std::min(c->backoff * 2, opt_.backoff_max);
    }
  }
  shared_state_status s;
  if (cmd_.ready && sub_.ready) {
    s.value = shared_state_status::state::connected;
  } else {
    s.value = shared_state_status::state::down;
    const conn& bad = !cmd_.ready && !cmd_.failure.empty() ? cmd_
                      : !sub_.ready && !sub_.failure.empty() ? sub_
                                                            : cmd_;
    s.reason = bad.failure.empty() ? "not connected yet"
                                   : scrub(bad.failure, opt_.server.password);
  }
  std::string line = std::string(name_of(s.value)) + (s.reason.empty() ? "" : ": " + s.reason);
  if (line == last_logged_)
    return;
  const bool connected = s.value == shared_state_status::state::connected;
  // Reconnect attempts keep their failure until the next one ends: only a
  // new state or a new reason is news.
  if (!connected && s.reason == "not connected yet")
    return;
  last_logged_ = line;
  if (connected)
    spdlog::info("shared state (redis): connected");
  else
    spdlog::warn("shared state (redis): down, using local state only: {}", s.reason);
  {
    std::lock_guard lock(mu_);
    status_ = s;
    if (connected)
      ++stats_.connects;
  }
  if (listener_)
    listener_->on_status(s);
}

void redis_shared_state::impl::on_timers(steady::time_point now) {
  {
    // woken_ stays set until the counts are taken, so that callers wake
    // the loop once per batch, not once per call (nor in a storm while
    // Redis is down).
    std::lock_guard lock(mu_);
    if (woken_ && !flush_due_) {
      flush_due_ = true;
      flush_at_ = now + opt_.flush_interval;
    }
  }
  if (now >= reread_at_) {
    reread_at_ = now + opt_.cooldown_reread_interval;
    prune(wall_minute(wall_now()));
    if (cmd_.ready)
      reread_cooldowns();
  }
  if (!cmd_.ready)
    return;
  flush_cooldowns();
  if (flush_due_ && now >= flush_at_)
    flush_counts(now);
  if (now >= totals_at_) {
    totals_at_ = now + opt_.totals_interval;
    read_totals();
  }
}

void redis_shared_state::impl::flush_counts(steady::time_point now) {
  if (batch_) // one batch at a time; the rest waits for its reply
    return;
  flush_due_ = false;
  std::unordered_map<std::string, counts> taken;
  {
    std::lock_guard lock(mu_);
    taken.swap(pending_);
    woken_ = false;
  }
  if (taken.empty())
    return;
  const auto minute = wall_minute(wall_now());
  batch b;
  b.seq = ++seq_;
  std::uint64_t dropped = 0;
  for (auto& [k, v] : taken) {
    if (minute_of_key(k) < minute - stale_minutes) {
      ++dropped;
      continue;
    }
    own_[k].add(v);
    b.items.emplace_back(k, v);
  }
  if (dropped) {
    std::lock_guard lock(mu_);
    stats_.counts_dropped += dropped;
  }
  if (b.items.empty())
    return;
  batch_ = std::move(b);
  batch_sent_at_ = now;
  send_batch();
}

void redis_shared_state::impl::send_batch() {
  argv_builder a;
  a << "EVAL" << counts_script
    << static_cast<std::int64_t>(batch_->items.size() + 1)
    << key("batch:", opt_.instance_id);
  for (const auto& item : batch_->items)
    a << counts_key(item.first);
  a << static_cast<std::int64_t>(batch_->seq) << batch_seq_ttl_ms << counts_ttl_s;
  for (const auto& [k, v] : batch_->items) {
    std::vector<std::pair<const char*, std::uint64_t>> fields;
    for (auto f : {std::pair{"rpm", v.rpm}, {"tpm", v.tpm}, {"calls", v.calls},
                   {"fails", v.fails}})
      if (f.second)
        fields.push_back(f);
    a << static_cast<std::int64_t>(fields.size());
    for (auto& [name, value] : fields)
      a << name << static_cast<std::int64_t>(value);
  }
  batch_->in_flight = true;
  batch_->lost_reply = false;
  send(cmd_, a, [this](redisReply* r) {
    if (!r) { // the connection died: unknown whether it was applied
      batch_->in_flight = false;
      batch_->lost_reply = true;
      return;
    }
    const bool applied = r->type == REDIS_REPLY_INTEGER;
    {
      std::lock_guard lock(mu_);
      if (applied) {
        ++stats_.batches_acked;
        stats_.batches_duplicate += r->integer == 0 ? 1 : 0;
      } else {
        stats_.counts_dropped += batch_->items.size();
      }
    }
    // A refusal (an error reply) would not pass on a retry: the batch is
    // dropped, with a warning.
    if (!applied)
      spdlog::warn("shared state (redis): counter batch refused: {}",
                   scrub(r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply",
                         opt_.server.password));
    batch_.reset();
    // What came in meanwhile goes one flush interval after the previous
    // batch, not at once: under load, back-to-back batches (one per round
    // trip) would keep this thread and Redis busy for the same counts.
    flush_due_ = true;
    flush_at_ = std::max(steady::now(), batch_sent_at_ + opt_.flush_interval);
  });
}

void redis_shared_state::impl::flush_cooldowns() {
  std::unordered_map<std::string, shared_cooldown> taken;
  {
    std::lock_guard lock(mu_);
    if (pending_cooldowns_.empty())
      return;
    taken.swap(pending_cooldowns_);
  }
  const auto now = wall_now();
  for (auto& [id, c] : taken) {
    auto& known = known_[id];
    known = std::max(known, c.deadline_ms);
    if (c.deadline_ms <= now)
      continue;
    argv_builder a;
    a << "EVAL" << cooldown_script << std::int64_t{1} << key("cooldown:", id)
      << c.deadline_ms << cooldown_value(c) << (c.deadline_ms - now) << channel_
      << cooldown_value(c) + ' ' + opt_.instance_id + ' ' + id;
    send(cmd_, a, [this, c = c](redisReply* r) {
      std::lock_guard lock(mu_);
      if (!r) { // not confirmed: again on the next connection
        auto& p = pending_cooldowns_[c.deployment_id];
        if (p.deployment_id.empty() || p.deadline_ms < c.deadline_ms)
          p = c;
        return;
      }
      ++stats_.cooldowns_sent;
    });
  }
}

void redis_shared_state::impl::reread_cooldowns() {
  if (reread_reading_ || opt_.deployment_ids.empty())
    return;
  argv_builder a;
  a << "MGET";
  for (const auto& id : opt_.deployment_ids)
    a << key("cooldown:", id);
  reread_reading_ = true;
  send(cmd_, a, [this](redisReply* r) {
    reread_reading_ = false;
    if (!r || r->type != REDIS_REPLY_ARRAY)
      return;
    for (std::size_t k = 0; k < r->elements && k < opt_.deployment_ids.size(); ++k) {
      const redisReply* e = r->element[k];
      if (e->type != REDIS_REPLY_STRING)
        continue;
      if (auto p = parse_cooldown(std::string_view(e->str, e->len), false)) {
        p->c.deployment_id = opt_.deployment_ids[k];
        heard_cooldown(p->c);
      }
    }
  });
}

void redis_shared_state::impl::on_message(redisAsyncContext* ac, void* reply, void* privdata) {
  auto* self = static_cast<impl*>(privdata);
  auto* r = static_cast<redisReply*>(reply);
  if (!r || self->tearing_down_)
    return;
  auto& sub = self->sub_;
  if (r->type == REDIS_REPLY_ERROR) {
    self->fail(sub, lowercase_first(scrub(r->str, self->opt_.server.password)));
    return;
  }
  if (r->type != REDIS_REPLY_ARRAY || r->elements < 3
      || r->element[0]->type != REDIS_REPLY_STRING)
    return;
  const std::string_view what(r->element[0]->str, r->element[0]->len);
  if (what == "subscribe") {
    self->on_ready_sub();
    return;
  }
  if (what != "message" || r->element[2]->type != REDIS_REPLY_STRING)
    return;
  auto p = parse_cooldown(std::string_view(r->element[2]->str, r->element[2]->len), true);
  if (p && p->origin != self->opt_.instance_id)
    self->heard_cooldown(p->c);
}

void redis_shared_state::impl::heard_cooldown(const shared_cooldown& c) {
  auto& known = known_[c.deployment_id];
  if (c.deadline_ms <= known || c.deadline_ms <= wall_now())
    return;
  known = c.deadline_ms;
  {
    // Remembered before the listener hears of it: an actor that reads
    // cooldowns() after the listener stopped reaching its predecessor
    // misses nothing.
    std::lock_guard lock(mu_);
    ++stats_.cooldowns_heard;
    remember(c);
  }
  if (listener_)
    listener_->on_cooldown(c);
}

void redis_shared_state::impl::read_totals() {
  if (totals_reading_ || opt_.deployment_ids.empty())
    return;
  const auto minute = wall_minute(wall_now());
  struct read {
    std::int64_t minute;
    std::vector<counts> fleet, own;
    std::size_t remaining;
    bool failed = false;
  };
  auto rd = std::make_shared<read>();
  rd->minute = minute;
  rd->fleet.resize(opt_.deployment_ids.size());
  rd->remaining = opt_.deployment_ids.size();
  // The own counts sent before these reads, on this same connection: the
  // part of each total that this replica wrote.
  std::string k;
  for (const auto& id : opt_.deployment_ids) {
    minute_key(k, minute, id);
    auto it = own_.find(k);
    rd->own.push_back(it == own_.end() ? counts{} : it->second);
  }
  totals_reading_ = true;
  for (std::size_t i = 0; i < opt_.deployment_ids.size(); ++i) {
    minute_key(k, minute, opt_.deployment_ids[i]);
    send(cmd_, argv_builder() << "HMGET" << counts_key(k) << "rpm" << "tpm" << "calls" << "fails",
         [this, rd, i](redisReply* r) {
           if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 4) {
             rd->failed = true;
           } else {
             std::uint64_t v[4] = {0, 0, 0, 0};
             for (int f = 0; f < 4; ++f)
               if (r->element[f]->type == REDIS_REPLY_STRING)
                 v[f] = static_cast<std::uint64_t>(
                   to_int(std::string_view(r->element[f]->str, r->element[f]->len)).value_or(0));
             rd->fleet[i] = counts{v[0], v[1], v[2], v[3]};
           }
           if (--rd->remaining > 0)
             return;
           totals_reading_ = false;
           if (rd->failed || tearing_down_)
             return;
           std::vector<fleet_usage> usage;
           std::vector<fleet_outcomes> outcomes;
           for (std::size_t d = 0; d < opt_.deployment_ids.size(); ++d) {
             const auto& id = opt_.deployment_ids[d];
             const auto& f = rd->fleet[d];
             const auto& o = rd->own[d];
             auto& du = delivered_usage_[id];
             if (du.minute != rd->minute || du.fleet.rpm != f.rpm || du.fleet.tpm != f.tpm
                 || du.own.rpm != o.rpm || du.own.tpm != o.tpm) {
               du = delivered{rd->minute, f, o};
               usage.push_back(fleet_usage{id, rd->minute, f.rpm, f.tpm, o.rpm, o.tpm});
             }
             auto& dc = delivered_outcomes_[id];
             if (dc.minute != rd->minute || dc.fleet.calls != f.calls || dc.fleet.fails != f.fails
                 || dc.own.calls != o.calls || dc.own.fails != o.fails) {
               dc = delivered{rd->minute, f, o};
               outcomes.push_back(
                 fleet_outcomes{id, rd->minute, f.calls, f.fails, o.calls, o.fails});
             }
           }
           if (!listener_)
             return;
           if (!usage.empty())
             listener_->on_usage(usage);
           if (!outcomes.empty())
             listener_->on_outcomes(outcomes);
         });
  }
}

void redis_shared_state::impl::prune(std::int64_t minute) {
  const auto stale = [minute](const auto& entry) {
    return minute_of_key(entry.first) < minute - stale_minutes;
  };
  for (auto it = own_.begin(); it != own_.end();)
    it = stale(*it) ? own_.erase(it) : std::next(it);
  {
    // While Redis is down, counts pile up here: one entry per deployment
    // and minute, the old minutes dropped.
    std::lock_guard lock(mu_);
    for (auto it = pending_.begin(); it != pending_.end();)
      if (stale(*it)) {
        ++stats_.counts_dropped;
        it = pending_.erase(it);
      } else {
        ++it;
      }
  }
  const auto now = wall_now();
  for (auto it = known_.begin(); it != known_.end();)
    it = it->second <= now ? known_.erase(it) : std::next(it);
  std::lock_guard lock(mu_);
  for (auto it = current_.begin(); it != current_.end();)
    it = it->second.deadline_ms <= now ? current_.erase(it) : std::next(it);
}

// --- the caller side --------------------------------------------------------

redis_shared_state::redis_shared_state(redis_shared_state_options options,
                                       std::shared_ptr<shared_state_listener> listener)
  : impl_(std::make_unique<impl>(std::move(options), std::move(listener))) {
}

redis_shared_state::~redis_shared_state() = default;

void redis_shared_state::publish_cooldown(const shared_cooldown& c) {
  {
    std::lock_guard lock(impl_->mu_);
    ++impl_->stats_.calls;
    impl_->remember(c);
    auto& p = impl_->pending_cooldowns_[c.deployment_id];
    if (p.deployment_id.empty() || p.deadline_ms < c.deadline_ms)
      p = c;
  }
  impl_->wake(); // cooldowns go out at once, not with the next batch
}

namespace {

// The calling thread's lookup key, so that a call allocates only the first
// time it sees a deployment.
std::string& scratch_key() {
  thread_local std::string k;
  return k;
}

} // namespace

void redis_shared_state::impl::add_counts(std::string_view id, std::int64_t minute,
                                          const counts& c) {
  auto& k = scratch_key();
  minute_key(k, minute, id);
  bool first;
  {
    std::lock_guard lock(mu_);
    ++stats_.calls;
    first = !woken_;
    pending_[k].add(c);
    woken_ = true;
  }
  if (first)
    wake();
}

void redis_shared_state::add_usage(std::string_view deployment_id, std::int64_t minute,
                                   std::uint64_t requests, std::uint64_t tokens) {
  impl_->add_counts(deployment_id, minute, counts{requests, tokens, 0, 0});
}

void redis_shared_state::add_outcome(std::string_view deployment_id, std::int64_t minute,
                                     bool failed) {
  impl_->add_counts(deployment_id, minute, counts{0, 0, 1, failed ? 1u : 0u});
}

shared_state_status redis_shared_state::status() const {
  std::lock_guard lock(impl_->mu_);
  return impl_->status_;
}

std::vector<shared_cooldown> redis_shared_state::cooldowns(wall_ms now) const {
  std::vector<shared_cooldown> out;
  std::lock_guard lock(impl_->mu_);
  for (const auto& [id, c] : impl_->current_)
    if (c.deadline_ms > now)
      out.push_back(c);
  return out;
}

shared_state_stats redis_shared_state::stats() const {
  std::lock_guard lock(impl_->mu_);
  return impl_->stats_;
}

} // namespace switchyard
