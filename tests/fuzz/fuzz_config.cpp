// Fuzz target: the configuration loader, on arbitrary bytes, both ways a
// file can be read: as JSON (load_config_text) and as YAML (yaml_to_json,
// then load_config on the file-ordered document, which is what
// load_config_file does for a .yaml file).
//
// Beyond "no crash, no hang, no leak, no undefined behaviour", it checks:
// - the only exception is config_error, and every problem has a path and a
//   message and is reported once;
// - a value resolved from os.environ/ never shows in a problem, in what(),
//   or in any log line (every level, captured);
// - a loaded config is consistent: non-empty unique ids, every deployment in
//   its group, fallback and alias targets that exist.
//
// Build: tests/CMakeLists.txt (replay driver always; libFuzzer binary with
// -DSWITCHYARD_FUZZ=ON). Run: docs/reliability.md.

#include "ordered_config.hpp"
#include "yaml_config.hpp"

#include "switchyard/config.hpp"

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <string_view>

namespace {

// Every environment variable resolves to a value holding this marker,
// except names starting with MISSING, which are unset.
constexpr std::string_view marker = "s3cr3t";

std::optional<std::string> fuzz_env(const std::string& name) {
  if (name.rfind("MISSING", 0) == 0)
    return std::nullopt;
  if (name == "EMPTY")
    return std::string();
  return std::string(marker) + "-value-of-" + name;
}

[[noreturn]] void finding(const char* what, const std::string& detail) {
  std::fprintf(stderr, "fuzz-config: %s\n%s\n", what, detail.c_str());
  std::abort();
}

std::ostringstream& log_capture() {
  static std::ostringstream* out = [] {
    auto* s = new std::ostringstream;
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_st>(*s);
    auto logger = std::make_shared<spdlog::logger>("fuzz", sink);
    logger->set_level(spdlog::level::trace);
    spdlog::set_default_logger(logger);
    spdlog::set_level(spdlog::level::trace);
    return s;
  }();
  return *out;
}

bool mentions_secret(const std::string& text) {
  return text.find(marker) != std::string::npos;
}

void check_error(const switchyard::config_error& e, bool secret_check) {
  std::set<std::pair<std::string, std::string>> seen;
  for (const auto& p : e.problems()) {
    if (!seen.emplace(p.path, p.message).second)
      finding("a problem reported twice", p.path + ": " + p.message);
    if (p.path.empty() || p.message.empty())
      finding("a problem without a path or a message", p.path + ": " + p.message);
    if (secret_check && (mentions_secret(p.path) || mentions_secret(p.message)))
      finding("a problem shows an environment value", p.path + ": " + p.message);
  }
  if (e.problems().empty())
    finding("a config_error without problems", e.what());
  if (secret_check && mentions_secret(e.what()))
    finding("config_error::what() shows an environment value", e.what());
}

void check_config(const switchyard::router_config& c) {
  if (c.deployments.empty() || c.groups.empty())
    finding("a loaded config without deployments or groups", "");
  std::set<std::string> ids;
  for (std::size_t d = 0; d < c.deployments.size(); ++d) {
    const auto& dep = c.deployments[d];
    if (dep.id.empty() || !ids.insert(dep.id).second)
      finding("an empty or duplicate deployment id", dep.id);
    if (dep.group >= c.groups.size()
        || dep.index_in_group >= c.groups[dep.group].deployments.size()
        || c.groups[dep.group].deployments[dep.index_in_group] != d
        || c.groups[dep.group].name != dep.model_name)
      finding("a deployment outside its group", dep.id);
    if (!(dep.mock_failure_rate >= 0 && dep.mock_failure_rate <= 1))
      finding("mock_failure_rate outside [0, 1]", dep.id);
  }
  for (const auto& g : c.groups)
    if (g.deployments.empty() || c.find_group(g.name) == std::nullopt)
      finding("an empty or unindexed group", g.name);
  const auto& s = c.settings;
  for (const auto* rules : {&s.fallbacks, &s.context_window_fallbacks,
                            &s.content_policy_fallbacks})
    for (const auto& r : *rules)
      for (const auto& to : r.to)
        if (!c.find_group(to))
          finding("a fallback target that is not a group", to);
  for (const auto& to : s.default_fallbacks)
    if (!c.find_group(to))
      finding("a default fallback that is not a group", to);
  for (const auto& [alias, group] : s.model_group_alias)
    if (!c.find_group(group))
      finding("an alias target that is not a group", group);
  if (s.max_fallbacks < 0 || s.num_retries < 0 || !(s.timeout_s > 0)
      || !(s.cooldown_time_s >= 0))
    finding("a router setting outside its range", "");
}

template <class Load>
void try_load(Load load, bool secret_check) {
  try {
    check_config(load());
  } catch (const switchyard::config_error& e) {
    check_error(e, secret_check);
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto& logs = log_capture();
  logs.str(std::string());
  const std::string text(reinterpret_cast<const char*>(data), size);
  // A marker written in the input may be echoed legitimately (a literal
  // group name, say): the secret check needs inputs without it.
  const bool secret_check = !mentions_secret(text);

  try_load([&] { return switchyard::load_config_text(text, fuzz_env); }, secret_check);
  try_load(
    [&] {
      return switchyard::load_config(switchyard::yaml_to_json(text),
                                     switchyard::env_lookup(fuzz_env));
    },
    secret_check);

  if (secret_check && mentions_secret(logs.str()))
    finding("a log line shows an environment value", logs.str());
  return 0;
}
