// switchyard-openloop: a fixed-rate (open-loop) HTTP/1.1 load generator
// for bench/gateway.sh, because wrk2 is not in Debian and wrk is a closed
// loop (a slow answer delays the next request, hiding queueing).
//
// Request i is due at t0 + i / rate. Due requests wait in one FIFO; each of
// N keep-alive connections sends the next one as soon as it is free (one
// request at a time per connection, no pipelining), the connection idle the
// longest first, so that every connection stays in use and none reaches a
// server's idle keep-alive timeout. Latency is measured from
// the due time to the last byte of the answer, so a request that waited for
// a connection, or behind a slow server, counts its wait (no coordinated
// omission). One thread, epoll, and a timerfd armed at the next due time
// (no spinning: on a 2-core machine the generator must not hold a core).
// Only 127.0.0.1 is accepted as the target.
//
// usage: switchyard-openloop --port P [--path /v1/chat/completions]
//          --rate R --duration S [--warmup S] [--connections N]
//          [--body-file F] [--header 'K: V']...
// Prints one JSON object on stdout: offered and achieved rates, counts,
// errors (non-2xx answers) and latency percentiles in us; a connection the
// server closes or resets ends the run with an error, since the figures would
// be wrong.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <deque>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace {

std::int64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "switchyard-openloop: %s\n", what.c_str());
  std::exit(2);
}

struct connection {
  int fd = -1;
  bool busy = false;
  std::int64_t due_ns = 0; ///< the request in flight's due time
  bool measured = false;
  std::string in;          ///< the answer so far
  std::size_t sent = 0;    ///< bytes of the request written
};

// Whether `in` holds a whole answer; sets `status`. Content-Length or
// chunked (ends with the zero chunk).
bool complete_answer(const std::string& in, int& status) {
  const auto head_end = in.find("\r\n\r\n");
  if (head_end == std::string::npos)
    return false;
  if (in.size() < 12)
    return false;
  status = std::atoi(in.c_str() + 9);
  std::string head = in.substr(0, head_end);
  std::transform(head.begin(), head.end(), head.begin(), [](unsigned char c) {
    return static_cast<char>(std::tolower(c));
  });
  const auto body = head_end + 4;
  if (auto cl = head.find("\r\ncontent-length:"); cl != std::string::npos) {
    const auto len = std::strtoull(head.c_str() + cl + 17, nullptr, 10);
    return in.size() >= body + len;
  }
  if (head.find("transfer-encoding: chunked") != std::string::npos)
    return in.size() >= body + 5 && in.compare(in.size() - 5, 5, "0\r\n\r\n") == 0;
  return true; // no body (a 204 or a HEAD-like answer)
}

int connect_loopback(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0)
    fail("socket failed");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
    fail("cannot connect to 127.0.0.1:" + std::to_string(port) + ": " + std::strerror(errno));
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

double percentile(const std::vector<std::int64_t>& sorted, double p) {
  if (sorted.empty())
    return 0;
  auto rank = static_cast<std::size_t>(std::ceil(p * static_cast<double>(sorted.size())));
  rank = std::clamp<std::size_t>(rank, 1, sorted.size());
  return static_cast<double>(sorted[rank - 1]) / 1000.0;
}

} // namespace

