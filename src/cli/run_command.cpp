#include "cli_common.hpp"

#include "switchyard/router.hpp"

#include <spdlog/spdlog.h>

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <utility>

// `switchyard run`: OpenAI Batch-format lines in, one result line per
// request out. At most --concurrency requests are in flight, and each line
// is written as its request completes: OpenAI's Batch output promises no
// order either and custom_id identifies each line, so a slow request holds
// back nobody. --ordered writes in input order through a bounded reorder
// buffer; --resume continues an --output file an interrupted run left.

namespace switchyard::cli {

namespace {

using json = nlohmann::json;

constexpr std::size_t default_concurrency = 64;

// With --ordered at most reorder_factor * N lines are between read and
// written (at most N of them in flight): a slow request holds back the
// writing of later answers, but the others keep running until this many
// wait behind it. 16 answers per slot covers a request 16 times slower than
// the rest at full concurrency, and costs a few MB at the default N.
constexpr std::size_t reorder_factor = 16;

struct run_options {
  std::string config;
  std::string input;
  std::optional<std::string> output;
  std::size_t concurrency = default_concurrency;
  std::optional<std::uint64_t> seed;
  bool ordered = false;
  bool resume = false;
};

run_options parse_run_options(const args& a) {
  const flags f(a, {"--config", "--input", "--output", "--concurrency", "--seed"},
                {"--ordered", "--resume"});
  run_options o;
  o.config = f.required("--config");
  o.input = f.required("--input");
  o.output = f.get("--output");
  o.concurrency = f.count("--concurrency", default_concurrency);
  o.seed = f.seed("--seed");
  o.ordered = f.has("--ordered");
  o.resume = f.has("--resume");
  if (o.resume && !o.output)
    throw usage_error("--resume needs --output FILE: it continues that file");
  return o;
}

bool is_blank(const std::string& s) {
  return s.find_first_not_of(" \t\r\n") == std::string::npos;
}

std::string io_error(const char* what, const std::string& file) {
  return std::string("cannot ") + what + " " + file + ": " + std::strerror(errno);
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

/// What an earlier run wrote to --output: the custom_ids it answered, and
/// the input lines without a usable custom_id it answered (their error
/// message names the line). Built once before the run, then read-only.
struct answered {
  std::unordered_set<std::string> ids;
  std::unordered_set<std::size_t> lines;
  std::size_t count = 0;

  bool has(const batch_line& b, std::size_t line_no) const {
    return b.id ? ids.count(*b.id) != 0 : lines.count(line_no) != 0;
  }
};

/// Why a line of --output is not a result line, and whether it is JSON at all.
struct line_problem {
  bool json = true;
  std::string what;
};

/// Records one complete --output line in `a`, or says what is wrong with it.
std::optional<line_problem> record_answer(const std::string& line, answered& a) {
  json doc;
  try {
    doc = json::parse(line);
  } catch (const json::exception&) {
    return line_problem{false, "not valid JSON"};
  }
  const auto id = doc.is_object() ? doc.find("custom_id") : doc.end();
  if (!doc.is_object() || id == doc.end())
    return line_problem{true, "not a result line: it has no custom_id"};
  if (id->is_string()) {
    a.ids.insert(id->get<std::string>());
  } else if (id->is_null()) {
    const json& error = doc.value("error", json());
    const json& message = error.is_object() ? error.value("message", json()) : json();
    const auto n = message.is_string() ? line_of_message(message.get<std::string>())
                                       : std::nullopt;
    if (!n)
      return line_problem{true, "a result line with a null custom_id must have an error "
                                "message naming its input line (\"line N: ...\")"};
    a.lines.insert(*n);
  } else {
    return line_problem{true, "custom_id: expected a string or null"};
  }
  ++a.count;
  return std::nullopt;
}

/// Reads --output for --resume. A missing file: nothing answered yet. The
/// last line, when it has no newline or is not valid JSON, was being written
/// when the run stopped: it is cut off the file, so appended lines start a
/// line of their own, and its request runs again. Any other line that is
/// not a result line means the file is not one `run` wrote: an error that
/// leaves the file as it is.
answered read_answered(const std::string& file) {
  answered a;
  std::error_code ec;
  if (!std::filesystem::exists(file, ec))
    return a;
  if (std::filesystem::is_directory(file, ec))
    throw std::runtime_error("cannot resume output file " + file + ": is a directory");
  std::ifstream in(file, std::ios::binary);
  if (!in)
    throw std::runtime_error(io_error("read output file", file));
  std::uintmax_t kept = 0; // bytes of the result lines read so far
  std::size_t line_no = 0;
  const auto not_resumable = [&](std::size_t at, const std::string& what) {
    return std::runtime_error("cannot resume output file " + file + ": line "
                              + std::to_string(at) + ": " + what);
  };
  std::optional<line_problem> not_json; // fine only on the last line
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    if (not_json)
      throw not_resumable(line_no - 1, not_json->what);
    if (in.eof())
      break; // no newline: cut short
    if (auto problem = record_answer(line, a)) {
      if (problem->json)
        throw not_resumable(line_no, problem->what);
      not_json = std::move(problem);
      continue;
    }
    kept += line.size() + 1;
  }
  if (in.bad())
    throw std::runtime_error(io_error("read output file", file));
  const std::uintmax_t size = std::filesystem::file_size(file, ec);
  if (!ec && kept < size) {
    std::filesystem::resize_file(file, kept, ec);
    if (ec)
      throw std::runtime_error("cannot cut the unfinished last line off " + file + ": "
                               + ec.message());
    spdlog::info("run: --resume: cut the unfinished last line ({} bytes) off {}",
                 size - kept, file);
  }
  return a;
}

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

/// The destination of result lines: --output FILE (appended to with
/// --resume) or stdout.
class output_sink {
public:
  output_sink(const std::optional<std::string>& file, bool append) {
    if (!file)
      return;
    file_.open(*file, std::ios::out | (append ? std::ios::app : std::ios::trunc));
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

/// A routed request's result line, formatted on the worker thread.
struct answer {
  std::uint64_t seq = 0;
  std::size_t line_no = 0;
  std::string line;
};

/// Hands answers from router worker threads to the main thread, and wakes
/// it for a stop signal. push() and stop() never wait on I/O: they hold the
/// lock only to append. take() is for the main thread.
class answer_queue {
public:
  void push(answer a) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      items_.push_back(std::move(a));
    }
    ready_.notify_one();
  }

