#pragma once

#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <utility>

namespace switchyard {

/// A JSON value that may be built on first read: a reply body that nobody
/// reads (a benchmark, a caller that takes `content`) then costs one small
/// object instead of a tree of maps, and holding many in flight costs
/// little memory. Reading it (value(), the conversion, [], at) gives
/// exactly the JSON the source builds, so no observable output changes.
/// Either holds a value (from a transport that parsed one, or null) or a
/// source that builds a JSON object.
///
/// Threading: a value type, like std::string, with one exception: the first
/// read builds the value, so a lazy one must not be read from two threads
/// at once without synchronization (a route_result goes to one callback).
/// Copies share the immutable source, never the built value.
class lazy_json {
public:
  /// Builds a JSON object. Immutable once made: share freely.
  class source {
  public:
    virtual ~source() = default;
    virtual nlohmann::json build() const = 0;
  };

  /// A JSON text, parsed on first read. The text must be valid JSON (the
  /// caller has checked it); until the first read, text() gives it as it
  /// came, so a proxy can send it on without a parse and a dump.
  static lazy_json from_text(std::string text) {
    return lazy_json(std::make_shared<const text_source>(std::move(text)));
  }

  lazy_json() = default;
  lazy_json(std::nullptr_t) {}
  lazy_json(nlohmann::json v) : value_(std::move(v)) {}
  explicit lazy_json(std::shared_ptr<const source> s) : source_(std::move(s)) {}

  lazy_json& operator=(nlohmann::json v) {
    value_ = std::move(v);
    source_.reset();
    return *this;
  }
  lazy_json& operator=(std::nullptr_t) {
    value_ = nullptr;
    source_.reset();
    return *this;
  }

  /// The value, built now if it was not yet.
  const nlohmann::json& value() const {
    if (source_) {
      value_ = source_->build();
      source_.reset();
    }
    return value_;
  }
  nlohmann::json& value() {
    std::as_const(*this).value();
    return value_;
  }
  operator const nlohmann::json&() const { return value(); }

  /// Without building: a source always builds an object.
  bool is_object() const { return source_ != nullptr || value_.is_object(); }
  bool is_null() const { return source_ == nullptr && value_.is_null(); }
  /// True while the value has not been built (tests, diagnostics).
  bool deferred() const { return source_ != nullptr; }
  /// The text of a from_text() value not yet read; else nullptr.
  const std::string* text() const {
    const auto* t = dynamic_cast<const text_source*>(source_.get());
    return t ? &t->text : nullptr;
  }

  template <class Key>
  decltype(auto) operator[](Key&& k) {
    return value()[std::forward<Key>(k)];
  }
  template <class Key>
  decltype(auto) operator[](Key&& k) const {
    return value()[std::forward<Key>(k)];
  }
  template <class Key>
  decltype(auto) at(Key&& k) const {
    return value().at(std::forward<Key>(k));
  }

private:
  struct text_source final : source {
    explicit text_source(std::string t) : text(std::move(t)) {}
    nlohmann::json build() const override { return nlohmann::json::parse(text); }
    std::string text;
  };

  mutable nlohmann::json value_;
  mutable std::shared_ptr<const source> source_;
};

} // namespace switchyard
