// `switchyard run` keeping N requests in flight (issue 12): lines written as
// requests complete, --ordered, --concurrency 1, and --resume after a kill
// or a signal. Every assertion is on an order, a count or a content, never
// on a duration: run_config.json's "slow" deployment answers after 3 s and
// "fast" at once, so "slow is answered last" holds on any machine where 20
// instant mock calls take less than 3 s.

#include "support/cli_runner.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace {

using json = nlohmann::json;
using namespace switchyard::test;

const std::string config = std::string(SWITCHYARD_TEST_DATA) + "/run_config.json";

std::string run_args(const std::string& input, const std::string& extra) {
  return "run --config " + quoted(config) + " --input " + quoted(input) + " " + extra;
}

std::string line_for(const std::string& custom_id, const std::string& model) {
  return request_line(custom_id, chat_body(model, custom_id));
}

/// Line 1 goes to "slow", lines 2..21 to "fast": ids "slow", "fast-0", ...
std::string slow_first_input() {
  return write_lines("slow_first.jsonl", 21, [](std::size_t i) {
    return i == 0 ? line_for("slow", "slow") : line_for("fast-" + std::to_string(i - 1), "fast");
  });
}

std::vector<std::string> input_order() {
  std::vector<std::string> ids{"slow"};
  for (int i = 0; i < 20; ++i)
    ids.push_back("fast-" + std::to_string(i));
  return ids;
}

std::vector<std::string> ids_of(const std::vector<json>& lines) {
  std::vector<std::string> ids;
  for (const auto& l : lines)
    ids.push_back(l["custom_id"].is_string() ? l["custom_id"].get<std::string>() : "<null>");
  return ids;
}

/// The input line numbers in the order the run logged their answers
/// (SWITCHYARD_LOG_LEVEL=debug): the order requests completed.
std::vector<std::size_t> answer_order(const std::string& err) {
  static const std::regex answered(R"(run: line (\d+) answered)");
  std::vector<std::size_t> lines;
  for (const auto& l : text_lines(err)) {
    std::smatch m;
    if (std::regex_search(l, m, answered))
      lines.push_back(std::stoul(m[1].str()));
  }
  return lines;
}

std::vector<std::size_t> one_to(std::size_t n) {
  std::vector<std::size_t> v(n);
  for (std::size_t i = 0; i < n; ++i)
    v[i] = i + 1;
  return v;
}

/// Input line numbers of the ids, for comparing written order with
/// answer order.
std::vector<std::size_t> line_numbers(const std::vector<std::string>& ids) {
  const auto order = input_order();
  std::vector<std::size_t> lines;
  for (const auto& id : ids)
    lines.push_back(std::find(order.begin(), order.end(), id) - order.begin() + 1);
  return lines;
}

std::map<std::string, int> id_counts(const std::vector<json>& lines) {
  std::map<std::string, int> n;
  for (const auto& id : ids_of(lines))
    ++n[id];
  return n;
}

std::size_t count_newlines(const std::string& path) {
  const std::string text = read_text(path);
  return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
}

