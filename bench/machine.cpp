#include "machine.hpp"

#include <caf/config.hpp> // CAF_VERSION only: cheap to include

#include <fstream>
#include <string>
#include <thread>

#include <sys/utsname.h>

#ifndef SWITCHYARD_BENCH_BUILD_TYPE
#define SWITCHYARD_BENCH_BUILD_TYPE "unknown"
#endif

namespace switchyard::bench {

namespace {

std::string trim(std::string s) {
  auto b = s.find_first_not_of(" \t");
  auto e = s.find_last_not_of(" \t\r\n");
  return b == std::string::npos ? std::string{} : s.substr(b, e - b + 1);
}

// The value of the first "key : value" line of a /proc file.
std::string proc_field(const char* file, const std::string& key) {
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    auto colon = line.find(':');
    if (colon != std::string::npos && trim(line.substr(0, colon)) == key)
      return trim(line.substr(colon + 1));
  }
  return {};
}

int count_processors() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  int n = 0;
  while (std::getline(in, line))
    if (line.rfind("processor", 0) == 0)
      ++n;
  return n;
}

std::string compiler() {
#if defined(__clang__)
  return std::string("clang ") + __clang_version__;
#elif defined(__GNUC__)
  return std::string("gcc ") + __VERSION__;
#else
  return "unknown";
#endif
}

} // namespace

nlohmann::json machine_info() {
  nlohmann::json m;
  auto cpu = proc_field("/proc/cpuinfo", "model name");
  m["cpu"] = cpu.empty() ? "unknown" : cpu;
  m["cores"] = count_processors();
  m["hardware_concurrency"] = std::thread::hardware_concurrency();
  // MemTotal is in kB.
  auto mem = proc_field("/proc/meminfo", "MemTotal");
  m["memory_bytes"] = mem.empty() ? 0 : std::stoll(mem) * 1024;
  utsname u{};
  if (uname(&u) == 0)
    m["kernel"] = std::string(u.sysname) + " " + u.release + " " + u.machine;
  m["compiler"] = compiler();
  m["caf_version"] = std::to_string(CAF_VERSION / 10000) + "."
                     + std::to_string(CAF_VERSION / 100 % 100) + "."
                     + std::to_string(CAF_VERSION % 100);
  m["build_type"] = SWITCHYARD_BENCH_BUILD_TYPE;
  std::ifstream load("/proc/loadavg");
  double l1 = 0;
  double l5 = 0;
  double l15 = 0;
  load >> l1 >> l5 >> l15;
  m["load_average_at_start"] = {l1, l5, l15};
  return m;
}

std::size_t machine_cores() {
  return static_cast<std::size_t>(count_processors());
}

} // namespace switchyard::bench
