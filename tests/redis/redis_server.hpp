#pragma once

// A redis-server of the test's own on a free loopback port, and a blocking
// hiredis client to look at it. The server is stopped by the destructor,
// so it goes away even when a test fails (and with the test process:
// PR_SET_PDEATHSIG).

#include <hiredis/hiredis.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace switchyard::test {

/// Polls `pred` every 10 ms until it holds, at most `limit`; the test
/// asserts the result (no test asserts how long it took).
inline bool eventually(const std::function<bool()>& pred,
                       std::chrono::milliseconds limit = std::chrono::milliseconds(10'000)) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > end)
      return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

/// Usage and outcome counts are kept per minute: the fleet's by the wall
/// clock, each router's own by the steady clock. Waits (up to a minute)
/// until both clocks are at most `latest` seconds into their minute, so
/// that a test's counting does not straddle a minute boundary.
inline bool early_in_minute(int latest = 40) {
  return eventually(
    [latest] {
      auto into = [](auto since_epoch) {
        return std::chrono::duration_cast<std::chrono::seconds>(since_epoch).count() % 60;
      };
      return into(std::chrono::system_clock::now().time_since_epoch()) < latest
             && into(std::chrono::steady_clock::now().time_since_epoch()) < latest;
    },
    std::chrono::milliseconds(61'000));
}

/// A port nothing listens on right now (bound to port 0, then closed).
inline int free_loopback_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0
      || ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    if (fd >= 0)
      ::close(fd);
    throw std::runtime_error("cannot find a free loopback port");
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

using redis_reply_ptr = std::unique_ptr<redisReply, void (*)(void*)>;

/// A blocking client for the test's checks (never used by the code under test).
class redis_client {
public:
  redis_client(int port, const std::string& password = "") {
    timeval tv{2, 0};
    ctx_ = redisConnectWithTimeout("127.0.0.1", port, tv);
    if (!ctx_ || ctx_->err) {
      // A context that failed to connect is still ours to free.
      if (ctx_)
        redisFree(ctx_);
      ctx_ = nullptr;
      throw std::runtime_error("cannot connect to the test redis");
    }
    redisSetTimeout(ctx_, tv);
    if (!password.empty())
      command({"AUTH", password});
  }
  ~redis_client() {
    if (ctx_)
      redisFree(ctx_);
  }
  redis_client(const redis_client&) = delete;
  redis_client& operator=(const redis_client&) = delete;

  redis_reply_ptr command(const std::vector<std::string>& args) {
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (const auto& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    auto* r = static_cast<redisReply*>(
      redisCommandArgv(ctx_, static_cast<int>(argv.size()), argv.data(), lens.data()));
    if (!r)
      throw std::runtime_error("the test redis did not answer");
    return redis_reply_ptr(r, freeReplyObject);
  }
  /// A string or status reply as text; nil as "(nil)"; an integer in decimal.
  std::string text(const std::vector<std::string>& args) {
    auto r = command(args);
    switch (r->type) {
      case REDIS_REPLY_STRING:
      case REDIS_REPLY_STATUS:
      case REDIS_REPLY_ERROR: return std::string(r->str, r->len);
      case REDIS_REPLY_INTEGER: return std::to_string(r->integer);
      case REDIS_REPLY_NIL: return "(nil)";
      default: return "(array)";
    }
  }
  long long integer(const std::vector<std::string>& args) {
    auto r = command(args);
    if (r->type == REDIS_REPLY_INTEGER)
      return r->integer;
    if (r->type == REDIS_REPLY_STRING)
      return std::stoll(std::string(r->str, r->len));
    if (r->type == REDIS_REPLY_NIL)
      return 0;
    throw std::runtime_error("not an integer reply");
  }

private:
  redisContext* ctx_ = nullptr;
};

/// /usr/bin/redis-server with no persistence, bound to 127.0.0.1.
class redis_server {
public:
  explicit redis_server(std::string password = "") : password_(std::move(password)) {
    for (int attempt = 0; attempt < 5; ++attempt) {
      port_ = free_loopback_port();
      if (start())
        return;
    }
    throw std::runtime_error("cannot start redis-server");
  }
  ~redis_server() { stop(); }
  redis_server(const redis_server&) = delete;
  redis_server& operator=(const redis_server&) = delete;

  int port() const noexcept { return port_; }
  const std::string& password() const noexcept { return password_; }

  /// Starts it (again) on the same port; true once it answers PING.
  bool start() {
    stop();
    const std::string port = std::to_string(port_);
    std::vector<std::string> args = {"redis-server", "--port", port, "--bind", "127.0.0.1",
                                     "--save", "", "--appendonly", "no", "--loglevel",
                                     "warning", "--dir", "/tmp"};
    if (!password_.empty()) {
      args.push_back("--requirepass");
      args.push_back(password_);
    }
    pid_ = ::fork();
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      std::vector<char*> argv;
      for (auto& a : args)
        argv.push_back(a.data());
      argv.push_back(nullptr);
      std::freopen("/dev/null", "w", stdout);
      ::execv("/usr/bin/redis-server", argv.data());
      ::_exit(127);
    }
    for (int k = 0; k < 200; ++k) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) { // it exited: port taken?
        pid_ = -1;
        return false;
      }
      try {
        redis_client c(port_, password_);
        if (c.text({"PING"}) == "PONG")
          return true;
      } catch (const std::exception&) {
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    stop();
    return false;
  }
  /// Kills it (SIGKILL: no goodbye to its clients) and reaps it.
  void stop() {
    if (pid_ <= 0)
      return;
    ::kill(pid_, SIGCONT);
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  /// A stalled Redis: accepts connections, answers nothing.
  void pause() { ::kill(pid_, SIGSTOP); }
  void resume() { ::kill(pid_, SIGCONT); }

  redis_client client() const { return redis_client(port_, password_); }

private:
  std::string password_;
  int port_ = 0;
  pid_t pid_ = -1;
};

} // namespace switchyard::test
