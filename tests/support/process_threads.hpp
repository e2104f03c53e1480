#pragma once

// The threads of this test process, for tests that bound how many threads
// a component adds (one I/O thread, never one per call). Header-only,
// Linux (/proc/self/task).

#include <dirent.h>

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

/// Threads of this process now.
inline int thread_count() {
  int n = 0;
  if (DIR* d = opendir("/proc/self/task")) {
    while (dirent* e = readdir(d))
      if (e->d_name[0] != '.')
        ++n;
    closedir(d);
  }
  return n;
}

} // namespace switchyard::test
