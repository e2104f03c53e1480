#include "switchyard/http_types.hpp"

namespace switchyard {

namespace {

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size())
    return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    auto x = static_cast<unsigned char>(a[i]);
    auto y = static_cast<unsigned char>(b[i]);
    if (x >= 'A' && x <= 'Z')
      x = static_cast<unsigned char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z')
      y = static_cast<unsigned char>(y - 'A' + 'a');
    if (x != y)
      return false;
  }
  return true;
}

} // namespace

std::optional<std::string_view> find_header(const http_headers& headers,
                                            std::string_view name) noexcept {
  for (const auto& h : headers)
    if (iequals(h.name, name))
      return std::string_view(h.value);
  return std::nullopt;
}

} // namespace switchyard
