#pragma once

#include <string>
#include <vector>

namespace switchyard::cli {

using args = std::vector<std::string>;

/// `switchyard check --config FILE`
int check_command(const args& a);
/// `switchyard run --config FILE --input FILE [--output FILE] [--concurrency N] [--seed S]`
int run_command(const args& a);
/// `switchyard demo`
int demo_command(const args& a);

} // namespace switchyard::cli
