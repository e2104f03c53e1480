#pragma once

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <string_view>

namespace switchyard {

/// Estimated tokens of a text: ceil(bytes / 4), the usual rule of thumb for
/// English with BPE tokenizers (OpenAI's own guidance). Pure.
std::uint32_t estimate_text_tokens(std::string_view text) noexcept;

/// Estimated prompt tokens of an OpenAI messages array, as the pre-call
/// checks and usage-based routing use it: 3 tokens of priming, plus per
/// message 3 tokens of framing and the estimate of each text (the role, the
/// content string or each text part of a content array, and a `name`).
/// Anything that is not an array of objects counts 0. Pure.
std::uint32_t estimate_prompt_tokens(const nlohmann::json& messages) noexcept;

} // namespace switchyard
