#include "yaml_config.hpp"

#include "switchyard/config.hpp"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <cctype>
#include <charconv>
#include <cstdint>
#include <limits>
#include <sstream>
#include <unordered_set>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

namespace switchyard {

namespace {

using ojson = nlohmann::ordered_json;

constexpr std::string_view core_tag = "tag:yaml.org,2002:";

// Bounds that keep a hostile or broken file from exhausting the stack or
// the memory (aliases can expand a small file exponentially).
constexpr int max_depth = 256;
constexpr std::size_t max_nodes = 1'000'000;

std::string where(const YAML::Mark& mark) {
  if (mark.is_null())
    return "(root)";
  return "line " + std::to_string(mark.line + 1) + ", column "
         + std::to_string(mark.column + 1);
}

bool all_digits(std::string_view s, int base) {
  if (s.empty())
    return false;
  for (char c : s) {
    const bool ok = base == 16 ? std::isxdigit(static_cast<unsigned char>(c)) != 0
                  : base == 8  ? c >= '0' && c <= '7'
                               : c >= '0' && c <= '9';
    if (!ok)
      return false;
  }
  return true;
}

// [-+]?[0-9]+, 0o[0-7]+, 0x[0-9a-fA-F]+ (YAML 1.2 core schema). Numbers
// take the types nlohmann's JSON parser gives them: unsigned when not
// negative, signed when negative, a double when they do not fit.
std::optional<ojson> core_int(std::string_view s) {
  int base = 10;
  bool negative = false;
  std::string_view digits = s;
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'o')) {
    base = s[1] == 'x' ? 16 : 8;
    digits = s.substr(2);
  } else if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
    negative = s[0] == '-';
    digits = s.substr(1);
  }
  if (!all_digits(digits, base))
    return std::nullopt;
  std::uint64_t value = 0;
  const auto [end, err] = std::from_chars(digits.data(), digits.data() + digits.size(),
                                          value, base);
  if (err == std::errc() && end == digits.data() + digits.size()) {
    if (!negative)
      return ojson(value);
    if (value <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) + 1)
      return ojson(static_cast<std::int64_t>(0 - value));
  }
  // Too big for 64 bits: a double, as nlohmann does with JSON.
  double d = 0;
  for (char c : digits)
    d = d * base + (std::isdigit(static_cast<unsigned char>(c)) ? c - '0'
                                                                : (std::tolower(c) - 'a' + 10));
  return ojson(negative ? -d : d);
}

// [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?, [-+]?.inf, .nan.
std::optional<ojson> core_float(std::string_view s) {
  std::string_view body = s;
  bool negative = false;
  if (!body.empty() && (body[0] == '-' || body[0] == '+')) {
    negative = body[0] == '-';
    body.remove_prefix(1);
  }
  if (body == ".inf" || body == ".Inf" || body == ".INF")
    return ojson(negative ? -std::numeric_limits<double>::infinity()
                          : std::numeric_limits<double>::infinity());
  if (s == ".nan" || s == ".NaN" || s == ".NAN")
    return ojson(std::numeric_limits<double>::quiet_NaN());
  // Check the core pattern; from_chars accepts more (inf, nan, hex digits).
  std::size_t i = 0;
  std::size_t int_digits = 0, frac_digits = 0;
  while (i < body.size() && std::isdigit(static_cast<unsigned char>(body[i])))
    ++i, ++int_digits;
  if (i < body.size() && body[i] == '.') {
    ++i;
    while (i < body.size() && std::isdigit(static_cast<unsigned char>(body[i])))
      ++i, ++frac_digits;
  }
  if (int_digits == 0 && frac_digits == 0)
    return std::nullopt;
  if (i < body.size() && (body[i] == 'e' || body[i] == 'E')) {
    ++i;
    if (i < body.size() && (body[i] == '-' || body[i] == '+'))
      ++i;
    std::size_t exp_digits = 0;
    while (i < body.size() && std::isdigit(static_cast<unsigned char>(body[i])))
      ++i, ++exp_digits;
    if (exp_digits == 0)
      return std::nullopt;
  }
  if (i != body.size())
    return std::nullopt;
  double value = 0;
  const auto [end, err] = std::from_chars(body.data(), body.data() + body.size(), value);
  if (end != body.data() + body.size()
      || (err != std::errc() && err != std::errc::result_out_of_range))
    return std::nullopt;
  return ojson(negative ? -value : value);
}

