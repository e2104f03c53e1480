#pragma once

// Captures what spdlog logs while one test runs (status lines, warnings),
// so that a test can assert on them.

#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <string>

namespace switchyard::test {

// The status lines and everything else logged while one test runs.
class captured_log {
public:
  captured_log()
    : sink_(std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(1000)),
      old_(spdlog::default_logger()) {
    spdlog::set_default_logger(std::make_shared<spdlog::logger>("test", sink_));
  }
  ~captured_log() { spdlog::set_default_logger(old_); }
  std::string all() const {
    std::string out;
    for (const auto& line : sink_->last_formatted())
      out += line;
    return out;
  }

private:
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink_;
  std::shared_ptr<spdlog::logger> old_;
};

} // namespace switchyard::test
