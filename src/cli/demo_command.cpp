#include "cli_common.hpp"
// placeholder until the CLI lands (same session)
int switchyard::cli::demo_command(const args&) { return 2; }
