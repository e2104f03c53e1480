#include "switchyard/token_estimate.hpp"

#include <nlohmann/json.hpp>

namespace switchyard {

namespace {

constexpr std::uint32_t priming_tokens = 3;
constexpr std::uint32_t per_message_tokens = 3;

std::uint32_t string_tokens(const nlohmann::json& v) noexcept {
  return v.is_string() ? estimate_text_tokens(v.get_ref<const std::string&>()) : 0;
}

} // namespace

std::uint32_t estimate_text_tokens(std::string_view text) noexcept {
  return static_cast<std::uint32_t>((text.size() + 3) / 4);
}

std::uint32_t estimate_prompt_tokens(const nlohmann::json& messages) noexcept {
  if (!messages.is_array())
    return 0;
  std::uint32_t total = priming_tokens;
  for (const auto& m : messages) {
    if (!m.is_object())
      continue;
    total += per_message_tokens;
    if (auto i = m.find("role"); i != m.end())
      total += string_tokens(*i);
    if (auto i = m.find("name"); i != m.end())
      total += string_tokens(*i);
    auto content = m.find("content");
    if (content == m.end())
      continue;
    if (content->is_string())
      total += string_tokens(*content);
    else if (content->is_array())
      for (const auto& part : *content)
        if (part.is_object())
          if (auto t = part.find("text"); t != part.end())
            total += string_tokens(*t);
  }
  return total;
}

} // namespace switchyard
