#include "cli_common.hpp"

#include "switchyard/router.hpp"

#include <spdlog/spdlog.h>

#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <mutex>

// `switchyard run`: OpenAI Batch-format lines in, one result line per
// request out, in input order. A bounded reorder window keeps at most
// --concurrency requests between "read" and "written", so memory stays flat
// however long the input is, and --concurrency 1 runs strictly in order.

namespace switchyard::cli {

namespace {

using json = nlohmann::json;

constexpr std::size_t default_concurrency = 64;

struct run_options {
  std::string config;
  std::string input;
  std::optional<std::string> output;
  std::size_t concurrency = default_concurrency;
  std::optional<std::uint64_t> seed;
};

run_options parse_run_options(const args& a) {
  const flags f(a, {"--config", "--input", "--output", "--concurrency", "--seed"});
  run_options o;
  o.config = f.required("--config");
  o.input = f.required("--input");
  o.output = f.get("--output");
  o.concurrency = f.count("--concurrency", default_concurrency);
  o.seed = f.seed("--seed");
  return o;
}

bool is_blank(const std::string& s) {
  return s.find_first_not_of(" \t\r\n") == std::string::npos;
}

/// Reads lines, strips a Windows line end, and counts physical lines (for
/// "line N" in errors).
class line_reader {
public:
  explicit line_reader(std::istream& in) : in_(in) {}

  bool next(std::string& line) {
    if (!std::getline(in_, line))
      return false;
    ++line_no_;
    if (!line.empty() && line.back() == '\r')
      line.pop_back();
    return true;
  }
  std::size_t line_no() const noexcept { return line_no_; }

private:
  std::istream& in_;
  std::size_t line_no_ = 0;
};

/// Output slots in input order. The main thread opens slots and writes
/// finished lines; router callbacks fill slots from worker threads. fill()
/// never waits on I/O: the main thread writes outside the lock.
class reorder_window {
public:
  using writer = std::function<void(const std::string&)>;

  reorder_window(std::size_t capacity, writer write)
    : capacity_(capacity), write_(std::move(write)) {}

  /// Waits for room (writing what is ready meanwhile); returns the slot's
  /// sequence number. Main thread only.
  std::uint64_t open_slot() {
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      write_ready(lock);
      if (slots_.size() < capacity_)
        break;
      wait_for_head(lock);
    }
    slots_.emplace_back();
    return first_seq_ + slots_.size() - 1;
  }

  /// Any thread.
  void fill(std::uint64_t seq, std::string line) {
    std::lock_guard<std::mutex> lock(mutex_);
    slots_[seq - first_seq_] = std::move(line);
    if (seq == first_seq_)
      head_filled_.notify_one();
  }

  /// Waits until every opened slot is written. Main thread only.
  void drain() {
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      write_ready(lock);
      if (slots_.empty())
        return;
      wait_for_head(lock);
    }
  }

private:
  // With a predicate: the head may have been filled while write_ready had
  // the lock released, and that notification is gone.
  void wait_for_head(std::unique_lock<std::mutex>& lock) {
    head_filled_.wait(lock, [this] { return slots_.front().has_value(); });
  }

  void write_ready(std::unique_lock<std::mutex>& lock) {
    std::vector<std::string> ready;
    while (!slots_.empty() && slots_.front()) {
      ready.push_back(std::move(*slots_.front()));
      slots_.pop_front();
      ++first_seq_;
    }
    if (ready.empty())
      return;
    lock.unlock();
    for (const auto& line : ready)
      write_(line);
    lock.lock();
  }

  std::mutex mutex_;
  std::condition_variable head_filled_;
  std::deque<std::optional<std::string>> slots_;
  std::uint64_t first_seq_ = 0;
  const std::size_t capacity_;
  writer write_;
};

std::size_t count_requests(const std::string& file) {
  std::ifstream in(file);
  std::string line;
  std::size_t n = 0;
  while (std::getline(in, line))
    n += is_blank(line) ? 0 : 1;
  return n;
}

