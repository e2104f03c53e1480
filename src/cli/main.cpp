#include "cli_common.hpp"

#include <iostream>

namespace {

constexpr const char* usage =
  "usage: switchyard [demo]\n"
  "       switchyard run --config FILE --input FILE [--output FILE]\n"
  "                      [--concurrency N] [--seed S]\n"
  "       switchyard check --config FILE\n"
  "\n"
  "  demo   route a few thousand requests through an embedded two-region\n"
  "         configuration with a failing region and a fallback group\n"
  "  run    route OpenAI Batch-format requests (JSON lines) and write one\n"
  "         result line per request\n"
  "  check  validate a configuration; exit status 1 when it is invalid\n";

} // namespace

int main(int argc, char** argv) {
  using namespace switchyard::cli;
  args a(argv + 1, argv + argc);
  if (a.empty() || a[0] == "demo")
    return demo_command(a.empty() ? a : args(a.begin() + 1, a.end()));
  if (a[0] == "run")
    return run_command(args(a.begin() + 1, a.end()));
  if (a[0] == "check")
    return check_command(args(a.begin() + 1, a.end()));
  if (a[0] == "-h" || a[0] == "--help" || a[0] == "help") {
    std::cout << usage;
    return 0;
  }
  std::cerr << "switchyard: unknown command '" << a[0] << "'\n" << usage;
  return 2;
}
