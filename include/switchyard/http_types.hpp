#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace switchyard {

/// One HTTP header. `secret` marks a value that carries a credential (an
/// auth header, an extra_headers value from os.environ/): anything that
/// logs or prints headers shows secret::redacted instead. Immutable, share
/// freely.
struct http_header {
  std::string name;
  std::string value;
  bool secret = false;
};

using http_headers = std::vector<http_header>;

/// The value of the first header named `name` (ASCII case-insensitive).
std::optional<std::string_view> find_header(const http_headers& headers,
                                            std::string_view name) noexcept;

/// A request a provider codec built: what the HTTP client sends.
struct http_request_spec {
  std::string method = "POST";
  std::string url;
  http_headers headers;
  std::string body;
};

/// TLS settings of one endpoint: `ssl_verify` false turns verification off;
/// a CA bundle path replaces the system store.
struct tls_settings {
  bool verify = true;
  std::string ca_file;
};

} // namespace switchyard
