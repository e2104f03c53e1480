#pragma once

// For the gateway tests (tests/gateway): `switchyard serve` as a child
// process on a free loopback port (--port 0; the port is read from its
// first stdout line), and small HTTP clients over real sockets (Beast,
// compiled in http_client.cpp only). Needs SWITCHYARD_BIN.

#include <nlohmann/json.hpp>

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace switchyard::test {

/// A running `switchyard serve`. The destructor kills it (SIGKILL) if it
/// still runs, so a failing test never leaves a server behind.
class serve_process {
public:
  /// Writes `config` to a scratch file and starts `switchyard serve
  /// --config <file> --port 0 <extra>` with `env` added to the
  /// environment. Throws std::runtime_error when the server does not
  /// print its port (its stderr is in the message).
  explicit serve_process(const nlohmann::json& config, std::vector<std::string> extra = {},
                         std::vector<std::string> env = {});
  ~serve_process();
  serve_process(const serve_process&) = delete;
  serve_process& operator=(const serve_process&) = delete;

  std::uint16_t port() const { return port_; }
  pid_t pid() const { return pid_; }
  /// A line of /proc/<pid>/status in kB ("VmRSS", "VmHWM"), or -1.
  long status_kb(const std::string& field) const;
  /// Sends `sig` and returns at once.
  void signal(int sig) const;
  /// Sends `sig` and waits for the exit (at most `limit`, then SIGKILL).
  /// Returns the exit status, or -1 when killed by a signal.
  int stop(int sig, std::chrono::seconds limit = std::chrono::seconds(120));
  /// What the server wrote to stderr so far.
  std::string log() const;
  /// Polls log() until it holds `text` (at most 30 s): serve writes its
  /// log lines in batches, within a second once idle.
  bool log_contains(const std::string& text) const;

private:
  pid_t pid_ = -1;
  std::uint16_t port_ = 0;
  std::string dir_;
};

/// Runs `switchyard <arguments>` to its end; for commands that must
/// refuse before serving. Returns {exit status, stdout + stderr}.
std::pair<int, std::string> run_switchyard(const std::vector<std::string>& arguments,
                                           const std::string& config_text);

struct http_reply {
  int status = 0;
  /// Header names in lower case.
  std::map<std::string, std::string> headers;
  std::string body;
  /// The socket failed (refused, reset, closed early): status is 0.
  std::string error;

  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
  nlohmann::json json() const { return nlohmann::json::parse(body); }
};

using header_map = std::vector<std::pair<std::string, std::string>>;

/// One request on a fresh connection (127.0.0.1:port), read to its end
/// (chunked bodies decoded).
http_reply http_request(std::uint16_t port, const std::string& method, const std::string& target,
                        const std::string& body = "", const header_map& headers = {});

/// `n` requests at once, each on its own connection, from one I/O thread
/// (Asio); replies in request order.
std::vector<http_reply> http_concurrent(std::uint16_t port, std::size_t n,
                                        const std::string& target,
                                        const std::vector<std::string>& bodies,
                                        const header_map& headers = {});

/// A raw connection for tests that misbehave on purpose (slow headers,
/// hanging up mid-request).
class raw_connection {
public:
  explicit raw_connection(std::uint16_t port);
  ~raw_connection();
  raw_connection(const raw_connection&) = delete;
  raw_connection& operator=(const raw_connection&) = delete;
  void send(const std::string& bytes);
  /// Waits up to `limit` for bytes: returns them, "" when the server
  /// closed the connection, nullopt when nothing came in time.
  std::optional<std::string> receive(std::chrono::milliseconds limit);
  void close();

private:
  int fd_ = -1;
};

/// The value of one series in Prometheus text ("name{labels}"), or -1.
double metric_value(const std::string& text, const std::string& series);

/// serve's /metrics, as text.
std::string metrics_text(const serve_process& s);

/// Polls /metrics until `series` reads `value` (at most 60 s: a loaded
/// machine is slow, a broken server never gets there).
bool wait_for_metric(const serve_process& s, const std::string& series, double value);

/// `data:` payloads of an SSE body, in order.
std::vector<std::string> sse_data(const std::string& body);

/// A chat body: one user message.
nlohmann::json chat(const std::string& model, bool stream = false);

} // namespace switchyard::test