/// `switchyard <args>` as a child process with stdout and stderr in files,
/// for tests that signal it mid-run. The destructor kills and reaps a
/// child still running, so a failed test never leaves one behind.
class background_run {
public:
  explicit background_run(const std::vector<std::string>& args)
    : err_(temp_file("background.err")) {
    std::vector<std::string> argv_text{cli_bin};
    argv_text.insert(argv_text.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : argv_text)
      argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO,
                                     temp_file("background.out").c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, err_.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int rc = posix_spawn(&pid_, cli_bin.c_str(), &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    REQUIRE(rc == 0);
  }
  ~background_run() {
    if (running()) {
      ::kill(pid_, SIGKILL);
      reap(0);
    }
  }
  background_run(const background_run&) = delete;
  background_run& operator=(const background_run&) = delete;

  bool running() {
    if (status_)
      return false;
    reap(WNOHANG);
    return !status_;
  }

  /// Polls until `path` holds `lines` complete lines or the child exits;
  /// whether it got there.
  bool wait_for_lines(const std::string& path, std::size_t lines) {
    // A bound only so that a broken run fails instead of hanging the suite.
    for (int i = 0; i < 60000; ++i) {
      if (count_newlines(path) >= lines)
        return true;
      if (!running())
        return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return false;
  }

  void signal(int sig) { REQUIRE(::kill(pid_, sig) == 0); }

  /// Waits for the child; its raw wait status.
  int wait() {
    if (!status_)
      reap(0);
    return *status_;
  }

  std::string err() const { return read_text(err_); }

private:
  void reap(int options) {
    int status = 0;
    if (::waitpid(pid_, &status, options) == pid_)
      status_ = status;
  }

  std::string err_;
  pid_t pid_ = -1;
  std::optional<int> status_;
};

/// 40 requests to "paced" (150 ms each), ids "p-0" ... "p-39".
std::string paced_input() {
  return write_lines("paced.jsonl", 40, [](std::size_t i) {
    return line_for("p-" + std::to_string(i), "paced");
  });
}

std::vector<std::string> paced_run_args(const std::string& input, const std::string& output) {
  return {"run", "--config", config, "--input", input, "--output", output, "--concurrency", "2"};
}

/// Every paced id exactly once.
void check_each_paced_id_once(const std::vector<json>& lines) {
  std::map<std::string, int> expected;
  for (int i = 0; i < 40; ++i)
    expected["p-" + std::to_string(i)] = 1;
  CHECK(id_counts(lines) == expected);
  for (const auto& l : lines)
    CHECK(l["response"]["status_code"] == 200);
}

/// The number in "<prefix><number>" in `text`, or -1.
long logged_number(const std::string& text, const std::string& prefix) {
  const auto at = text.find(prefix);
  return at == std::string::npos ? -1 : std::stol(text.substr(at + prefix.size()));
}

cli_result resume(const std::string& input, const std::string& output,
                  const std::string& extra = "") {
  return run_cli(run_args(input, "--output " + quoted(output) + " --resume " + extra),
                 "SWITCHYARD_LOG_LEVEL=info");
}

} // namespace

TEST_CASE("run: a slow request does not hold back the others: it is written last") {
  const cli_result r =
    run_cli(run_args(slow_first_input(), "--concurrency 4"), "SWITCHYARD_LOG_LEVEL=debug");
  REQUIRE(r.status == 0);
  const auto ids = ids_of(json_lines(r.out));
  REQUIRE(ids.size() == 21);
  CHECK(ids.back() == "slow");
  auto sorted = ids;
  std::sort(sorted.begin(), sorted.end());
  auto expected = input_order();
  std::sort(expected.begin(), expected.end());
  CHECK(sorted == expected);
  // Lines are written in the order their requests completed.
  CHECK(line_numbers(ids) == answer_order(r.err));
}

TEST_CASE("run: --ordered writes input order while the requests behind a slow one still run") {
  const cli_result r = run_cli(run_args(slow_first_input(), "--concurrency 4 --ordered"),
                               "SWITCHYARD_LOG_LEVEL=debug");
  REQUIRE(r.status == 0);
  CHECK(ids_of(json_lines(r.out)) == input_order());
  // Every fast request was answered before the slow first one: with one
  // request in flight, or a window of N that stalls behind the head, line 1
  // would be answered first.
  const auto answered = answer_order(r.err);
  REQUIRE(answered.size() == 21);
  CHECK(answered.back() == 1);
  auto sorted = answered;
  std::sort(sorted.begin(), sorted.end());
  CHECK(sorted == one_to(21));
}

TEST_CASE("run: --concurrency 1 runs and writes in input order") {
  const cli_result r =
    run_cli(run_args(slow_first_input(), "--concurrency 1"), "SWITCHYARD_LOG_LEVEL=debug");
  REQUIRE(r.status == 0);
  CHECK(ids_of(json_lines(r.out)) == input_order());
  CHECK(answer_order(r.err) == one_to(21));
}

TEST_CASE("run: --resume after a kill answers every custom_id exactly once") {
  const std::string input = paced_input();
  const std::string output = temp_file("killed.jsonl");
  std::filesystem::remove(output);
  {
    background_run run(paced_run_args(input, output));
    REQUIRE(run.wait_for_lines(output, 6));
    run.signal(SIGKILL);
    const int status = run.wait();
    REQUIRE(WIFSIGNALED(status));
  }
  // The kill came part-way: some lines, not all, each one whole.
  const std::string killed = read_text(output);
  auto lines = text_lines(killed);
  REQUIRE(lines.size() >= 6);
  REQUIRE(lines.size() < 40);
  // As if the kill had cut the last line in the middle of its write.
  const std::string cut = lines.back().substr(0, lines.back().size() / 2);
  lines.pop_back();
  std::string kept;
  for (const auto& l : lines)
    kept += l + "\n";
  write_text(output, kept + cut);

  const cli_result r = resume(input, output);
  INFO(r.err);
  REQUIRE(r.status == 0);
  CHECK(r.out.empty());
  CHECK(contains(r.err, "cut the unfinished last line (" + std::to_string(cut.size()) + " bytes)"));
  const std::string resumed = read_text(output);
  // The kept lines stay as they were; the rest is appended after them.
  CHECK(resumed.compare(0, kept.size(), kept) == 0);
  CHECK(resumed.back() == '\n');
  check_each_paced_id_once(json_lines(resumed));
  // No answered request ran again: the resumed run skipped exactly the kept
  // lines and wrote the others.
  CHECK(logged_number(r.err, "skipped ") == static_cast<long>(lines.size()));
  CHECK(logged_number(r.err, "wrote ") == static_cast<long>(40 - lines.size()));
}

TEST_CASE("run: SIGTERM stops reading and writes the requests in flight then exits 143 and --resume finishes") {
  const std::string input = paced_input();
  const std::string output = temp_file("terminated.jsonl");
  std::filesystem::remove(output);
  std::string err;
  {
    background_run run(paced_run_args(input, output));
    REQUIRE(run.wait_for_lines(output, 4));
    run.signal(SIGTERM);
    const int status = run.wait();
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 128 + SIGTERM);
    err = run.err();
  }
  INFO(err);
  CHECK(contains(err, "switchyard: interrupted by SIGTERM: stopped reading after input line "));
  CHECK(contains(err, "run again with --resume to continue"));
  const std::string text = read_text(output);
  REQUIRE(!text.empty());
  CHECK(text.back() == '\n');
  const auto lines = json_lines(text);
  CHECK(lines.size() < 40);
  // Every line it read was answered: the requests in flight were waited for.
  CHECK(logged_number(err, "stopped reading after input line ") == static_cast<long>(lines.size()));
  CHECK(contains(err, "wrote " + std::to_string(lines.size()) + " result line"));
  for (const auto& [id, n] : id_counts(lines))
    CHECK(n == 1);

