// Bad input through the real router and the request parser: every bad
// request is answered once, with a BadRequestError (400) whose message names
// the offending field's path, and never echoes the offending value.
//
// `route_body` mirrors what `switchyard run` does with a line's body:
// parse_chat_request, then either that error is the answer or the router
// routes the request.

#include "switchyard/config.hpp"
#include "switchyard/request.hpp"
#include "switchyard/router.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <string>
#include <utility>
#include <vector>

namespace {

using json = nlohmann::json;
using switchyard::error_kind;

constexpr const char* config_text = R"({
  "model_list": [
    {"model_name": "gpt-4o", "litellm_params": {"model": "azure/a", "mock_response": "hi"},
     "model_info": {"id": "a"}},
    {"model_name": "mini", "litellm_params": {"model": "openai/mini", "mock_response": "small hi"},
     "model_info": {"id": "m"}}
  ],
  "router_settings": {"num_retries": 0}
})";

switchyard::router make_router() {
  switchyard::router_options o;
  o.seed = 3;
  o.threads = 2;
  return switchyard::router{switchyard::load_config_text(config_text), o};
}

/// What `run` answers for a body: the parser's error, or the router's answer.
switchyard::route_result route_body(switchyard::router& router, const json& body) {
  auto parsed = switchyard::parse_chat_request(body, "body");
  if (!parsed.request) {
    switchyard::route_result r;
    r.error = parsed.error;
    return r;
  }
  return router.complete(std::move(*parsed.request));
}

json hello_messages() {
  return json::array({{{"role", "user"}, {"content", "hello"}}});
}

void require_bad_request(const switchyard::route_result& r, const std::string& message) {
  CHECK_FALSE(r.ok);
  CHECK(r.error.kind == error_kind::bad_request);
  CHECK(r.error.status == 400);
  CHECK(r.error.message == message);
  CHECK(r.attempts.empty());
}

// A value that must never be quoted back (it could be anything a caller
// sent, a key pasted in the wrong field included).
const std::string planted = "sk-planted-in-the-wrong-field";

} // namespace

TEST_CASE("bad input: a request for an unknown model group is a BadRequestError naming it") {
  auto router = make_router();
  SECTION("through the router, answered at once without an attempt") {
    switchyard::chat_request req;
    req.model = "gpt-5";
    req.messages = hello_messages();
    const auto r = router.complete(req);
    CHECK_FALSE(r.ok);
    CHECK(r.error.kind == error_kind::bad_request);
    CHECK(r.error.status == 400);
    CHECK(r.error.message.find("'gpt-5'") != std::string::npos);
    CHECK(r.error.message.find("known: gpt-4o, mini") != std::string::npos);
    CHECK(r.attempts.empty());
    CHECK(r.fallback_depth == 0);
  }
  SECTION("through the parser and the router, as run does") {
    const auto r = route_body(router, {{"model", "gpt-5"}, {"messages", hello_messages()}});
    CHECK(r.error.kind == error_kind::bad_request);
    CHECK(r.error.message.find("'gpt-5'") != std::string::npos);
    CHECK(r.attempts.empty());
  }
  SECTION("the router still serves good requests afterwards") {
    for (int i = 0; i < 3; ++i)
      CHECK_FALSE(route_body(router, {{"model", "nope"}, {"messages", hello_messages()}}).ok);
    const auto r = route_body(router, {{"model", "gpt-4o"}, {"messages", hello_messages()}});
    CHECK(r.ok);
    CHECK(r.content == "hi");
  }
}