int main(int argc, char** argv) {
  int port = 0;
  std::string path = "/v1/chat/completions";
  double rate = 0, duration = 0, warmup = 1;
  int n_conn = 32;
  std::string body;
  std::vector<std::string> headers;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc)
        fail("missing value after " + a);
      return argv[++i];
    };
    if (a == "--port") port = std::atoi(value().c_str());
    else if (a == "--path") path = value();
    else if (a == "--rate") rate = std::atof(value().c_str());
    else if (a == "--duration") duration = std::atof(value().c_str());
    else if (a == "--warmup") warmup = std::atof(value().c_str());
    else if (a == "--connections") n_conn = std::atoi(value().c_str());
    else if (a == "--header") headers.push_back(value());
    else if (a == "--body-file") {
      std::ifstream f{value()};
      if (!f)
        fail("cannot read the body file");
      std::stringstream s;
      s << f.rdbuf();
      body = s.str();
    } else
      fail("unknown argument " + a + " (see the comment at the top of openloop.cpp)");
  }
  if (port <= 0 || port > 65535 || rate <= 0 || duration <= 0 || n_conn <= 0 || warmup < 0)
    fail("need --port 1..65535, --rate > 0, --duration > 0, --connections > 0");

  std::string request = (body.empty() ? "GET " : "POST ") + path + " HTTP/1.1\r\n"
                        "Host: 127.0.0.1:" + std::to_string(port) + "\r\n";
  for (const auto& h : headers)
    request += h + "\r\n";
  if (!body.empty())
    request += "Content-Type: application/json\r\nContent-Length: "
               + std::to_string(body.size()) + "\r\n";
  request += "\r\n" + body;

  int ep = epoll_create1(0);
  int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
  if (ep < 0 || tfd < 0)
    fail("epoll/timerfd failed");
  std::vector<connection> conns(static_cast<std::size_t>(n_conn));
  std::deque<connection*> idle; // longest idle first
  for (std::size_t i = 0; i < conns.size(); ++i) {
    conns[i].fd = connect_loopback(port);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = i;
    epoll_ctl(ep, EPOLL_CTL_ADD, conns[i].fd, &ev);
    idle.push_back(&conns[i]);
  }
  {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = UINT64_MAX;
    epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev);
  }

  const std::int64_t interval = static_cast<std::int64_t>(1e9 / rate);
  const std::int64_t t0 = now_ns() + 10'000'000;
  const std::int64_t measure_from = t0 + static_cast<std::int64_t>(warmup * 1e9);
  const std::int64_t end_sched = measure_from + static_cast<std::int64_t>(duration * 1e9);
  std::uint64_t next = 0;         // next request to become due
  std::deque<std::int64_t> queue; // due times of requests waiting for a connection
  std::vector<std::int64_t> latencies;
  latencies.reserve(static_cast<std::size_t>(rate * duration * 1.1) + 16);
  std::uint64_t errors = 0, sent_measured = 0;
  std::int64_t last_done = 0;

  auto arm = [&](std::int64_t at) {
    itimerspec its{};
    its.it_value.tv_sec = at / 1'000'000'000;
    its.it_value.tv_nsec = at % 1'000'000'000;
    timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, nullptr);
  };
  auto write_some = [&](connection& c) {
    while (c.sent < request.size()) {
      auto n = write(c.fd, request.data() + c.sent, request.size() - c.sent);
      if (n <= 0)
        return; // the socket buffer is full: a tiny request never hits this
      c.sent += static_cast<std::size_t>(n);
    }
  };
  auto dispatch = [&] {
    while (!queue.empty() && !idle.empty()) {
      connection& c = *idle.front();
      idle.pop_front();
      c.busy = true;
      c.due_ns = queue.front();
      queue.pop_front();
      c.measured = c.due_ns >= measure_from;
      c.in.clear();
      c.sent = 0;
      write_some(c);
    }
  };
  arm(t0);
  const std::int64_t give_up = end_sched + 30'000'000'000LL;
  std::vector<epoll_event> events(conns.size() + 1);
  char buf[65536];
  for (;;) {
    const auto t = now_ns();
    if (t >= end_sched && queue.empty() && idle.size() == conns.size())
      break;
    if (t > give_up)
      break;
    int n = epoll_wait(ep, events.data(), static_cast<int>(events.size()), 1000);
    for (int e = 0; e < n; ++e) {
      if (events[e].data.u64 == UINT64_MAX) {
        std::uint64_t expirations;
        (void)!read(tfd, &expirations, sizeof expirations);
        const auto now = now_ns();
        for (;;) {
          const std::int64_t due = t0 + static_cast<std::int64_t>(next) * interval;
          if (due > now || due >= end_sched)
            break;
          queue.push_back(due);
          if (due >= measure_from)
            ++sent_measured;
          ++next;
        }
        const std::int64_t due = t0 + static_cast<std::int64_t>(next) * interval;
        if (due < end_sched)
          arm(due);
        dispatch();
        continue;
      }
      connection& c = conns[events[e].data.u64];
      auto got = read(c.fd, buf, sizeof buf);
      if (got <= 0) {
        if (got < 0 && (errno == EAGAIN || errno == EINTR))
          continue;
        fail(got == 0 ? std::string("the server closed a keep-alive connection")
                      : std::string("a read failed on a keep-alive connection: ")
                          + std::strerror(errno));
      }
      c.in.append(buf, static_cast<std::size_t>(got));
      int status = 0;
      if (c.busy && complete_answer(c.in, status)) {
        const auto done = now_ns();
        if (c.measured) {
          latencies.push_back(done - c.due_ns);
          if (status < 200 || status > 299)
            ++errors;
          last_done = done;
        }
        c.busy = false;
        idle.push_back(&c);
        dispatch();
      }
    }
  }
  std::sort(latencies.begin(), latencies.end());
  const double span = last_done > measure_from
                        ? static_cast<double>(last_done - measure_from) / 1e9
                        : duration;
  std::printf("{\"offered_req_per_s\": %.0f, \"connections\": %d, \"duration_s\": %.1f, "
              "\"sent\": %llu, \"completed\": %zu, \"errors\": %llu, "
              "\"achieved_req_per_s\": %.0f, \"p50_us\": %.1f, \"p90_us\": %.1f, "
              "\"p99_us\": %.1f, \"p999_us\": %.1f, \"max_us\": %.1f}\n",
              rate, n_conn, duration, static_cast<unsigned long long>(sent_measured),
              latencies.size(), static_cast<unsigned long long>(errors),
              static_cast<double>(latencies.size()) / span, percentile(latencies, 0.5),
              percentile(latencies, 0.9), percentile(latencies, 0.99),
              percentile(latencies, 0.999), latencies.empty() ? 0.0 : latencies.back() / 1000.0);
  return latencies.size() == sent_measured ? 0 : 1;
}
