// The embedding API's commit handler (router::async_stream with
// on_commit), which serve's stream headers come from, and the batched log
// sink serve writes its access lines through. No server here.

#include "server/buffered_log_sink.hpp"

#include "switchyard/config.hpp"
#include "switchyard/router.hpp"

#include <catch2/catch.hpp>

#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <unistd.h>

#include <future>
#include <mutex>
#include <string>
#include <vector>

using namespace switchyard;
using nlohmann::json;

namespace {

json mock(const std::string& group, const std::string& id, json params) {
  params["model"] = "openai/" + id;
  return {{"model_name", group}, {"litellm_params", std::move(params)}, {"model_info", {{"id", id}}}};
}

// What a stream's handlers saw, in the order they saw it.
struct trace {
  std::mutex mutex;
  std::vector<std::string> events;
  std::vector<stream_commit> commits;
  std::promise<route_result> done;
};

route_result run_stream(router& r, const std::string& group, trace& t) {
  auto parsed = parse_chat_request(
    json{{"model", group}, {"stream", true}, {"messages", {{{"role", "user"}, {"content", "hi"}}}}});
  REQUIRE(parsed.request);
  auto future = t.done.get_future();
  r.async_stream(
    std::move(*parsed.request),
    [&t](const stream_commit& c) {
      std::lock_guard<std::mutex> lock(t.mutex);
      t.events.push_back("commit");
      t.commits.push_back(c);
    },
    [&t](const json&) {
      std::lock_guard<std::mutex> lock(t.mutex);
      t.events.push_back("chunk");
    },
    [&t](route_result res) { t.done.set_value(std::move(res)); });
  return future.get();
}

} // namespace

TEST_CASE("stream commit: the commit handler names the committing deployment before its first chunk") {
  const json config{
    {"model_list",
     json::array({mock("tiered", "first", {{"mock_response", "litellm.InternalServerError"}, {"order", 1}}),
                  mock("tiered", "second",
                       {{"mock_response", "streamed reply"},
                        {"mock_first_token_ms", 5},
                        {"mock_latency_ms", 20},
                        {"order", 2}})})},
    {"router_settings", {{"num_retries", 0}, {"disable_cooldowns", true}}}};
  router_options options;
  options.seed = 7;
  options.idle_workers = router_options::idle_policy::sleep; // serve's setting
  router r(load_config_text(config.dump()), options);
  trace t;
  const auto res = run_stream(r, "tiered", t);
  REQUIRE(res.ok);
  REQUIRE(t.commits.size() == 1);
  REQUIRE(t.events.size() >= 2);
  CHECK(t.events[0] == "commit");
  for (std::size_t i = 1; i < t.events.size(); ++i)
    CHECK(t.events[i] == "chunk");
  const auto& c = t.commits[0];
  CHECK(c.deployment_id == "second");
  CHECK(c.model_group == "tiered");
  // The commit's counts are the final answer's.
  CHECK(c.attempts == 2);
  CHECK(c.attempts == static_cast<int>(res.attempts.size()));
  CHECK(c.fallback_depth == res.fallback_depth);
  CHECK(res.deployment_id == "second");
  CHECK(c.upstream_ms >= 0);
}

TEST_CASE("stream commit: an answer that fails before any chunk has no commit") {
  const json config{
    {"model_list", json::array({mock("down", "down-1", {{"mock_response", "litellm.InternalServerError"}})})},
    {"router_settings", {{"num_retries", 0}, {"disable_cooldowns", true}}}};
  router_options options;
  options.seed = 7;
  router r(load_config_text(config.dump()), options);
  trace t;
  const auto res = run_stream(r, "down", t);
  CHECK_FALSE(res.ok);
  CHECK(t.commits.empty());
  CHECK(t.events.empty());
}

TEST_CASE("buffered log sink: lines leave in batches, and all of them on flush") {
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  fcntl(fds[0], F_SETFL, O_NONBLOCK);
  const auto drain = [&] {
    std::string got;
    char buf[4096];
    for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;)
      got.append(buf, static_cast<std::size_t>(n));
    return got;
  };
  {
    auto sink = std::make_shared<server::buffered_log_sink>(fds[1], 256, std::chrono::hours(1));
    spdlog::logger log("test", sink);
    log.set_pattern("%v");
    log.info("one");
    log.info("two");
    CHECK(drain().empty()); // below the batch size and the delay: held
    log.flush();
    CHECK(drain() == "one\ntwo\n");
    for (int i = 0; i < 40; ++i)
      log.info("line {}", i);
    const auto batch = drain(); // past 256 bytes: written without a flush
    CHECK_FALSE(batch.empty());
    CHECK(batch.find("line 0\n") == 0);
    log.info("last");
  } // the sink's destructor writes what is left
  const auto rest = drain();
  CHECK(rest.size() >= 5);
  CHECK(rest.substr(rest.size() - 5) == "last\n");
  ::close(fds[0]);
  ::close(fds[1]);
}

TEST_CASE("buffered log sink: a line waits at most max_delay once another comes") {
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  fcntl(fds[0], F_SETFL, O_NONBLOCK);
  auto sink = std::make_shared<server::buffered_log_sink>(fds[1], 1 << 20, std::chrono::milliseconds(0));
  spdlog::logger log("test", sink);
  log.set_pattern("%v");
  log.info("at once");
  char buf[64];
  const auto n = ::read(fds[0], buf, sizeof buf);
  REQUIRE(n > 0);
  CHECK(std::string(buf, static_cast<std::size_t>(n)) == "at once\n");
  ::close(fds[0]);
  ::close(fds[1]);
}
