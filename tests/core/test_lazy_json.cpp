#include "switchyard/lazy_json.hpp"

#include <catch2/catch.hpp>

#include <atomic>

using namespace switchyard;
using json = nlohmann::json;

namespace {

// Counts its builds, so a test can tell when the value was made.
class counting_source final : public lazy_json::source {
public:
  explicit counting_source(std::atomic<int>& builds) : builds_(builds) {}
  json build() const override {
    ++builds_;
    return json{{"object", "chat.completion"}, {"n", builds_.load()}};
  }

private:
  std::atomic<int>& builds_;
};

} // namespace

TEST_CASE("a lazy_json builds its value on first read, once", "[core][lazy_json]") {
  std::atomic<int> builds{0};
  lazy_json v(std::make_shared<const counting_source>(builds));
  // Asking whether there is a body does not build it.
  CHECK(v.is_object());
  CHECK_FALSE(v.is_null());
  CHECK(v.deferred());
  CHECK(builds == 0);
  CHECK(v.at("object") == "chat.completion");
  CHECK(builds == 1);
  CHECK_FALSE(v.deferred());
  const json& whole = v;
  CHECK(whole == json{{"object", "chat.completion"}, {"n", 1}});
  CHECK(v["n"] == 1);
  CHECK(builds == 1);
}

TEST_CASE("a copy of a lazy_json builds its own value from the shared source",
          "[core][lazy_json]") {
  std::atomic<int> builds{0};
  lazy_json a(std::make_shared<const counting_source>(builds));
  lazy_json b = a;
  CHECK(a.value()["n"] == 1);
  CHECK(b.deferred());
  CHECK(b.value()["n"] == 2);
  // Writing through the non-const access changes only that copy.
  a["extra"] = true;
  CHECK_FALSE(b.value().contains("extra"));
}

TEST_CASE("a lazy_json holding a value or null behaves as that json",
          "[core][lazy_json]") {
  lazy_json none;
  CHECK(none.is_null());
  CHECK_FALSE(none.is_object());
  lazy_json parsed = json::parse(R"({"id": "c1"})");
  CHECK(parsed.is_object());
  CHECK_FALSE(parsed.deferred());
  CHECK(parsed["id"] == "c1");
  std::atomic<int> builds{0};
  lazy_json v(std::make_shared<const counting_source>(builds));
  v = nullptr; // drops the source unbuilt
  CHECK(v.is_null());
  CHECK(builds == 0);
  v = json{{"k", 1}};
  CHECK(v.at("k") == 1);
}

TEST_CASE("a lazy_json from a text keeps the text until it is read, then parses it",
          "[core][lazy_json]") {
  const std::string text = R"({ "z": 1, "a": [true, null] })";
  lazy_json v = lazy_json::from_text(text);
  CHECK(v.is_object());
  CHECK(v.deferred());
  REQUIRE(v.text() != nullptr);
  CHECK(*v.text() == text); // as it came: key order and spacing kept
  lazy_json copy = v;
  CHECK(v.value() == json::parse(text));
  CHECK(v.text() == nullptr); // read: the text is gone, the tree stands
  REQUIRE(copy.text() != nullptr);
  CHECK(*copy.text() == text);
  copy["a"] = 2; // a write goes to the tree
  CHECK(copy.text() == nullptr);
  CHECK(copy.value()["a"] == 2);
  CHECK(lazy_json(json::object()).text() == nullptr);
}
