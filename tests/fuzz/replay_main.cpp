// Replays fuzz inputs through a fuzz target without libFuzzer: every file
// named on the command line, and every file under each directory named,
// goes through LLVMFuzzerTestOneInput once. Built with the normal compiler
// and registered as a test over tests/fuzz/corpus/<target>, so the seed
// corpus (and every crash once found and added to it) stays a regression
// test. Exit status 0 when all inputs ran; a finding aborts, as under
// libFuzzer.
//
// An input that makes the target allocate without bound (a YAML parser
// loop, say) must fail its test, not exhaust the machine: memory is capped
// at 2 GB (RLIMIT_AS, or ASan's hard_rss_limit_mb in a sanitizer build,
// where RLIMIT_AS would break ASan's shadow memory) and CPU at 10 s.

#include <sys/resource.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

#if defined(__SANITIZE_ADDRESS__)
#define SWITCHYARD_REPLAY_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SWITCHYARD_REPLAY_ASAN 1
#endif
#endif

#if defined(SWITCHYARD_REPLAY_ASAN)
extern "C" const char* __asan_default_options() {
  return "hard_rss_limit_mb=2048";
}
#endif

namespace {

void limit_resources() {
  const auto cap = [](int resource, rlim_t value) {
    rlimit l{};
    if (getrlimit(resource, &l) == 0 && (l.rlim_max == RLIM_INFINITY || l.rlim_max > value)) {
      l.rlim_cur = value;
      setrlimit(resource, &l);
    }
  };
#if !defined(SWITCHYARD_REPLAY_ASAN)
  cap(RLIMIT_AS, rlim_t(2) << 30);
#endif
  cap(RLIMIT_CPU, 10);
}

} // namespace

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  limit_resources();
  std::vector<fs::path> files;
  for (int i = 1; i < argc; ++i) {
    const fs::path p(argv[i]);
    if (fs::is_directory(p)) {
      for (const auto& e : fs::recursive_directory_iterator(p))
        if (e.is_regular_file())
          files.push_back(e.path());
    } else {
      files.push_back(p);
    }
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) {
    std::fprintf(stderr, "usage: %s FILE_OR_DIR...  (no input files found)\n", argv[0]);
    return 2;
  }
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    if (!in) {
      std::fprintf(stderr, "cannot read %s\n", f.c_str());
      return 1;
    }
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::fprintf(stderr, "replay %s (%zu bytes)\n", f.c_str(), bytes.size());
    LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
  }
  std::printf("replayed %zu inputs\n", files.size());
  return 0;
}
