#pragma once

// Runs the test upstream (tests/upstream/upstream.mjs) as a child process on
// a free loopback port, for tests that talk HTTP to a fake provider. CAF-free
// and header-only; the test target links libcurl (CURL::libcurl) for the
// control calls (/_calls, /_stats, /_reset) and nlohmann_json, and may
// define SWITCHYARD_NODE (the node binary; default `node` on PATH) and
// SWITCHYARD_UPSTREAM_SCRIPT (default: the script next to this folder).
//
// Threading: one test thread owns an upstream_process; the control calls
// block that thread (loopback, milliseconds).

#include <curl/curl.h>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#ifndef SWITCHYARD_NODE
#define SWITCHYARD_NODE "node"
#endif

namespace switchyard::test {

/// A self-signed certificate for CN=localhost with subjectAltName
/// DNS:localhost and IP:127.0.0.1, made by `openssl req` into a temporary
/// directory that the destructor removes. Nothing is committed.
class self_signed_cert {
public:
  self_signed_cert() {
    char tmpl[] = "/tmp/switchyard-cert-XXXXXX";
    const char* made = mkdtemp(tmpl);
    if (!made)
      throw std::runtime_error("self_signed_cert: mkdtemp failed");
    dir_ = made;
    cert_ = dir_ + "/cert.pem";
    key_ = dir_ + "/key.pem";
    std::string cmd =
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
        " -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1"
        " -days 2 -keyout '" + key_ + "' -out '" + cert_ + "' >/dev/null 2>&1";
    if (std::system(cmd.c_str()) != 0 || !std::filesystem::exists(cert_))
      throw std::runtime_error("self_signed_cert: openssl req failed");
  }
  ~self_signed_cert() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  self_signed_cert(const self_signed_cert&) = delete;
  self_signed_cert& operator=(const self_signed_cert&) = delete;

  const std::string& cert_file() const { return cert_; }
  const std::string& key_file() const { return key_; }

private:
  std::string dir_, cert_, key_;
};

/// The upstream as a child process: stdin is a pipe it watches (it exits
/// when the pipe closes, so a crashed test never leaves it behind), stdout
/// gives `LISTENING <port>`. The destructor sends SIGTERM, waits a short
/// grace, then SIGKILL.
class upstream_process {
public:
  /// Plain HTTP, or TLS (HTTP/2 and 1.1) with `tls`.
  explicit upstream_process(const self_signed_cert* tls = nullptr) : tls_(tls != nullptr) {
    std::string node = find_on_path(SWITCHYARD_NODE);
#ifdef SWITCHYARD_UPSTREAM_SCRIPT
    std::string script = SWITCHYARD_UPSTREAM_SCRIPT;
#else
    std::string script =
        (std::filesystem::path(__FILE__).parent_path().parent_path() / "upstream" / "upstream.mjs").string();
#endif
    std::vector<std::string> args{node, script, "--port", "0"};
    if (tls) {
      args.insert(args.end(), {"--tls-cert", tls->cert_file(), "--tls-key", tls->key_file()});
    }
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) != 0)
      throw std::runtime_error("upstream_process: pipe failed");
    if (pipe2(out, O_CLOEXEC) != 0) {
      close(in[0]);
      close(in[1]);
      throw std::runtime_error("upstream_process: pipe failed");
    }
    std::vector<char*> argv;
    for (auto& a : args)
      argv.push_back(a.data());
    argv.push_back(nullptr);
    long max_fd = sysconf(_SC_OPEN_MAX);
    pid_ = fork();
    if (pid_ == 0) {
      // Child: only async-signal-safe calls until exec. Every other fd is
      // closed, so the upstream never holds a copy of a client socket
      // (which would keep a connection open that the client closed).
      dup2(in[0], 0);
      dup2(out[1], 1);
      for (long fd = 3; fd < max_fd; ++fd)
        close(static_cast<int>(fd));
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(in[0]);
    close(out[1]);
    stdin_fd_ = in[1];
    if (pid_ < 0) {
      close(out[0]);
      close(stdin_fd_);
      throw std::runtime_error("upstream_process: fork failed");
    }
    port_ = read_port(out[0]);
    close(out[0]);
    if (port_ <= 0) {
      stop();
      throw std::runtime_error("upstream_process: the upstream did not print LISTENING (node: " +
                               node + ", script: " + script + ")");
    }
  }

