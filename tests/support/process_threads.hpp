#pragma once

// The threads of this test process, for tests that bound how many threads
// a component adds (one I/O thread, never one per call) or which threads
// run (by name). Header-only, Linux (/proc/self/task).

#include <dirent.h>

#include <fstream>
#include <string>

namespace switchyard::test {

// ThreadSanitizer runs a background thread of its own, started lazily.
#if defined(__SANITIZE_THREAD__)
inline constexpr int sanitizer_threads = 1;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
inline constexpr int sanitizer_threads = 1;
#else
inline constexpr int sanitizer_threads = 0;
#endif
#else
inline constexpr int sanitizer_threads = 0;
#endif

/// Calls `f(tid)` for each thread of this process now (its
/// /proc/self/task entry name).
template <class F>
void for_each_thread(F f) {
  if (DIR* d = opendir("/proc/self/task")) {
    while (dirent* e = readdir(d))
      if (e->d_name[0] != '.')
        f(e->d_name);
    closedir(d);
  }
}

/// Threads of this process now.
inline int thread_count() {
  int n = 0;
  for_each_thread([&n](const char*) { ++n; });
  return n;
}

/// Whether a thread of this process is named `name` now.
inline bool has_thread_named(const std::string& name) {
  bool found = false;
  for_each_thread([&](const char* tid) {
    std::ifstream comm(std::string("/proc/self/task/") + tid + "/comm");
    std::string line;
    std::getline(comm, line);
    found = found || line == name;
  });
  return found;
}

} // namespace switchyard::test