  const cli_result r = resume(input, output);
  REQUIRE(r.status == 0);
  CHECK(read_text(output).compare(0, text.size(), text) == 0);
  check_each_paced_id_once(json_lines(read_text(output)));
}

TEST_CASE("run: --resume with --ordered appends the rest in input order") {
  const std::string input = paced_input();
  const std::string output = temp_file("ordered.jsonl");
  // Stand-in result lines: --resume only reads their custom_id.
  std::string answered;
  for (int i = 0; i < 40; i += 3)
    answered += json{{"custom_id", "p-" + std::to_string(i)}, {"response", nullptr},
                     {"error", nullptr}}.dump() + "\n";
  write_text(output, answered);
  const cli_result r = resume(input, output, "--ordered --concurrency 8");
  REQUIRE(r.status == 0);
  const auto lines = json_lines(read_text(output));
  REQUIRE(lines.size() == 40);
  std::vector<std::string> appended, expected;
  for (std::size_t i = 14; i < lines.size(); ++i)
    appended.push_back(lines[i]["custom_id"]);
  for (int i = 0; i < 40; ++i)
    if (i % 3 != 0)
      expected.push_back("p-" + std::to_string(i));
  CHECK(appended == expected);
}

TEST_CASE("run: --resume needs --output and the new switches take no value") {
  const std::string input = slow_first_input();
  const std::vector<std::pair<std::string, std::string>> cases{
    {run_args(input, "--resume"), "--resume needs --output FILE"},
    {run_args(input, "--ordered=yes"), "--ordered takes no value"},
    {run_args(input, "--ordered --ordered"), "--ordered is given more than once"},
  };
  check_usage_errors(cases);
}

TEST_CASE("run: --resume with an output file that does not exist runs everything") {
  const std::string output = temp_file("fresh.jsonl");
  std::filesystem::remove(output);
  const std::string input = write_lines("few.jsonl", 5, [](std::size_t i) {
    return line_for("f-" + std::to_string(i), "fast");
  });
  const cli_result r = resume(input, output);
  REQUIRE(r.status == 0);
  CHECK(id_counts(json_lines(read_text(output)))
        == std::map<std::string, int>{{"f-0", 1}, {"f-1", 1}, {"f-2", 1}, {"f-3", 1}, {"f-4", 1}});
}

