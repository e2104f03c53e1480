#pragma once

// Typed readers shared by the config loader, parse_mock_response and the
// request parser, so that every invalid value is reported the same way: at
// its JSON path (`model_list[2].litellm_params.weight`), with a message that
// says what was expected and never echoes the value (it may be a secret).

#include "switchyard/config.hpp"
#include "switchyard/config_keys.hpp"

#include <climits>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace switchyard {

inline std::string key_path(const std::string& parent, std::string_view key) {
  std::string out = parent;
  if (!out.empty())
    out += '.';
  out += key;
  return out;
}

inline std::string index_path(const std::string& parent, std::size_t index) {
  return parent + "[" + std::to_string(index) + "]";
}

/// Whether `value` nests arrays and objects deeper than `max` levels. Safe
/// on any input, where copying, converting or walking a deep tree without a
/// bound would overflow the stack: it recurses at most `max` + 1 frames
/// (`max` is one of the small limits below), and allocates nothing.
template <class Json>
bool nests_deeper_than(const Json& value, std::size_t max) {
  if (!value.is_structured())
    return false;
  if (max == 0)
    return true;
  for (const auto& child : value)
    if (nests_deeper_than(child, max - 1))
      return true;
  return false;
}

/// Deepest nesting a configuration may have (YAML's limit too).
inline constexpr std::size_t max_config_depth = 256;
/// Deepest nesting a request body may have.
inline constexpr std::size_t max_request_depth = 128;

/// Bounds of a number, with the message that states them.
struct number_rule {
  double min;
  bool min_exclusive;
  double max;
  const char* expected;

  /// Finite and within the bounds (Infinity and NaN, YAML's .inf / .nan,
  /// are never a usable setting).
  bool admits(double x) const {
    return std::isfinite(x) && (min_exclusive ? x > min : x >= min) && x <= max;
  }
};

inline constexpr number_rule at_least_zero{
  0, false, std::numeric_limits<double>::infinity(), "expected a number >= 0"};
inline constexpr number_rule above_zero{
  0, true, std::numeric_limits<double>::infinity(), "expected a number > 0"};
inline constexpr number_rule zero_to_one{0, false, 1,
                                         "expected a number between 0 and 1"};

/// The bounds of a number key of the config_keys table.
inline number_rule rule_of(key_section section, std::string_view key) {
  const auto& k = config_key_of(section, key);
  return number_rule{k.min, k.above, k.max, expected_text(k).data()};
}

/// Flags of string_at.
enum text_rule : unsigned { any_text = 0, required = 1, non_empty = 2 };

/// Appends problems to a caller-owned list; at most one per path, so a value
/// already reported (e.g. a missing environment variable) is not reported
/// again by its type check. Used during one load or parse, single-threaded.
class json_checks {
public:
  explicit json_checks(std::vector<config_problem>& problems)
    : problems_(problems) {}

  std::vector<config_problem>& problems() noexcept { return problems_; }

  void fail(const std::string& path, std::string message) {
    const std::string where = path.empty() ? "(root)" : path;
    for (const auto& p : problems_)
      if (p.path == where)
        return;
    problems_.push_back({where, std::move(message)});
  }

  /// obj[key], or nullptr when obj has no such key or it is null (unset).
  template <class Json>
  static const Json* find(const Json& obj, std::string_view key) {
    if (!obj.is_object())
      return nullptr;
    auto i = obj.find(std::string(key));
    return i == obj.end() || i->is_null() ? nullptr : &*i;
  }

  template <class Json>
  const Json* object_at(const Json& obj, std::string_view key,
                        const std::string& parent, unsigned rules = any_text) {
    const Json* v = find(obj, key);
    if (!v) {
      if (rules & required)
        fail(key_path(parent, key), "is required");
      return nullptr;
    }
    if (!v->is_object()) {
      fail(key_path(parent, key), "expected an object");
      return nullptr;
    }
    return v;
  }

  template <class Json>
  std::optional<std::string> string_at(const Json& obj, std::string_view key,
                                       const std::string& parent,
                                       unsigned rules = any_text) {
    const Json* v = find(obj, key);
    if (!v) {
      if (rules & required)
        fail(key_path(parent, key), "is required");
      return std::nullopt;
    }
    if (!v->is_string() || ((rules & non_empty)
                             && v->template get_ref<const std::string&>().empty())) {
      fail(key_path(parent, key), (rules & non_empty)
                                    ? "expected a non-empty string"
                                    : "expected a string");
      return std::nullopt;
    }
    return v->template get<std::string>();
  }

  template <class Json>
  std::optional<double> number_at(const Json& obj, std::string_view key,
                                  const std::string& parent,
                                  const number_rule& rule) {
    const Json* v = find(obj, key);
    if (!v)
      return std::nullopt;
    const double x = v->is_number() ? v->template get<double>() : 0;
    if (!v->is_number() || !rule.admits(x)) {
      fail(key_path(parent, key), rule.expected);
      return std::nullopt;
    }
    return x;
  }

  template <class Json>
  std::optional<std::int64_t> integer_at(const Json& obj, std::string_view key,
                                         const std::string& parent,
                                         std::int64_t min,
                                         std::int64_t max = INT_MAX) {
    const Json* v = find(obj, key);
    if (!v)
      return std::nullopt;
    // Non-negative integers parse as unsigned; beyond int64 they are too big.
    const bool too_big =
      v->is_number_unsigned()
      && v->template get<std::uint64_t>() > static_cast<std::uint64_t>(max);
    if (too_big) {
      fail(key_path(parent, key), "expected an integer <= " + std::to_string(max));
      return std::nullopt;
    }
    if (!v->is_number_integer()) {
      fail(key_path(parent, key), "expected an integer >= " + std::to_string(min));
      return std::nullopt;
    }
    const auto x = v->template get<std::int64_t>();
    if (!integer_in(x, key_path(parent, key), min, max))
      return std::nullopt;
    return x;
  }

  /// Whether `x` lies in [min, max]; if not, reports the bound it breaks
  /// at `path` (as integer_at does).
  bool integer_in(std::int64_t x, const std::string& path, std::int64_t min,
                  std::int64_t max) {
    if (x > max) {
      fail(path, "expected an integer <= " + std::to_string(max));
      return false;
    }
    if (x < min) {
      fail(path, "expected an integer >= " + std::to_string(min));
      return false;
    }
    return true;
  }

  template <class Json>
  std::optional<bool> bool_at(const Json& obj, std::string_view key,
                              const std::string& parent) {
    const Json* v = find(obj, key);
    if (!v)
      return std::nullopt;
    if (!v->is_boolean()) {
      fail(key_path(parent, key), "expected true or false");
      return std::nullopt;
    }
    return v->template get<bool>();
  }

  /// An error kind name ("RateLimitError", "litellm.RateLimitError").
  std::optional<error_kind> error_kind_at(const std::string& name,
                                          const std::string& path) {
    auto kind = parse_error_kind(name);
    if (!kind)
      fail(path, "unknown error kind; expected one of: " + error_kind_names());
    return kind;
  }

private:
  std::vector<config_problem>& problems_;
};

} // namespace switchyard