  void stop(int signal) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (signal_ == 0)
        signal_ = signal;
    }
    ready_.notify_one();
  }

  /// Waits for answers or for a stop signal other than `signal`, the one
  /// the caller already knows (0: none); updates `signal`.
  std::vector<answer> take(int& signal) {
    std::unique_lock<std::mutex> lock(mutex_);
    ready_.wait(lock, [&] { return !items_.empty() || signal_ != signal; });
    signal = signal_;
    return std::exchange(items_, {});
  }

private:
  std::mutex mutex_;
  std::condition_variable ready_;
  std::vector<answer> items_;
  int signal_ = 0;
};

/// SIGINT and SIGTERM for the length of a run. Blocks both in the calling
/// thread before the router starts its threads, which inherit the mask, and
/// waits for them on a thread of its own: the first asks the run to stop
/// (answer_queue::stop), a second exits at once without waiting for the
/// requests in flight. Construct and destroy on the main thread.
class stop_signals {
public:
  explicit stop_signals(answer_queue& queue) {
    sigemptyset(&set_);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set_, &old_);
    thread_ = std::thread([this, &queue] { watch(queue); });
  }
  ~stop_signals() {
    done_ = true;
    pthread_kill(thread_.native_handle(), SIGTERM);
    thread_.join();
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  stop_signals(const stop_signals&) = delete;
  stop_signals& operator=(const stop_signals&) = delete;

private:
  void watch(answer_queue& queue) {
    for (int seen = 0;;) {
      int signal = 0;
      if (sigwait(&set_, &signal) != 0 || done_)
        return;
      if (++seen == 1) {
        queue.stop(signal);
        continue;
      }
      // The lines written so far are flushed; at worst the one being
      // written is cut short, which --resume cuts off.
      constexpr char message[] =
        "switchyard: second signal: exiting without waiting for the requests in flight\n";
      [[maybe_unused]] const auto n = ::write(STDERR_FILENO, message, sizeof message - 1);
      std::_Exit(128 + signal);
    }
  }

  sigset_t set_{};
  sigset_t old_{};
  std::atomic<bool> done_{false};
  std::thread thread_;
};

