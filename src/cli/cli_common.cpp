#include "cli_common.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <iostream>
#include <limits>
#include <random>
#include <string_view>

namespace switchyard::cli {

namespace {

using ojson = nlohmann::ordered_json;
using json = nlohmann::json;

constexpr const char* usage =
  "usage: switchyard [demo [--requests N] [--concurrency N] [--seed S]]\n"
  "       switchyard run --config FILE --input FILE [--output FILE [--resume]]\n"
  "                      [--concurrency N] [--ordered] [--seed S]\n"
  "       switchyard check --config FILE\n"
  "       switchyard serve --config FILE [--host 127.0.0.1] [--port 4000] [--threads N]\n"
  "                      [--router-threads N]\n"
  "                      [--max-body-bytes N] [--max-in-flight N] [--grace-seconds N]\n"
  "                      [--max-connections N] [--header-timeout-ms N]\n"
  "                      [--keep-alive-timeout-ms N] [--max-stream-buffer-bytes N]\n"
  "                      [--allow-unauthenticated] [--seed S]\n"
  "\n"
  "  demo   route a few thousand requests through an embedded two-region\n"
  "         configuration with a failing region and a fallback group\n"
  "         (defaults: --requests 4000 --concurrency 256)\n"
  "  run    route OpenAI Batch-format requests (JSON lines) and write one\n"
  "         result line per request as each completes, N in flight\n"
  "         (default --concurrency 64); --ordered writes in input order;\n"
  "         --resume appends to --output, skipping the custom_ids it answers\n"
  "  check  validate a configuration; exit status 1 when it is invalid\n"
  "  serve  an OpenAI-compatible HTTP gateway (POST /v1/chat/completions,\n"
  "         GET /v1/models, /health/*, /metrics); SIGTERM drains and exits 0\n"
  "\n"
  "  SWITCHYARD_LOG_LEVEL=trace|debug|info|warn|error|critical|off sets the\n"
  "  log level (default warn); logs go to stderr.\n";

// Digits only: strtoull would accept "-1", "+5" and leading blanks.
std::optional<std::uint64_t> parse_unsigned(const std::string& text) {
  if (text.empty() || text.size() > 20
      || !std::all_of(text.begin(), text.end(),
                      [](unsigned char c) { return c >= '0' && c <= '9'; }))
    return std::nullopt;
  errno = 0;
  const unsigned long long v = std::strtoull(text.c_str(), nullptr, 10);
  if (errno == ERANGE)
    return std::nullopt;
  return static_cast<std::uint64_t>(v);
}

// Microsecond precision is plenty for a trace and keeps lines short.
double rounded_ms(double ms) {
  return std::round(ms * 1000.0) / 1000.0;
}

// A per-process prefix, so ids from two runs do not collide either.
std::string completion_id(std::uint64_t sequence) {
  static const std::uint32_t nonce = std::random_device{}();
  char buf[48];
  std::snprintf(buf, sizeof buf, "chatcmpl-%08x%016llx", nonce,
                static_cast<unsigned long long>(sequence));
  return buf;
}

ojson id_or_null(const custom_id& id) {
  return id ? ojson(*id) : ojson(nullptr);
}

ojson error_object(const router_error& e) {
  return ojson{{"type", std::string(name_of(e.kind))},
               {"code", e.status},
               {"message", e.message}};
}

ojson attempt_object(const attempt& a) {
  return ojson{{"deployment_id", a.deployment_id},
               {"model_group", a.model_group},
               {"outcome", a.outcome ? std::string(name_of(*a.outcome)) : "ok"},
               {"latency_ms", rounded_ms(a.latency_ms)}};
}

// The serving deployment and group are null when nothing served the request,
// so a consumer never mistakes an empty string for an id.
ojson trace_object(const route_result& r) {
  ojson attempts = ojson::array();
  for (const auto& a : r.attempts)
    attempts.push_back(attempt_object(a));
  return ojson{{"deployment_id", r.ok ? ojson(r.deployment_id) : ojson(nullptr)},
               {"model_group", r.ok ? ojson(r.model_group) : ojson(nullptr)},
               {"fallback_depth", r.fallback_depth},
               {"attempts", std::move(attempts)}};
}

ojson completion_object(const route_result& r, std::uint64_t sequence) {
  const std::int64_t prompt_tokens = r.prompt_tokens;
  const std::int64_t completion_tokens = r.completion_tokens;
  ojson message{{"role", "assistant"}, {"content", r.content}};
  ojson choice{{"index", 0}, {"message", std::move(message)}, {"finish_reason", r.finish_reason}};
  return ojson{{"id", completion_id(sequence)},
               {"object", "chat.completion"},
               {"created", static_cast<std::int64_t>(std::time(nullptr))},
               {"model", r.model},
               {"choices", ojson::array({std::move(choice)})},
               {"usage", ojson{{"prompt_tokens", prompt_tokens},
                               {"completion_tokens", completion_tokens},
                               {"total_tokens", prompt_tokens + completion_tokens}}}};
}

std::string output_line(const custom_id& id, ojson response, ojson error,
                        ojson trace) {
  const ojson line{{"custom_id", id_or_null(id)},
                   {"response", std::move(response)},
                   {"error", std::move(error)},
                   {"switchyard", std::move(trace)}};
  // Strings came from parsed JSON or our own config, but never let one bad
  // byte abort a whole batch.
  return line.dump(-1, ' ', false, ojson::error_handler_t::replace);
}

batch_line malformed(custom_id id, std::size_t line_no, const std::string& what) {
  return {std::move(id), std::nullopt,
          router_error::make(error_kind::bad_request, line_message(line_no, what))};
}

// nlohmann prefixes "[json.exception.parse_error.101] "; the rest says where.
std::string parse_error_text(const json::parse_error& e) {
  std::string what = e.what();
  const auto end = what.find("] ");
  return end == std::string::npos ? what : what.substr(end + 2);
}

bool is_string_field(const json& obj, const char* key, const char* expected) {
  auto i = obj.find(key);
  return i != obj.end() && i->is_string() && i->get_ref<const std::string&>() == expected;
}

} // namespace

const char* usage_text() noexcept {
  return usage;
}

std::string plural(std::size_t n, const char* word) {
  return std::to_string(n) + " " + word + (n == 1 ? "" : "s");
}

std::string format_number(const char* fmt, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

flags::flags(const args& a, const std::vector<std::string>& known,
             const std::vector<std::string>& switches) {
  const auto listed = [](const std::vector<std::string>& names, const std::string& name) {
    return std::find(names.begin(), names.end(), name) != names.end();
  };
  for (std::size_t i = 0; i < a.size(); ++i) {
    const std::string& arg = a[i];
    if (arg.rfind("--", 0) != 0)
      throw usage_error("unexpected argument '" + arg + "'");
    const auto eq = arg.find('=');
    const std::string name = arg.substr(0, eq);
    const bool is_switch = listed(switches, name);
    if (!is_switch && !listed(known, name))
      throw usage_error("unknown option '" + name + "'");
    std::string value;
    if (is_switch) {
      if (eq != std::string::npos)
        throw usage_error(name + " takes no value");
    } else if (eq != std::string::npos)
      value = arg.substr(eq + 1);
    else if (i + 1 < a.size() && a[i + 1].rfind("--", 0) != 0)
      value = a[++i];
    else
      throw usage_error(name + " needs a value");
    if (!values_.emplace(name, value).second)
      throw usage_error(name + " is given more than once");
  }
}

std::optional<std::string> flags::get(const std::string& name) const {
  auto i = values_.find(name);
  if (i == values_.end())
    return std::nullopt;
  return i->second;
}

bool flags::has(const std::string& name) const {
  return values_.count(name) != 0;
}

std::string flags::required(const std::string& name) const {
  auto v = get(name);
  if (!v || v->empty())
    throw usage_error(name + " FILE is required");
  return *v;
}

std::size_t flags::count(const std::string& name, std::size_t fallback) const {
  auto text = get(name);
  if (!text)
    return fallback;
  auto v = parse_unsigned(*text);
  if (!v || *v == 0 || *v > std::numeric_limits<std::uint32_t>::max())
    throw usage_error(name + ": expected a whole number >= 1, got '" + *text + "'");
  return static_cast<std::size_t>(*v);
}

std::optional<std::uint64_t> flags::seed(const std::string& name) const {
  auto text = get(name);
  if (!text)
    return std::nullopt;
  auto v = parse_unsigned(*text);
  if (!v)
    throw usage_error(name + ": expected a whole number from 0 to 2^64-1, got '"
                      + *text + "'");
  return v;
}

std::uint64_t flags::number(const std::string& name, std::uint64_t fallback,
                            std::uint64_t min, std::uint64_t max) const {
  auto text = get(name);
  if (!text)
    return fallback;
  auto v = parse_unsigned(*text);
  if (!v || *v < min || *v > max)
    throw usage_error(name + ": expected a whole number from " + std::to_string(min) + " to "
                      + std::to_string(max) + ", got '" + *text + "'");
  return *v;
}

void init_logging() {
  spdlog::set_default_logger(spdlog::stderr_color_mt("switchyard"));
  spdlog::set_level(spdlog::level::warn);
  const char* env = std::getenv("SWITCHYARD_LOG_LEVEL");
  if (!env || !*env)
    return;
  // from_str answers `off` for a name it does not know.
  const auto level = spdlog::level::from_str(env);
  if (level == spdlog::level::off && std::string(env) != "off") {
    spdlog::warn("SWITCHYARD_LOG_LEVEL: unknown level '{}', keeping warn", env);
    return;
  }
  spdlog::set_level(level);
}

std::optional<router_config> load_config_reporting(const std::string& file) {
  try {
    return load_config_file(file);
  } catch (const config_error& e) {
    report_config_problems(file, e.problems());
  }
  return std::nullopt;
}

void report_config_problems(const std::string& file,
                            const std::vector<config_problem>& problems) {
  std::cerr << "switchyard: configuration " << file << " has "
            << plural(problems.size(), "problem") << ":\n";
  for (const auto& p : problems)
    std::cerr << p.path << ": " << p.message << '\n';
}

std::string batch_result_line(const custom_id& id, const route_result& result,
                              std::uint64_t sequence) {
  if (!result.ok)
    return output_line(id, nullptr, error_object(result.error), trace_object(result));
  // The provider's complete answer as the router carries it; a body of
  // our own only for a transport that gave none.
  ojson response{{"status_code", 200},
                 {"body", result.response.is_object() ? ojson(result.response.value())
                                                      : completion_object(result, sequence)}};
  return output_line(id, std::move(response), nullptr, trace_object(result));
}

std::string batch_error_line(const custom_id& id, const router_error& error) {
  return output_line(id, nullptr, error_object(error), trace_object(route_result{}));
}

std::string line_message(std::size_t line_no, const std::string& what) {
  return "line " + std::to_string(line_no) + ": " + what;
}

std::optional<std::size_t> line_of_message(const std::string& message) {
  constexpr std::string_view prefix = "line ";
  if (message.compare(0, prefix.size(), prefix) != 0)
    return std::nullopt;
  const auto colon = message.find(": ", prefix.size());
  if (colon == std::string::npos)
    return std::nullopt;
  const auto n = parse_unsigned(message.substr(prefix.size(), colon - prefix.size()));
  if (!n || *n == 0)
    return std::nullopt;
  return static_cast<std::size_t>(*n);
}

// The envelope in file order of its fields, so the first problem reported is
// the first one a reader meets.
batch_line parse_batch_line(const std::string& text, std::size_t line_no) {
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::parse_error& e) {
    return malformed(std::nullopt, line_no, "not valid JSON: " + parse_error_text(e));
  } catch (const json::exception&) {
    // out_of_range: a number too large for a double ("1e999"). nlohmann's
    // message echoes the number, so it is not repeated.
    return malformed(std::nullopt, line_no, "not valid JSON: a number is too large");
  }
  if (!doc.is_object())
    return malformed(std::nullopt, line_no, "expected a JSON object");
  auto id = doc.find("custom_id");
  if (id == doc.end() || id->is_null())
    return malformed(std::nullopt, line_no, "custom_id: is required");
  if (!id->is_string())
    return malformed(std::nullopt, line_no, "custom_id: expected a string");
  custom_id cid = id->get<std::string>();
  if (!is_string_field(doc, "method", "POST"))
    return malformed(cid, line_no, "method: expected \"POST\"");
  if (!is_string_field(doc, "url", "/v1/chat/completions"))
    return malformed(cid, line_no, "url: expected \"/v1/chat/completions\"");
  auto body = doc.find("body");
  if (body == doc.end())
    return malformed(cid, line_no, "body: is required");
  parsed_request parsed = parse_chat_request(*body, "body");
  if (!parsed.request)
    return malformed(cid, line_no, parsed.error.message);
  return {std::move(cid), std::move(parsed.request), {}};
}

} // namespace switchyard::cli
