#include "cli_common.hpp"
// placeholder until the CLI lands (same session)
int switchyard::cli::run_command(const args&) { return 2; }