/// A one-line progress bar on stderr, redrawn at most ten times a second.
/// Does nothing when stderr is not a terminal, so logs and pipes stay clean.
/// Main thread only.
class progress_bar {
public:
  explicit progress_bar(const std::string& input_file)
    : enabled_(isatty(STDERR_FILENO) != 0),
      // An extra pass over the input, paid only when someone watches.
      total_(enabled_ ? count_requests(input_file) : 0) {}

  void update(std::size_t done) {
    if (!enabled_)
      return;
    const auto now = std::chrono::steady_clock::now();
    if (done < total_ && now - last_draw_ < std::chrono::milliseconds(100))
      return;
    last_draw_ = now;
    constexpr std::size_t width = 40;
    const std::size_t filled = total_ ? std::min(done, total_) * width / total_ : width;
    std::cerr << "\r[" << std::string(filled, '#') << std::string(width - filled, ' ')
              << "] " << done << '/' << total_ << std::flush;
  }
  void finish() {
    if (enabled_)
      std::cerr << '\n';
  }

private:
  const bool enabled_;
  const std::size_t total_;
  std::chrono::steady_clock::time_point last_draw_{};
};

std::string io_error(const char* what, const std::string& file) {
  return std::string("cannot ") + what + " " + file + ": " + std::strerror(errno);
}

/// The destination of result lines: --output FILE or stdout.
class output_sink {
public:
  explicit output_sink(const std::optional<std::string>& file) {
    if (!file)
      return;
    file_.open(*file, std::ios::out | std::ios::trunc);
    if (!file_)
      throw std::runtime_error(io_error("write output file", *file));
  }
  std::ostream& stream() { return file_.is_open() ? file_ : std::cout; }

private:
  std::ofstream file_;
};

void open_input(const std::string& file, std::ifstream& in) {
  std::error_code ec;
  if (std::filesystem::is_directory(file, ec))
    throw std::runtime_error("cannot read input file " + file + ": is a directory");
  in.open(file);
  if (!in)
    throw std::runtime_error(io_error("read input file", file));
}

// One line: routed, or answered at once with its error. The callback runs on
// a router worker thread: it only formats the line and hands it over.
void submit(router& r, reorder_window& window, batch_line line) {
  const std::uint64_t seq = window.open_slot();
  if (!line.request) {
    window.fill(seq, batch_error_line(line.id, line.error));
    return;
  }
  r.async_complete(std::move(*line.request),
                   [&window, seq, id = std::move(line.id)](route_result res) {
                     window.fill(seq, batch_result_line(id, res, seq));
                   });
}

void route_all(router& r, line_reader& reader, reorder_window& window) {
  std::string text;
  while (reader.next(text)) {
    if (!is_blank(text))
      submit(r, window, parse_batch_line(text, reader.line_no()));
  }
  window.drain();
}

} // namespace

int run_command(const args& a) {
  const run_options o = parse_run_options(a);
  auto config = load_config_reporting(o.config);
  if (!config)
    return exit_failure;
  std::ifstream in;
  open_input(o.input, in);
  output_sink sink(o.output);
  std::ostream& out = sink.stream();

  progress_bar progress(o.input);
  std::size_t written = 0;
  reorder_window window(o.concurrency, [&](const std::string& line) {
    out << line << '\n';
    progress.update(++written);
  });
  line_reader reader(in);
  spdlog::info("run: {} model groups, {} deployments; input {}; concurrency {}",
               config->groups.size(), config->deployments.size(), o.input, o.concurrency);
  {
    // drain() has seen every answer; the router then stops here, so no
    // callback can touch the window afterwards.
    router r(std::move(*config), router_options{o.seed, 0});
    route_all(r, reader, window);
  }
  progress.finish();
  spdlog::info("run: wrote {} result lines from {} input lines", written, reader.line_no());
  out.flush();
  if (!out)
    throw std::runtime_error("writing results failed: " + std::string(std::strerror(errno)));
  if (in.bad())
    throw std::runtime_error(io_error("read input file", o.input));
  return exit_ok;
}

} // namespace switchyard::cli
