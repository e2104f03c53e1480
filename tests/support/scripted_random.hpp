#pragma once

#include "switchyard/random_source.hpp"

#include <catch2/catch.hpp>

#include <cstddef>
#include <initializer_list>
#include <string>
#include <vector>

namespace switchyard::test {

/// A random_source that returns the values a test scripted, in order, so a
/// weighted pick or a jitter is exact. Running out is a test failure (a loud
/// one: the code under test drew more often than the test expected), never
/// a silent wrap-around. Single-threaded, like the sources it stands in for.
class scripted_random final : public random_source {
public:
  scripted_random() = default;
  scripted_random(std::initializer_list<double> values) : values_(values) {
    for (double v : values_)
      check_unit(v);
  }

  /// Appends more values to the script.
  void push(double value) {
    check_unit(value);
    values_.push_back(value);
  }

  double next_unit() override {
    if (next_ >= values_.size())
      FAIL("scripted_random exhausted: the code under test drew value #"
           << next_ + 1 << " but only " << values_.size()
           << " were scripted");
    return values_[next_++];
  }

  /// Values drawn so far.
  std::size_t consumed() const noexcept { return next_; }
  /// Values scripted but not drawn yet.
  std::size_t remaining() const noexcept { return values_.size() - next_; }

private:
  static void check_unit(double v) {
    if (!(v >= 0.0 && v < 1.0))
      FAIL("scripted_random: " << v << " is not in [0, 1)");
  }

  std::vector<double> values_;
  std::size_t next_ = 0;
};

} // namespace switchyard::test
