#pragma once

// The serve command's log sink when stderr is not a terminal: lines are
// gathered in memory and written with one write(2) per batch instead of
// one per line. Under load the per-request access line (GATEWAY.md
// "Logging") was a write system call per request, about 6 us of the
// gateway's CPU per request on the benchmark machine. A batch goes out
// when it reaches `batch_bytes`, with the first line logged `max_delay`
// after the last write, and on flush() (spdlog's periodic flusher, every
// second in spdlog 1.10, for a server gone idle; a warning or worse; the
// end of the process).
//
// Threading: spdlog's base_sink serialises every call with its mutex.

#include <spdlog/sinks/base_sink.h>

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <mutex>
#include <string>

namespace switchyard::server {

class buffered_log_sink final : public spdlog::sinks::base_sink<std::mutex> {
public:
  explicit buffered_log_sink(int fd = STDERR_FILENO, std::size_t batch_bytes = 32 * 1024,
                             std::chrono::milliseconds max_delay = std::chrono::milliseconds(100))
    : fd_(fd), batch_bytes_(batch_bytes), max_delay_(max_delay) {
    buffer_.reserve(batch_bytes_ * 2);
  }
  ~buffered_log_sink() override {
    std::lock_guard<std::mutex> lock(mutex_);
    write_out();
  }

protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t formatted;
    formatter_->format(msg, formatted);
    buffer_.append(formatted.data(), formatted.size());
    if (buffer_.size() >= batch_bytes_
        || std::chrono::steady_clock::now() - written_ >= max_delay_)
      write_out();
  }
  void flush_() override { write_out(); }

private:
  void write_out() {
    std::size_t done = 0;
    while (done < buffer_.size()) {
      const auto n = ::write(fd_, buffer_.data() + done, buffer_.size() - done);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        break; // a closed stderr: drop the lines rather than block or spin
      done += static_cast<std::size_t>(n);
    }
    buffer_.clear();
    written_ = std::chrono::steady_clock::now();
  }

  int fd_;
  std::size_t batch_bytes_;
  std::chrono::milliseconds max_delay_;
  std::chrono::steady_clock::time_point written_ = std::chrono::steady_clock::now();
  std::string buffer_;
};

} // namespace switchyard::server
