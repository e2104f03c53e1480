#pragma once

// Runs the real `switchyard` binary as a process for the CLI tests
// (tests/cli): a scratch directory for inputs and captured output, small
// file helpers, and run_cli, which captures stdout, stderr, the exit status
// and, when asked, the --output file. Needs SWITCHYARD_BIN, the binary's
// path, defined by the test target.

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace switchyard::test {

inline const std::string cli_bin = SWITCHYARD_BIN;

/// One scratch directory per test process, removed at exit.
struct scratch_dir {
  std::string path;
  scratch_dir() {
    char tmpl[] = "/tmp/switchyard-cli-tests-XXXXXX";
    const char* made = mkdtemp(tmpl);
    path = made ? made : "/tmp";
  }
  ~scratch_dir() {
    std::error_code ec;
    if (path != "/tmp")
      std::filesystem::remove_all(path, ec);
  }
  scratch_dir(const scratch_dir&) = delete;
  scratch_dir& operator=(const scratch_dir&) = delete;
};

/// `name` in the process's scratch directory.
inline std::string temp_file(const std::string& name) {
  static scratch_dir dir;
  return dir.path + "/" + name;
}

inline std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

inline void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

/// `path` in single quotes, for the shell.
inline std::string quoted(const std::string& path) {
  return "'" + path + "'";
}

inline bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

inline std::vector<std::string> text_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    lines.push_back(line);
  return lines;
}

inline std::vector<nlohmann::json> json_lines(const std::string& text) {
  std::vector<nlohmann::json> out;
  for (const auto& line : text_lines(text))
    out.push_back(nlohmann::json::parse(line));
  return out;
}

struct cli_result {
  int status = -1;
  std::string out;
  std::string err;
  std::string output_file; ///< --output contents, when one was given
};

/// Runs `switchyard <arguments>` with `env` assignments ("A=1 B=2") in
/// front. With `output`, also passes `--output <output>` (removed first) and
/// reads it back into output_file.
inline cli_result run_cli(const std::string& arguments, const std::string& env = "",
                          const std::string& output = "") {
  const std::string out = temp_file("stdout.txt");
  const std::string err = temp_file("stderr.txt");
  if (!output.empty())
    std::filesystem::remove(output);
  // `timeout`: a hung run fails its test (status 124) instead of the suite.
  const std::string command = env + " timeout 120 " + quoted(cli_bin) + " " + arguments
                              + (output.empty() ? "" : " --output " + quoted(output)) + " >"
                              + quoted(out) + " 2>" + quoted(err) + " </dev/null";
  const int raw = std::system(command.c_str());
  return {WIFEXITED(raw) ? WEXITSTATUS(raw) : -1, read_text(out), read_text(err),
          output.empty() ? "" : read_text(output)};
}

/// Each (arguments, message) pair: `switchyard <arguments>` is a usage
/// error: exit 2, nothing on stdout, the message and the usage on stderr.
inline void check_usage_errors(const std::vector<std::pair<std::string, std::string>>& cases) {
  for (const auto& [arguments, message] : cases) {
    INFO(arguments);
    const cli_result r = run_cli(arguments);
    CHECK(r.status == 2);
    CHECK(r.out.empty());
    CHECK(contains(r.err, message));
    CHECK(contains(r.err, "usage: switchyard"));
  }
}

/// A result line's attempt trace as "deployment@group:outcome" strings, for
/// exact comparison.
inline std::vector<std::string> trace(const nlohmann::json& line) {
  std::vector<std::string> out;
  for (const auto& a : line["switchyard"]["attempts"])
    out.push_back(a["deployment_id"].get<std::string>() + "@"
                  + a["model_group"].get<std::string>() + ":"
                  + a["outcome"].get<std::string>());
  return out;
}

/// A result line that failed with error `type` and `code` at fallback
/// `depth`, with no deployment or group.
inline void check_failed(const nlohmann::json& line, const std::string& type, int code,
                         int depth) {
  INFO(line.dump());
  REQUIRE(line["response"].is_null());
  CHECK(line["error"]["type"] == type);
  CHECK(line["error"]["code"] == code);
  CHECK(line["switchyard"]["deployment_id"].is_null());
  CHECK(line["switchyard"]["model_group"].is_null());
  CHECK(line["switchyard"]["fallback_depth"] == depth);
}

/// A chat completion body: one user message with `content`.
inline nlohmann::json chat_body(const std::string& model, const std::string& content) {
  return {{"model", model},
          {"messages", nlohmann::json::array({{{"role", "user"}, {"content", content}}})}};
}

/// One batch API input line: POST /v1/chat/completions with `body`.
inline std::string request_line(const std::string& custom_id, const nlohmann::json& body) {
  return nlohmann::json{
    {"custom_id", custom_id}, {"method", "POST"}, {"url", "/v1/chat/completions"}, {"body", body}}
    .dump();
}

/// Writes lines `line(0)` ... `line(n - 1)` to `name` in the scratch
/// directory; returns its path.
inline std::string write_lines(const std::string& name, std::size_t n,
                               const std::function<std::string(std::size_t)>& line) {
  std::string text;
  for (std::size_t i = 0; i < n; ++i)
    text += line(i) + "\n";
  const std::string path = temp_file(name);
  write_text(path, text);
  return path;
}

/// Result lines without the fields that differ between identical runs:
/// completion ids, creation times, latencies; one dump a line.
inline std::string without_volatile_fields(const std::vector<nlohmann::json>& lines) {
  std::string kept;
  for (nlohmann::json line : lines) {
    if (line["response"].is_object()) {
      line["response"]["body"].erase("id");
      line["response"]["body"].erase("created");
    }
    for (auto& a : line["switchyard"]["attempts"])
      a.erase("latency_ms");
    kept += line.dump() + "\n";
  }
  return kept;
}

inline std::string without_volatile_fields(const std::string& out) {
  return without_volatile_fields(json_lines(out));
}

} // namespace switchyard::test
