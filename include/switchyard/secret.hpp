#pragma once

#include <string>

namespace switchyard {

/// A credential (api key, or any value resolved from `os.environ/`).
/// It has no stream operator and no implicit conversion, so it cannot end up
/// in a log line or an error message by accident; `reveal()` is the one way
/// out, for the transport that sends it. Immutable, share freely.
class secret {
public:
  secret() = default;
  explicit secret(std::string value) : value_(std::move(value)) {}
  const std::string& reveal() const noexcept { return value_; }
  bool empty() const noexcept { return value_.empty(); }
  /// What logs and `check` print instead of the value.
  static constexpr const char* redacted = "<redacted>";

private:
  std::string value_;
};

} // namespace switchyard
