#pragma once

// The shared-state scenarios (issue 11): each starts its own redis-server
// on a free loopback port and stops it afterwards.
// - redis_propagation: from "A cooled it" to "B's picker excludes it",
//   between two processes (B is this program again, `--redis-child PORT`);
// - redis_cost: routed requests/s on mock deployments, Redis on versus off,
//   measured by turns in the same run;
// - redis_fleet: 10 routers with separate state in this process against
//   one Redis, driving a deployment with an rpm limit.

#include <nlohmann/json.hpp>

#include <cstdint>
#include <set>
#include <string>

namespace switchyard::bench {

/// Runs the scenarios of `which` (a subset of the three names), appending
/// one result object per figure to `results`. Without /usr/bin/redis-server
/// each is a result with "skipped" and a line on stderr.
void run_redis(const std::set<std::string>& which, bool quick, std::uint64_t seed,
               nlohmann::json& results);

/// The other replica of redis_propagation: prints "ready", then one line per
/// cooldown it hears of; ends when its stdin closes. Returns the exit code.
int redis_propagation_child(int redis_port);

/// The table lines of the results run_redis produced.
void print_redis_results(const nlohmann::json& results);

} // namespace switchyard::bench