TEST_CASE("bad input: empty messages and wrong types are a BadRequestError naming the path") {
  auto router = make_router();
  const json msgs = hello_messages();
  const std::vector<std::pair<json, std::string>> cases{
    {json::array(), "body: expected a JSON object"},
    {"a string body", "body: expected a JSON object"},
    {{{"messages", msgs}}, "body.model: is required"},
    {{{"model", 42}, {"messages", msgs}}, "body.model: expected a non-empty string"},
    {{{"model", ""}, {"messages", msgs}}, "body.model: expected a non-empty string"},
    {{{"model", json::array({planted})}, {"messages", msgs}},
     "body.model: expected a non-empty string"},
    {{{"model", "gpt-4o"}}, "body.messages: is required"},
    {{{"model", "gpt-4o"}, {"messages", json::array()}},
     "body.messages: expected a non-empty array"},
    {{{"model", "gpt-4o"}, {"messages", {{"role", "user"}, {"content", "hi"}}}},
     "body.messages: expected a non-empty array"},
    {{{"model", "gpt-4o"}, {"messages", planted}}, "body.messages: expected a non-empty array"},
    {{{"model", "gpt-4o"}, {"messages", json::array({"hello"})}},
     "body.messages[0]: expected an object"},
    {{{"model", "gpt-4o"}, {"messages", json::array({{{"role", "user"}, {"content", 42}}})}},
     "body.messages[0].content: expected a string or an array of content parts"},
    {{{"model", "gpt-4o"},
      {"messages", json::array({{{"role", "user"}, {"content", {{"key", planted}}}}})}},
     "body.messages[0].content: expected a string or an array of content parts"},
    {{{"model", "gpt-4o"}, {"messages", json::array({{{"role", "user"}}})}},
     "body.messages[0].content: is required"},
    {{{"model", "gpt-4o"}, {"messages", json::array({{{"content", "hi"}}})}},
     "body.messages[0].role: is required"},
    {{{"model", "gpt-4o"}, {"messages", json::array({{{"role", 7}, {"content", "hi"}}})}},
     "body.messages[0].role: expected a string"},
    {{{"model", "gpt-4o"},
      {"messages", json::array({msgs[0], {{"role", "user"}, {"content", json::array({"x"})}}})}},
     "body.messages[1].content[0]: expected an object"},
    {{{"model", "gpt-4o"}, {"messages", msgs}, {"num_retries", -1}},
     "body.num_retries: expected an integer >= 0"},
    {{{"model", "gpt-4o"}, {"messages", msgs}, {"num_retries", 1.5}},
     "body.num_retries: expected an integer >= 0"},
    {{{"model", "gpt-4o"}, {"messages", msgs}, {"timeout", 0}},
     "body.timeout: expected a number > 0"},
    {{{"model", "gpt-4o"}, {"messages", msgs}, {"timeout", "30"}},
     "body.timeout: expected a number > 0"},
    {{{"model", "gpt-4o"}, {"messages", msgs}, {"cooldown_time", -1}},
     "body.cooldown_time: expected a number >= 0"},
    {{{"model", "gpt-4o"}, {"messages", msgs}, {"stream", "yes"}},
     "body.stream: expected true or false"},
    {{{"model", "gpt-4o"}, {"messages", msgs}, {"disable_fallbacks", 1}},
     "body.disable_fallbacks: expected true or false"},
    {{{"model", "gpt-4o"}, {"messages", msgs}, {"mock_testing_context_fallbacks", "true"}},
     "body.mock_testing_context_fallbacks: expected true or false"},
    {{{"model", "gpt-4o"}, {"messages", msgs}, {"mock_response", 42}},
     "body.mock_response: expected a string, an {\"error\": ...} or a {\"content\": ...} object"},
    {{{"model", "gpt-4o"}, {"messages", msgs}, {"mock_response", {{"error", 429}}}},
     "body.mock_response.error: expected a non-empty string"},
    // The first problem in body order is the one reported.
    {{{"model", 42}, {"messages", json::object()}}, "body.model: expected a non-empty string"},
  };
  for (const auto& [body, message] : cases) {
    INFO("body: " << body.dump());
    const auto r = route_body(router, body);
    require_bad_request(r, message);
    CHECK(r.error.message.find(planted) == std::string::npos);
  }
}

TEST_CASE("bad input: an unknown mock error kind lists the kinds without echoing the name") {
  const json body{{"model", "gpt-4o"},
                  {"messages", hello_messages()},
                  {"mock_response", "litellm." + planted}};
  const auto parsed = switchyard::parse_chat_request(body, "body");
  REQUIRE_FALSE(parsed.request);
  CHECK(parsed.error.kind == error_kind::bad_request);
  CHECK(parsed.error.message.rfind("body.mock_response: unknown error kind; expected one of: ",
                                   0)
        == 0);
  CHECK(parsed.error.message.find(planted) == std::string::npos);
}