TEST_CASE("run: a duplicate custom_id is an error line identified by its line number") {
  const std::string input = temp_file("dup.jsonl");
  write_text(input, line_for("a", "fast") + "\n" + line_for("b", "fast") + "\n"
                      + line_for("a", "fast") + "\n");
  const cli_result r = run_cli(run_args(input, "--ordered"));
  REQUIRE(r.status == 0);
  const auto lines = json_lines(r.out);
  REQUIRE(lines.size() == 3);
  CHECK(lines[0]["custom_id"] == "a");
  CHECK(lines[0]["response"]["status_code"] == 200);
  CHECK(lines[1]["custom_id"] == "b");
  check_failed(lines[2], "BadRequestError", 400, 0);
  CHECK(lines[2]["custom_id"].is_null());
  CHECK(lines[2]["error"]["message"] == "line 3: custom_id: already used on line 1");
}

TEST_CASE("run: --resume of a finished run with malformed and duplicate lines writes nothing") {
  const std::string input = temp_file("mixed.jsonl");
  write_text(input, line_for("a", "fast") + "\n" + "{not json\n"
                      + R"({"method": "POST", "url": "/v1/chat/completions", "body": {}})" + "\n"
                      + line_for("a", "fast") + "\n" + line_for("bad-body", "") + "\n"
                      + line_for("z", "fast") + "\n");
  const std::string output = temp_file("mixed.out.jsonl");
  const cli_result first = run_cli(run_args(input, "--concurrency 3"), "", output);
  REQUIRE(first.status == 0);
  REQUIRE(json_lines(first.output_file).size() == 6);

  const cli_result again = resume(input, output);
  INFO(again.err);
  REQUIRE(again.status == 0);
  CHECK(read_text(output) == first.output_file);
  CHECK(contains(again.err, "holds 6 result lines"));
  CHECK(contains(again.err, "skipped 6 input lines"));
  CHECK(contains(again.err, "wrote 0 result lines"));

  // Drop the answers to lines 2 (no JSON) and 4 (the duplicate): exactly
  // those two are answered again, by line number.
  std::string fewer;
  for (const auto& l : text_lines(first.output_file)) {
    const json j = json::parse(l);
    const std::string message = j["error"].is_object() ? j["error"]["message"] : "";
    if (message.rfind("line 2:", 0) != 0 && message.rfind("line 4:", 0) != 0)
      fewer += l + "\n";
  }
  write_text(output, fewer);
  const cli_result partial = resume(input, output);
  REQUIRE(partial.status == 0);
  const auto lines = json_lines(read_text(output));
  REQUIRE(lines.size() == 6);
  CHECK(lines[4]["custom_id"].is_null());
  CHECK(lines[5]["custom_id"].is_null());
  std::set<std::string> redone{lines[4]["error"]["message"].get<std::string>().substr(0, 7),
                               lines[5]["error"]["message"].get<std::string>().substr(0, 7)};
  CHECK(redone == std::set<std::string>{"line 2:", "line 4:"});
}

TEST_CASE("run: --resume cuts off a last line that is not JSON and refuses a file that is not run output") {
  const std::string input = write_lines("two.jsonl", 2, [](std::size_t i) {
    return line_for("t-" + std::to_string(i), "fast");
  });
  const std::string output = temp_file("foreign.jsonl");
  const std::string t0 =
    json{{"custom_id", "t-0"}, {"response", nullptr}, {"error", nullptr}}.dump() + "\n";

  SECTION("a whole last line that is not JSON is dropped and its request runs") {
    write_text(output, t0 + "}}garbage\n");
    const cli_result r = resume(input, output);
    REQUIRE(r.status == 0);
    CHECK(ids_of(json_lines(read_text(output))) == std::vector<std::string>{"t-0", "t-1"});
  }
  const std::vector<std::pair<std::string, std::string>> refused{
    {"}}garbage\n" + t0, "line 1: not valid JSON"},
    {t0 + R"({"id": 1})" + "\n", "line 2: not a result line: it has no custom_id"},
    {R"({"custom_id": 5})" "\n", "line 1: custom_id: expected a string or null"},
    {R"({"custom_id": null, "error": {"message": "boom"}})" "\n",
     "line 1: a result line with a null custom_id must have an error message naming its input line"},
  };
  for (const auto& [text, message] : refused) {
    INFO(text);
    write_text(output, text);
    const cli_result r = resume(input, output);
    CHECK(r.status == 1);
    CHECK(contains(r.err, "switchyard: cannot resume output file " + output + ": " + message));
    CHECK(read_text(output) == text);
  }
}