/// Puts result lines into the output through `write`: each as it comes, or
/// with --ordered in input order, holding an answer until every earlier one
/// is written. Main thread only.
class result_order {
public:
  using writer = std::function<void(const std::string&)>;

  result_order(bool ordered, writer write) : ordered_(ordered), write_(std::move(write)) {}

  /// The sequence number of the next line; with --ordered, its slot.
  std::uint64_t open() {
    if (ordered_)
      slots_.emplace_back();
    return next_seq_++;
  }

  void deliver(std::uint64_t seq, std::string line) {
    if (!ordered_) {
      write_(line);
      return;
    }
    slots_[seq - first_seq_] = std::move(line);
    while (!slots_.empty() && slots_.front()) {
      write_(*slots_.front());
      slots_.pop_front();
      ++first_seq_;
    }
  }

  /// Lines opened and not yet written (always 0 without --ordered).
  std::size_t unwritten() const noexcept { return slots_.size(); }

private:
  const bool ordered_;
  writer write_;
  std::deque<std::optional<std::string>> slots_;
  std::uint64_t first_seq_ = 0;
  std::uint64_t next_seq_ = 0;
};

/// One run over the input: keeps up to N requests in flight, writes their
/// lines, skips what --resume found answered, and stops reading on a
/// signal. Main thread only; router callbacks reach it through the queue.
class batch_run {
public:
  batch_run(router& r, answer_queue& queue, const run_options& o, answered done,
            std::ostream& out, progress_bar& progress)
    : router_(r),
      queue_(queue),
      concurrency_(o.concurrency),
      window_(o.ordered ? o.concurrency * reorder_factor : o.concurrency),
      done_(std::move(done)),
      out_(out),
      progress_(progress),
      order_(o.ordered, [this](const std::string& line) { write_line(line); }) {}

  /// Runs to the end of the input, or until a signal; returns the signal
  /// (0: none). Every request it started has its answer when it returns.
  int run(line_reader& reader) {
    int signal = 0;
    bool more = true;
    std::string text;
    for (;;) {
      // The window check only binds with --ordered: it keeps a slow head
      // line from letting answers pile up without bound.
      while (more && signal == 0 && in_flight_ < concurrency_ && order_.unwritten() < window_) {
        if (!reader.next(text))
          more = false;
        else if (!is_blank(text))
          take_line(text, reader.line_no());
      }
      flush();
      // An unwritten line always waits on a request in flight, so the
      // queue has an answer coming whenever we wait.
      if (in_flight_ == 0 && (!more || signal != 0))
        return signal;
      for (answer& a : queue_.take(signal)) {
        --in_flight_;
        spdlog::debug("run: line {} answered", a.line_no);
        order_.deliver(a.seq, std::move(a.line));
      }
    }
  }

