#pragma once

// The static upstream (bench/nginx/upstream.conf.in, PEERS.md) as a child
// process on a free loopback port, for the transport scenarios. CAF-free.
// Threading: one thread owns it; start and stop block that thread briefly.

#include <string>
#include <sys/types.h>

namespace switchyard::bench {

/// `name` on PATH (or in /usr/sbin, where Debian puts nginx), or "".
std::string find_program(const std::string& name);

/// nginx -c FILE -p DIR in a temporary directory, `daemon off`. The
/// constructor throws std::runtime_error with the reason when nginx is
/// missing or does not come up; the destructor stops it (SIGTERM, then
/// SIGKILL) and removes the directory.
class nginx_upstream {
public:
  nginx_upstream();
  ~nginx_upstream();
  nginx_upstream(const nginx_upstream&) = delete;
  nginx_upstream& operator=(const nginx_upstream&) = delete;

  int port() const { return port_; }
  /// http://127.0.0.1:PORT
  std::string base_url() const;

private:
  bool try_start(const std::string& nginx, int port);
  void stop();

  std::string dir_;
  pid_t pid_ = -1;
  int port_ = -1;
};

} // namespace switchyard::bench