  ~upstream_process() { stop(); }
  upstream_process(const upstream_process&) = delete;
  upstream_process& operator=(const upstream_process&) = delete;

  int port() const { return port_; }
  /// `http://127.0.0.1:PORT`, or `https://localhost:PORT` in TLS mode (the
  /// certificate's name, so that verification and SNI are real).
  std::string base_url() const {
    return (tls_ ? "https://localhost:" : "http://127.0.0.1:") + std::to_string(port_);
  }

  nlohmann::json calls() const { return nlohmann::json::parse(control("GET", "/_calls")); }
  nlohmann::json stats() const { return nlohmann::json::parse(control("GET", "/_stats")); }
  void reset() const { control("POST", "/_reset"); }

  /// Polls stats() until `pred` holds or about `seconds` pass; the last
  /// stats either way (the caller asserts on them).
  template <class Pred>
  nlohmann::json stats_when(Pred pred, double seconds = 5) const {
    auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    for (;;) {
      auto s = stats();
      if (pred(s) || std::chrono::steady_clock::now() > until)
        return s;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

private:
  static std::string find_on_path(const std::string& name) {
    if (name.find('/') != std::string::npos)
      return name;
    const char* path = std::getenv("PATH");
    std::string p = path ? path : "/usr/local/bin:/usr/bin:/bin";
    std::size_t from = 0;
    while (from <= p.size()) {
      auto to = p.find(':', from);
      if (to == std::string::npos)
        to = p.size();
      std::string candidate = p.substr(from, to - from) + "/" + name;
      if (access(candidate.c_str(), X_OK) == 0)
        return candidate;
      from = to + 1;
    }
    throw std::runtime_error("upstream_process: '" + name + "' not found on PATH");
  }

  static int read_port(int fd) {
    std::string line;
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while (line.find('\n') == std::string::npos) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                      until - std::chrono::steady_clock::now()).count();
      if (left <= 0)
        return -1;
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left)) <= 0)
        return -1;
      char buf[256];
      auto n = read(fd, buf, sizeof buf);
      if (n <= 0)
        return -1;
      line.append(buf, static_cast<std::size_t>(n));
    }
    if (line.rfind("LISTENING ", 0) != 0)
      return -1;
    return std::atoi(line.c_str() + 10);
  }

  void stop() {
    if (stdin_fd_ >= 0) {
      close(stdin_fd_);
      stdin_fd_ = -1;
    }
    if (pid_ <= 0)
      return;
    kill(pid_, SIGTERM);
    for (int i = 0; i < 100; ++i) {
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  static std::size_t collect(char* data, std::size_t size, std::size_t n, void* out) {
    static_cast<std::string*>(out)->append(data, size * n);
    return size * n;
  }

  /// One blocking control call over a fresh connection (libcurl easy).
  std::string control(const char* method, const std::string& path) const {
    CURL* e = curl_easy_init();
    if (!e)
      throw std::runtime_error("upstream_process: curl_easy_init failed");
    std::string body;
    std::string url = base_url() + path;
    curl_easy_setopt(e, CURLOPT_URL, url.c_str());
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &upstream_process::collect);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &body);
    if (std::string(method) == "POST")
      curl_easy_setopt(e, CURLOPT_POSTFIELDS, "");
    CURLcode rc = curl_easy_perform(e);
    long status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(e);
    if (rc != CURLE_OK || status != 200)
      throw std::runtime_error("upstream_process: control call " + path + " failed: " +
                               curl_easy_strerror(rc));
    return body;
  }

  bool tls_ = false;
  pid_t pid_ = -1;
  int stdin_fd_ = -1;
  int port_ = -1;
};

} // namespace switchyard::test