// A plain (unquoted, untagged) scalar, resolved by the YAML 1.2 core schema.
ojson resolve_plain(const std::string& s) {
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL")
    return nullptr;
  if (s == "true" || s == "True" || s == "TRUE")
    return true;
  if (s == "false" || s == "False" || s == "FALSE")
    return false;
  if (auto i = core_int(s))
    return std::move(*i);
  if (auto f = core_float(s))
    return std::move(*f);
  return s;
}

class converter {
public:
  ojson convert(const YAML::Node& node, int depth);
  std::vector<config_problem>& problems() { return problems_; }

private:
  // At most one problem per position, as json_checks reports: an alias
  // expanded many times would otherwise repeat its problem every time.
  void fail(const YAML::Node& node, std::string message) {
    std::string at = where(node.Mark());
    if (reported_.insert(at).second)
      problems_.push_back({std::move(at), std::move(message)});
  }
  bool known_tag(const YAML::Node& node, std::string_view kind) {
    const std::string& tag = node.Tag();
    if (tag.empty() || tag == "?" || tag == "!"
        || tag == std::string(core_tag) + std::string(kind))
      return true;
    fail(node, "unsupported YAML tag for a " + std::string(kind)
                 + "; only the standard ones (!!str, !!int, !!float, !!bool, "
                   "!!null, !!seq, !!map) are read");
    return false;
  }
  ojson convert_scalar(const YAML::Node& node);
  ojson convert_map(const YAML::Node& node, int depth);
  void merge_into(const YAML::Node& source, int depth, std::vector<std::pair<std::string, ojson>>& pairs);
  std::optional<std::string> key_of(const YAML::Node& key);

  std::vector<config_problem> problems_;
  std::unordered_set<std::string> reported_;
  std::size_t nodes_ = 0;
  bool too_large_ = false;
};

ojson converter::convert(const YAML::Node& node, int depth) {
  if (depth > max_depth) {
    fail(node, "nested too deeply (more than " + std::to_string(max_depth) + " levels)");
    return nullptr;
  }
  if (++nodes_ > max_nodes) {
    if (!too_large_)
      fail(node, "too many values once aliases are expanded");
    too_large_ = true;
    return nullptr;
  }
  switch (node.Type()) {
  case YAML::NodeType::Scalar:
    return convert_scalar(node);
  case YAML::NodeType::Sequence: {
    ojson out = ojson::array();
    if (!known_tag(node, "seq"))
      return out;
    for (const auto& item : node)
      out.push_back(convert(item, depth + 1));
    return out;
  }
  case YAML::NodeType::Map:
    if (!known_tag(node, "map"))
      return ojson::object();
    return convert_map(node, depth);
  case YAML::NodeType::Null:
    // `key: ""` is a scalar; `key: !!str` (nothing after the tag) is null
    // to yaml-cpp but the empty string to PyYAML.
    if (node.Tag() == std::string(core_tag) + "str")
      return "";
    return nullptr;
  case YAML::NodeType::Undefined:
    return nullptr;
  }
  return nullptr;
}

ojson converter::convert_scalar(const YAML::Node& node) {
  const std::string& tag = node.Tag();
  const std::string& text = node.Scalar();
  // "!" is the tag of every quoted or block scalar: a string, always.
  if (tag == "!" || tag == std::string(core_tag) + "str")
    return text;
  if (tag == "?" || tag.empty())
    return resolve_plain(text);
  for (std::string_view kind : {"null", "bool", "int", "float"}) {
    if (tag != std::string(core_tag) + std::string(kind))
      continue;
    ojson value = resolve_plain(text);
    const bool fits = kind == "null"    ? value.is_null()
                    : kind == "bool"    ? value.is_boolean()
                    : kind == "int"     ? value.is_number_integer()
                                        : value.is_number();
    if (fits)
      return kind == "float" ? ojson(value.get<double>()) : value;
    fail(node, "the value does not match its !!" + std::string(kind) + " tag");
    return nullptr;
  }
  fail(node, "unsupported YAML tag for a scalar; only the standard ones (!!str, "
             "!!int, !!float, !!bool, !!null, !!seq, !!map) are read");
  return nullptr;
}

