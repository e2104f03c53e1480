#include "cli_common.hpp"

#include <csignal>
#include <exception>
#include <iostream>

namespace {

using switchyard::cli::args;

bool wants_help(const args& a) {
  if (!a.empty() && a[0] == "help")
    return true;
  for (const auto& s : a)
    if (s == "-h" || s == "--help")
      return true;
  return false;
}

int dispatch(const args& a) {
  using namespace switchyard::cli;
  const args rest = a.empty() ? args{} : args(a.begin() + 1, a.end());
  if (a.empty() || a[0] == "demo")
    return demo_command(rest);
  if (a[0] == "run")
    return run_command(rest);
  if (a[0] == "check")
    return check_command(rest);
  if (a[0] == "serve")
    return serve_command(rest);
  throw usage_error("unknown command '" + a[0] + "'");
}

} // namespace

int main(int argc, char** argv) {
  using namespace switchyard::cli;
  // A closed stdout pipe (`switchyard run ... | head`) should end the run
  // with a write error, not kill it silently mid-line.
  std::signal(SIGPIPE, SIG_IGN);
  const args a(argv + 1, argv + argc);
  if (wants_help(a)) {
    std::cout << usage_text();
    return exit_ok;
  }
  init_logging();
  try {
    return dispatch(a);
  } catch (const usage_error& e) {
    std::cerr << "switchyard: " << e.what() << "\n\n" << usage_text();
    return exit_usage;
  } catch (const std::exception& e) {
    std::cerr << "switchyard: " << e.what() << '\n';
    return exit_failure;
  }
}
