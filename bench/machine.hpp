#pragma once

#include <nlohmann/json.hpp>

namespace switchyard::bench {

/// What ran the benchmark: cpu model, cores, memory, kernel, compiler, CAF
/// version, build type, and the load average when the run started (other
/// work on the machine makes figures noisy).
nlohmann::json machine_info();

/// Processors in /proc/cpuinfo.
std::size_t machine_cores();

} // namespace switchyard::bench
