#pragma once

#include <cstdint>

namespace switchyard {

/// The only source of randomness the core sees: injected, so tests can
/// script exact values. Not thread-safe: each owner (one actor) has its own.
class random_source {
public:
  virtual ~random_source() = default;
  /// A value in [0, 1).
  virtual double next_unit() = 0;
};

/// xoshiro256** seeded through splitmix64: fast (~1 ns), reproducible for a
/// given seed on every platform. Owned by one actor; never shared.
class seeded_random final : public random_source {
public:
  explicit seeded_random(std::uint64_t seed) noexcept;
  double next_unit() override;
  std::uint64_t next_u64() noexcept;

private:
  std::uint64_t s_[4];
};

/// Derives independent seeds for the actors of one router from one seed.
std::uint64_t derive_seed(std::uint64_t seed, std::uint64_t stream) noexcept;

} // namespace switchyard