TEST_CASE("bad input: hand-built requests the parser would refuse get exactly one answer, the parser's error") {
  // The embedding API takes a chat_request as the caller built it; the
  // router validates it as parse_chat_request would, and answers it once
  // with the first problem's path.
  auto router = make_router();
  std::vector<switchyard::chat_request> requests(4);
  requests[0].model = "";
  requests[0].messages = hello_messages();
  requests[1].model = "gpt-4o";
  requests[1].messages = json::array();
  requests[2].model = "gpt-4o";
  requests[2].messages = 42;
  requests[3].model = "mini";
  requests[3].messages = json::array({{{"role", 1}, {"content", json::object()}}, "x", nullptr});

  std::vector<std::atomic<int>> answers(requests.size());
  std::promise<void> all;
  std::atomic<std::size_t> left{requests.size()};
  std::vector<switchyard::route_result> results(requests.size());
  for (std::size_t i = 0; i < requests.size(); ++i)
    router.async_complete(requests[i], [&, i](switchyard::route_result r) {
      results[i] = std::move(r);
      if (answers[i]++ == 0 && --left == 0)
        all.set_value();
    });
  REQUIRE(all.get_future().wait_for(std::chrono::seconds(30)) == std::future_status::ready);
  for (std::size_t i = 0; i < requests.size(); ++i) {
    INFO("request " << i);
    CHECK(answers[i] == 1);
  }
  const char* const expected[] = {
    "request.model: expected a non-empty string",
    "request.messages: expected a non-empty array",
    "request.messages: expected a non-empty array",
    "request.messages[0].role: expected a string",
  };
  for (std::size_t i = 0; i < requests.size(); ++i) {
    INFO("request " << i);
    CHECK_FALSE(results[i].ok);
    CHECK(results[i].error.kind == error_kind::bad_request);
    CHECK(results[i].error.message == expected[i]);
    CHECK(results[i].attempts.empty());
  }
}

// Deeply nested JSON is valid JSON: nlohmann parses it iteratively, and it
// must then be refused or accepted, never crash the process. These inputs
// are built here rather than stored (the request one is 2 MB of brackets).
// Each runs in a child process: a stack overflow kills the child, and the
// test reports it, instead of Catch's signal handler deadlocking in malloc.
namespace {

std::string nested_array(std::size_t depth) {
  return std::string(depth, '[') + std::string(depth, ']');
}

/// Runs `body` in a forked child; returns how the child ended, in words
/// ("exit 0", "signal 11").
template <class Body>
std::string in_child(Body body) {
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid == 0) {
    // Catch's handlers would report from the child (and can deadlock in
    // malloc after a stack overflow there): die plainly instead.
    for (int sig : {SIGSEGV, SIGBUS, SIGABRT, SIGILL, SIGFPE})
      std::signal(sig, SIG_DFL);
    int status = 3;
    try {
      status = body() ? 0 : 1;
    } catch (...) {
      status = 2;
    }
    std::_Exit(status);
  }
  if (pid < 0)
    return "fork failed";
  int status = 0;
  if (waitpid(pid, &status, 0) != pid)
    return "waitpid failed";
  if (WIFSIGNALED(status))
    return "signal " + std::to_string(WTERMSIG(status));
  return "exit " + std::to_string(WEXITSTATUS(status));
}

} // namespace

TEST_CASE("bad input: a deeply nested request body is answered and does not crash the parser") {
  // One `run` input line; run hands the body to parse_chat_request, which
  // keeps (copies) `messages`.
  for (const std::size_t depth : {10000u, 1000000u}) {
    INFO("depth " << depth);
    const std::string line =
      R"({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi", "x": )"
      + nested_array(depth) + "}]}";
    CHECK(in_child([&] {
            const json body = json::parse(line);
            const auto parsed = switchyard::parse_chat_request(body, "body");
            return parsed.request || parsed.error.kind == error_kind::bad_request;
          })
          == "exit 0");
  }
}

TEST_CASE("bad input: a deeply nested config is a config_error and does not crash the loader") {
  for (const std::size_t depth : {1000u, 10000u, 100000u}) {
    INFO("depth " << depth);
    const std::string text =
      R"({"model_list": [{"model_name": "g", "litellm_params": {"model": "m", "x": )"
      + nested_array(depth) + "}}]}";
    CHECK(in_child([&] {
            try {
              switchyard::load_config_text(text);
              return true;
            } catch (const switchyard::config_error& e) {
              return !e.problems().empty();
            }
          })
          == "exit 0");
  }
}
