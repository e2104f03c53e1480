#pragma once

// What the `switchyard` subcommands share: argument parsing, logging set-up,
// config loading with problem reports, and the JSON lines `run` writes.
// Everything here runs on the CLI's main thread unless a function says
// otherwise. No CAF: the CLI only sees switchyard/router.hpp.

#include "switchyard/config.hpp"
#include "switchyard/request.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <ostream>
#include <stdexcept>
#include <string>
#include <vector>

namespace switchyard::cli {

using args = std::vector<std::string>;

/// `switchyard check --config FILE`
int check_command(const args& a);
/// `switchyard run --config FILE --input FILE [--output FILE [--resume]]
/// [--concurrency N] [--ordered] [--seed S]`
int run_command(const args& a);
/// `switchyard demo [--requests N] [--concurrency N] [--seed S] [--scenario outage]`
int demo_command(const args& a);
/// `switchyard serve --config FILE [--host H] [--port P] ...` (GATEWAY.md)
int serve_command(const args& a);

/// Exit statuses: 0 done, 1 failed (bad config, unreadable file), 2 bad usage.
inline constexpr int exit_ok = 0;
inline constexpr int exit_failure = 1;
inline constexpr int exit_usage = 2;

/// The usage text main prints for --help and after a usage error.
const char* usage_text() noexcept;

/// Bad command-line usage: main prints the message and the usage, exit 2.
class usage_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// Parsed `--flag value` / `--flag=value` options and `--switch`es (no
/// value) of one subcommand.
class flags {
public:
  /// Throws usage_error on a flag in neither `known` nor `switches`, a flag
  /// without a value, a switch with one, a repeated flag or a positional
  /// argument.
  flags(const args& a, const std::vector<std::string>& known,
        const std::vector<std::string>& switches = {});

  std::optional<std::string> get(const std::string& name) const;
  /// Whether the flag or switch was given.
  bool has(const std::string& name) const;
  /// The value, or a usage_error saying the flag is required.
  std::string required(const std::string& name) const;
  /// A whole number >= 1, or `fallback` when the flag is absent.
  std::size_t count(const std::string& name, std::size_t fallback) const;
  /// A 64-bit seed, or nullopt when the flag is absent.
  std::optional<std::uint64_t> seed(const std::string& name) const;
  /// A whole number in [min, max], or `fallback` when the flag is absent.
  std::uint64_t number(const std::string& name, std::uint64_t fallback, std::uint64_t min,
                       std::uint64_t max) const;

private:
  std::map<std::string, std::string> values_;
};

/// "1 problem", "3 problems".
std::string plural(std::size_t n, const char* word);
/// One number through printf's `fmt` ("%g", "%.2f").
std::string format_number(const char* fmt, double v);

/// spdlog's default logger on stderr (stdout carries results), level warn
/// unless SWITCHYARD_LOG_LEVEL names another.
void init_logging();

/// Loads and validates `file`. On failure prints every problem to stderr as
/// "path: message", one per line, and returns nullopt.
std::optional<router_config> load_config_reporting(const std::string& file);
/// Prints `problems` of configuration `file` as load_config_reporting does.
void report_config_problems(const std::string& file,
                            const std::vector<config_problem>& problems);

/// `custom_id` of a batch line: nullopt when the line had none usable.
using custom_id = std::optional<std::string>;

/// One `run` input line (an OpenAI Batch line), parsed: a request to
/// route, or the error that answers it.
struct batch_line {
  custom_id id;
  std::optional<chat_request> request;
  router_error error;
};

/// "line N: <what>", the message of an error about input line N.
std::string line_message(std::size_t line_no, const std::string& what);
/// N of a message line_message built; nullopt for any other message.
std::optional<std::size_t> line_of_message(const std::string& message);

/// Parses line `line_no` of `run` input: the JSON envelope (custom_id,
/// method POST, url /v1/chat/completions, body) in the order a reader meets
/// its fields, then parse_chat_request on the body. Every problem becomes
/// a BadRequestError "line N: <path>: <what>"; never throws.
batch_line parse_batch_line(const std::string& text, std::size_t line_no);

/// One line of `run` output (without the newline) for a routed request.
/// `sequence` (unique within the run) makes the chat.completion id unique;
/// `usage` is the router's estimate (switchyard/token_estimate.hpp).
/// Safe to call from any thread.
std::string batch_result_line(const custom_id& id, const route_result& result,
                              std::uint64_t sequence);
/// One line of `run` output for a request that never reached the router:
/// the same shape, with an empty trace.
std::string batch_error_line(const custom_id& id, const router_error& error);

} // namespace switchyard::cli