  std::size_t written() const noexcept { return written_; }
  std::size_t skipped() const noexcept { return skipped_; }

private:
  // A custom_id seen before in this input is not usable: the line gets an
  // error line with a null custom_id, identified by its line number.
  void take_line(const std::string& text, std::size_t line_no) {
    batch_line b = parse_batch_line(text, line_no);
    if (b.id) {
      const auto [first, fresh] = first_line_.emplace(*b.id, line_no);
      if (!fresh)
        b = {std::nullopt, std::nullopt,
             router_error::make(error_kind::bad_request,
                                line_message(line_no, "custom_id: already used on line "
                                                        + std::to_string(first->second)))};
    }
    if (done_.has(b, line_no)) {
      ++skipped_;
      return;
    }
    const std::uint64_t seq = order_.open();
    if (!b.request) {
      order_.deliver(seq, batch_error_line(b.id, b.error));
      return;
    }
    ++in_flight_;
    // Runs on a router worker thread: it only formats the line and hands it
    // over.
    router_.async_complete(std::move(*b.request),
                           [q = &queue_, seq, line_no, id = std::move(b.id)](route_result res) {
                             q->push({seq, line_no, batch_result_line(id, res, seq)});
                           });
  }

  // The one place a result line is written.
  void write_line(const std::string& line) {
    out_ << line << '\n';
    ++written_;
    progress_.update(skipped_ + written_);
  }

  // Before every wait, so what is written survives a kill.
  void flush() {
    out_.flush();
    if (!out_)
      throw std::runtime_error("writing results failed: " + std::string(std::strerror(errno)));
  }

  router& router_;
  answer_queue& queue_;
  const std::size_t concurrency_;
  const std::size_t window_;
  const answered done_;
  std::ostream& out_;
  progress_bar& progress_;
  result_order order_;
  // custom_id -> the line that first used it: the only state that grows
  // with the input (tens of bytes a line).
  std::unordered_map<std::string, std::size_t> first_line_;
  std::size_t in_flight_ = 0;
  std::size_t written_ = 0;
  std::size_t skipped_ = 0;
};

const char* signal_name(int signal) {
  return signal == SIGINT ? "SIGINT" : signal == SIGTERM ? "SIGTERM" : "a signal";
}

} // namespace

int run_command(const args& a) {
  const run_options o = parse_run_options(a);
  auto config = load_config_reporting(o.config);
  if (!config)
    return exit_failure;
  std::ifstream in;
  open_input(o.input, in);
  answered done = o.resume ? read_answered(*o.output) : answered{};
  if (o.resume)
    spdlog::info("run: --resume: {} holds {} result lines", *o.output, done.count);
  output_sink sink(o.output, o.resume);
  std::ostream& out = sink.stream();

  progress_bar progress(o.input);
  line_reader reader(in);
  spdlog::info("run: {} model groups, {} deployments; input {}; concurrency {}{}",
               config->groups.size(), config->deployments.size(), o.input, o.concurrency,
               o.ordered ? ", ordered" : "");
  // Declared before the router: callbacks may push into the queue until the
  // router is gone, and the router's threads must start with the signals
  // blocked.
  answer_queue queue;
  stop_signals signals(queue);
  int signal = 0;
  std::size_t written = 0;
  std::size_t skipped = 0;
  {
    router_options ro;
    ro.seed = o.seed;
    router r(std::move(*config), ro);
    batch_run batch(r, queue, o, std::move(done), out, progress);
    signal = batch.run(reader);
    written = batch.written();
    skipped = batch.skipped();
  }
  progress.finish();
  if (o.resume)
    spdlog::info("run: --resume: skipped {} input lines answered before", skipped);
  spdlog::info("run: wrote {} result lines from {} input lines", written, reader.line_no());
  if (in.bad())
    throw std::runtime_error(io_error("read input file", o.input));
  if (signal != 0) {
    std::cerr << "switchyard: interrupted by " << signal_name(signal)
              << ": stopped reading after input line " << reader.line_no() << ", wrote "
              << plural(written, "result line")
              << (o.output ? "; run again with --resume to continue" : "") << '\n';
    return 128 + signal;
  }
  return exit_ok;
}

} // namespace switchyard::cli
