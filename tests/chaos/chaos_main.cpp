// The chaos binary's main: Catch2's, plus the `--long` flag (a 1,000,000
// request run of the chaos test) and the size of a run, read once.
//
//   switchyard-chaos-tests                 100,000 requests (Release default)
//   switchyard-chaos-tests --long          1,000,000 requests
//   SWITCHYARD_CHAOS_REQUESTS=N ...        N requests (wins over --long)
//   SWITCHYARD_CHAOS_IN_FLIGHT=N ...       at most N in flight (default 1,000)
//
// Under AddressSanitizer or ThreadSanitizer the default shrinks (10,000 and
// 5,000 requests) so that a sanitizer run of the suite stays in minutes.

#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>
#include <spdlog/spdlog.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SWITCHYARD_CHAOS_ASAN 1
#endif
#if __has_feature(thread_sanitizer)
#define SWITCHYARD_CHAOS_TSAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define SWITCHYARD_CHAOS_ASAN 1
#endif
#if defined(__SANITIZE_THREAD__)
#define SWITCHYARD_CHAOS_TSAN 1
#endif

namespace switchyard::chaos {

namespace {

bool long_run = false;

std::size_t env_count(const char* name, std::size_t fallback) {
  const char* text = std::getenv(name);
  if (!text || !*text)
    return fallback;
  char* end = nullptr;
  const unsigned long long v = std::strtoull(text, &end, 10);
  return end && *end == '\0' && v > 0 ? static_cast<std::size_t>(v) : fallback;
}

std::size_t default_requests() {
#if defined(SWITCHYARD_CHAOS_TSAN)
  return long_run ? 100000 : 5000;
#elif defined(SWITCHYARD_CHAOS_ASAN)
  return long_run ? 100000 : 10000;
#else
  return long_run ? 1000000 : 100000;
#endif
}

} // namespace

/// Requests of one chaos run.
std::size_t request_count() {
  return env_count("SWITCHYARD_CHAOS_REQUESTS", default_requests());
}

/// Requests in flight at most (the driver's own limit).
std::size_t in_flight_limit() {
  return env_count("SWITCHYARD_CHAOS_IN_FLIGHT", 1000);
}

/// True when built with ASan or TSan (timings stretch several-fold).
bool sanitized() {
#if defined(SWITCHYARD_CHAOS_ASAN) || defined(SWITCHYARD_CHAOS_TSAN)
  return true;
#else
  return false;
#endif
}

} // namespace switchyard::chaos

int main(int argc, char* argv[]) {
  // Cooldowns start by the thousand here: keep their info lines out of the
  // test output unless asked for (SWITCHYARD_LOG_LEVEL=info).
  const char* level = std::getenv("SWITCHYARD_LOG_LEVEL");
  spdlog::set_level(level && *level ? spdlog::level::from_str(level) : spdlog::level::warn);
  std::vector<char*> rest;
  for (int i = 0; i < argc; ++i) {
    if (i > 0 && std::string(argv[i]) == "--long")
      switchyard::chaos::long_run = true;
    else
      rest.push_back(argv[i]);
  }
  return Catch::Session().run(static_cast<int>(rest.size()), rest.data());
}
