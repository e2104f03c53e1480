#include "gateway_support.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace switchyard::test {

namespace {

std::string make_scratch_dir() {
  char tmpl[] = "/tmp/switchyard-gateway-tests-XXXXXX";
  const char* made = mkdtemp(tmpl);
  if (!made)
    throw std::runtime_error("cannot create a scratch directory");
  return made;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

} // namespace

serve_process::serve_process(const nlohmann::json& config, std::vector<std::string> extra,
                             std::vector<std::string> env)
  : dir_(make_scratch_dir()) {
  const std::string config_file = dir_ + "/config.json";
  std::ofstream(config_file) << config.dump(2);
  std::vector<std::string> args = {SWITCHYARD_BIN, "serve", "--config", config_file,
                                   "--port", "0"};
  args.insert(args.end(), extra.begin(), extra.end());
  int out[2];
  if (pipe(out) != 0)
    throw std::runtime_error("pipe failed");
  const std::string err_file = dir_ + "/stderr.txt";
  pid_ = fork();
  if (pid_ == 0) {
    dup2(out[1], STDOUT_FILENO);
    close(out[0]);
    close(out[1]);
    const int err = ::open(err_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (err >= 0)
      dup2(err, STDERR_FILENO);
    for (auto& e : env)
      putenv(e.data());
    std::vector<char*> argv;
    for (auto& a : args)
      argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(out[1]);
  // The first line is "switchyard: listening on http://HOST:PORT".
  std::string line;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (line.find('\n') == std::string::npos && std::chrono::steady_clock::now() < deadline) {
    pollfd p{out[0], POLLIN, 0};
    if (poll(&p, 1, 100) <= 0)
      continue;
    char buf[256];
    const auto n = ::read(out[0], buf, sizeof buf);
    if (n <= 0)
      break;
    line.append(buf, static_cast<std::size_t>(n));
  }
  close(out[0]);
  const auto colon = line.rfind(':');
  if (line.find("listening on") == std::string::npos || colon == std::string::npos) {
    const std::string log_text = read_file(err_file);
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
    throw std::runtime_error("switchyard serve did not start: " + line + log_text);
  }
  port_ = static_cast<std::uint16_t>(std::stoi(line.substr(colon + 1)));
}

serve_process::~serve_process() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

void serve_process::signal(int sig) const {
  if (pid_ > 0)
    kill(pid_, sig);
}

int serve_process::stop(int sig, std::chrono::seconds limit) {
  if (pid_ <= 0)
    return -1;
  kill(pid_, sig);
  const auto deadline = std::chrono::steady_clock::now() + limit;
  int status = 0;
  for (;;) {
    const pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_)
      break;
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  pid_ = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string serve_process::log() const {
  return read_file(dir_ + "/stderr.txt");
}

bool serve_process::log_contains(const std::string& text) const {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (log().find(text) == std::string::npos) {
    if (std::chrono::steady_clock::now() >= deadline)
      return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return true;
}

long serve_process::status_kb(const std::string& field) const {
  std::ifstream in("/proc/" + std::to_string(pid_) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(field + ":", 0) == 0)
      return std::strtol(line.c_str() + field.size() + 1, nullptr, 10);
  return -1;
}

std::pair<int, std::string> run_switchyard(const std::vector<std::string>& arguments,
                                           const std::string& config_text) {
  const std::string dir = make_scratch_dir();
  const std::string config_file = dir + "/config.json";
  std::ofstream(config_file) << config_text;
  std::string command = std::string("timeout 60 '") + SWITCHYARD_BIN + "'";
  for (const auto& a : arguments)
    command += " '" + (a == "{config}" ? config_file : a) + "'";
  command += " </dev/null 2>&1";
  std::string output;
  FILE* p = popen(command.c_str(), "r");
  char buf[4096];
  std::size_t n;
  while (p && (n = fread(buf, 1, sizeof buf, p)) > 0)
    output.append(buf, n);
  const int raw = p ? pclose(p) : -1;
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return {WIFEXITED(raw) ? WEXITSTATUS(raw) : -1, output};
}

raw_connection::raw_connection(std::uint16_t port) {
  fd_ = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd_ < 0 || connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
    throw std::runtime_error("cannot connect to 127.0.0.1:" + std::to_string(port));
}

raw_connection::~raw_connection() {
  close();
}

void raw_connection::send(const std::string& bytes) {
  std::size_t sent = 0;
  while (sent < bytes.size()) {
    const auto n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0)
      return;
    sent += static_cast<std::size_t>(n);
  }
}

std::optional<std::string> raw_connection::receive(std::chrono::milliseconds limit) {
  pollfd p{fd_, POLLIN, 0};
  if (poll(&p, 1, static_cast<int>(limit.count())) <= 0)
    return std::nullopt;
  char buf[65536];
  const auto n = ::recv(fd_, buf, sizeof buf, 0);
  if (n <= 0)
    return std::string();
  return std::string(buf, static_cast<std::size_t>(n));
}

void raw_connection::close() {
  if (fd_ >= 0)
    ::close(fd_);
  fd_ = -1;
}

double metric_value(const std::string& text, const std::string& series) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (line.rfind(series + " ", 0) == 0)
      return std::stod(line.substr(series.size() + 1));
  return -1;
}

std::string metrics_text(const serve_process& s) {
  return http_request(s.port(), "GET", "/metrics").body;
}

bool wait_for_metric(const serve_process& s, const std::string& series, double value) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    if (metric_value(metrics_text(s), series) == value)
      return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

std::vector<std::string> sse_data(const std::string& body) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos < body.size()) {
    const auto end = body.find("\n\n", pos);
    const std::string event = body.substr(pos, end == std::string::npos ? end : end - pos);
    if (event.rfind("data: ", 0) == 0)
      out.push_back(event.substr(6));
    if (end == std::string::npos)
      break;
    pos = end + 2;
  }
  return out;
}

nlohmann::json chat(const std::string& model, bool stream) {
  nlohmann::json body{{"model", model},
                      {"messages", nlohmann::json::array({{{"role", "user"}, {"content", "hi"}}})}};
  if (stream)
    body["stream"] = true;
  return body;
}

} // namespace switchyard::test