std::optional<std::string> converter::key_of(const YAML::Node& key) {
  if (key.IsScalar())
    return key.Scalar();
  fail(key, "expected a string as mapping key");
  return std::nullopt;
}

// `<<: *base` or `<<: [*a, *b]`, as PyYAML's flatten_mapping does it: the
// merged pairs come first (with several sources, the first listed wins),
// then the mapping's own pairs, which win over merged ones.
void converter::merge_into(const YAML::Node& source, int depth,
                           std::vector<std::pair<std::string, ojson>>& pairs) {
  std::vector<YAML::Node> sources;
  if (source.IsMap()) {
    sources.push_back(source);
  } else if (source.IsSequence()) {
    for (const auto& item : source) {
      if (!item.IsMap()) {
        fail(item, "expected a mapping to merge");
        return;
      }
      sources.push_back(item);
    }
  } else {
    fail(source, "expected a mapping or a list of mappings to merge");
    return;
  }
  for (auto s = sources.rbegin(); s != sources.rend(); ++s) {
    ojson merged = convert_map(*s, depth + 1);
    for (auto& item : merged.items())
      pairs.emplace_back(item.key(), std::move(item.value()));
  }
}

ojson converter::convert_map(const YAML::Node& node, int depth) {
  // Merges reach here without passing convert(): a mapping that merges
  // itself (`a: &a {<<: *a}`) would recurse for ever.
  if (depth > max_depth) {
    fail(node, "nested too deeply (more than " + std::to_string(max_depth) + " levels)");
    return ojson::object();
  }
  // Merged mappings are expanded values too: a mapping merging itself twice
  // per level (`d: &d {x: [{<<: *d}, {<<: *d}]}`) doubles at every level.
  if (too_large_)
    return ojson::object();
  if (++nodes_ > max_nodes) {
    fail(node, "too many values once aliases are expanded");
    too_large_ = true;
    return ojson::object();
  }
  std::vector<std::pair<std::string, ojson>> merged;
  std::vector<std::pair<std::string, ojson>> own;
  for (const auto& item : node) {
    const YAML::Node& key = item.first;
    if (key.IsScalar() && key.Scalar() == "<<" && key.Tag() == "?") {
      merge_into(item.second, depth, merged);
      continue;
    }
    auto name = key_of(key);
    if (!name)
      continue;
    own.emplace_back(std::move(*name), convert(item.second, depth + 1));
  }
  // A repeated key keeps its first position and takes its last value, as a
  // Python dict (PyYAML) and nlohmann's JSON parser both do.
  ojson out = ojson::object();
  for (auto* pairs : {&merged, &own})
    for (auto& [key, value] : *pairs)
      out[key] = std::move(value);
  return out;
}

} // namespace

// Counts documents through yaml-cpp's event interface, keeping the mark of
// the second one.
class document_counter final : public YAML::EventHandler {
public:
  void OnDocumentStart(const YAML::Mark& mark) override {
    if (++count == 2)
      second = mark;
  }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}

  int count = 0;
  YAML::Mark second;
};

nlohmann::ordered_json yaml_to_json(const std::string& text) {
  YAML::Node document;
  try {
    // At most two documents are looked at: yaml-cpp's LoadAll never ends on
    // some inputs (a lone "," yields empty documents for ever).
    std::istringstream in(text);
    YAML::Parser parser(in);
    document_counter counter;
    while (counter.count < 2 && parser.HandleNextDocument(counter)) {
    }
    if (counter.count > 1)
      throw config_error({{where(counter.second), "expected one YAML document, found a second one"}});
    if (counter.count == 0)
      return nullptr;
    document = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    // e.msg is yaml-cpp's fixed description ("end of map not found"); the
    // offending text is not in it.
    throw config_error({{where(e.mark), e.msg}});
  }
  converter c;
  ojson doc = c.convert(document, 0);
  if (!c.problems().empty())
    throw config_error(std::move(c.problems()));
  return doc;
}

} // namespace switchyard
