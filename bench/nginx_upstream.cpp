#include "nginx_upstream.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

#ifndef SWITCHYARD_BENCH_DIR
#error "SWITCHYARD_BENCH_DIR: the bench/ source folder (set by bench/CMakeLists.txt)"
#endif

namespace switchyard::bench {

namespace {

// A port the kernel just handed out on 127.0.0.1 (nginx cannot bind port 0
// and report it; the short race with another process is retried).
int free_port() {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  if (s < 0)
    return -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  int port = -1;
  if (bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0
      && getsockname(s, reinterpret_cast<sockaddr*>(&a), &len) == 0)
    port = ntohs(a.sin_port);
  close(s);
  return port;
}

bool accepts(int port) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  if (s < 0)
    return false;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  const bool ok = connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  close(s);
  return ok;
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (auto at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
    s.replace(at, from.size(), to);
  return s;
}

} // namespace

std::string find_program(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs{std::string(path ? path : "") + ":/usr/sbin:/sbin"};
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (dir.empty())
      continue;
    auto candidate = dir + "/" + name;
    if (access(candidate.c_str(), X_OK) == 0)
      return candidate;
  }
  return {};
}

nginx_upstream::nginx_upstream() {
  const auto nginx = find_program("nginx");
  if (nginx.empty())
    throw std::runtime_error("nginx not found (apt-get install nginx-light)");
  char tmpl[] = "/tmp/switchyard-bench-nginx-XXXXXX";
  if (!mkdtemp(tmpl))
    throw std::runtime_error("nginx: mkdtemp failed");
  dir_ = tmpl;
  for (int attempt = 0; attempt < 3; ++attempt)
    if (try_start(nginx, free_port()))
      return;
  std::string log;
  std::ifstream in{dir_ + "/error.log"};
  std::getline(in, log);
  stop();
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec); // no destructor after a throw
  throw std::runtime_error("nginx did not start (" + log + ")");
}

bool nginx_upstream::try_start(const std::string& nginx, int port) {
  if (port <= 0)
    return false;
  std::ifstream in{std::string(SWITCHYARD_BENCH_DIR) + "/nginx/upstream.conf.in"};
  if (!in)
    throw std::runtime_error("nginx: cannot read " + std::string(SWITCHYARD_BENCH_DIR)
                             + "/nginx/upstream.conf.in");
  std::stringstream text;
  text << in.rdbuf();
  const auto conf = dir_ + "/nginx.conf";
  std::ofstream(conf) << replace_all(replace_all(text.str(), "@DIR@", dir_), "@PORT@",
                                     std::to_string(port));
  std::ofstream(dir_ + "/extra.conf") << "";
  std::vector<std::string> args{nginx, "-c", conf, "-p", dir_, "-e", dir_ + "/error.log"};
  std::vector<char*> argv;
  for (auto& a : args)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  const long max_fd = sysconf(_SC_OPEN_MAX);
  pid_ = fork();
  if (pid_ == 0) {
    // Only async-signal-safe calls until exec; no client socket leaks in,
    // and nginx gets SIGTERM if the bench dies without stopping it.
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    for (long fd = 3; fd < max_fd; ++fd)
      close(static_cast<int>(fd));
    execv(argv[0], argv.data());
    _exit(127);
  }
  if (pid_ < 0)
    throw std::runtime_error("nginx: fork failed");
  for (int i = 0; i < 250; ++i) {
    if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
      pid_ = -1; // exited: the port was taken, or the config is wrong
      return false;
    }
    if (accepts(port)) {
      port_ = port;
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  stop();
  return false;
}

std::string nginx_upstream::base_url() const {
  return "http://127.0.0.1:" + std::to_string(port_);
}

void nginx_upstream::stop() {
  if (pid_ > 0) {
    kill(pid_, SIGTERM);
    bool gone = false;
    for (int i = 0; i < 150 && !gone; ++i) {
      gone = waitpid(pid_, nullptr, WNOHANG) == pid_;
      if (!gone)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (!gone) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    pid_ = -1;
  }
}

nginx_upstream::~nginx_upstream() {
  stop();
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

} // namespace switchyard::bench
