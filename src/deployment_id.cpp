#include "ordered_config.hpp"

#include <openssl/evp.h>

#include <array>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <memory>
#include <stdexcept>

// LiteLLM (router.py, Router._generate_model_id) builds the id as
//
//   concat_str = model_group
//   for k, v in litellm_params.items():
//       concat_str += k
//       concat_str += v if isinstance(v, str) else
//                     json.dumps(v) if isinstance(v, dict) else str(v)
//   return hashlib.sha256(concat_str.encode()).hexdigest()
//
// so a dict value is written by json.dumps (ASCII-escaped, ", " and ": "),
// which is also what ROUTER_SEMANTICS.md section 1 says. A list value is
// written by str(), i.e. Python's repr of a list (['a', 1, True, None],
// nested dicts as {'k': 'v'}); the spec is silent on lists, so we follow
// LiteLLM there so that ids keep matching.

namespace switchyard {

namespace {

using ojson = nlohmann::ordered_json;

// Decodes one UTF-8 sequence at s[i], advancing i. Strings parsed by
// nlohmann are valid UTF-8; for anything else a stray byte stands for itself.
char32_t next_code_point(const std::string& s, std::size_t& i) {
  const auto byte = [&](std::size_t k) {
    return static_cast<unsigned char>(s[k]);
  };
  const unsigned char lead = byte(i);
  const int extra = lead < 0x80 ? 0 : (lead >> 5) == 0x6 ? 1 : (lead >> 4) == 0xe ? 2
                  : (lead >> 3) == 0x1e ? 3 : -1;
  if (extra <= 0 || i + extra >= s.size()) {
    ++i;
    return lead;
  }
  char32_t cp = lead & (0x3f >> extra);
  for (int k = 1; k <= extra; ++k) {
    if ((byte(i + k) & 0xc0) != 0x80) {
      ++i;
      return lead;
    }
    cp = (cp << 6) | (byte(i + k) & 0x3f);
  }
  i += extra + 1;
  return cp;
}

std::string hex_escape(const char* prefix, int digits, unsigned value) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%s%0*x", prefix, digits, value);
  return buf;
}

// Python's json.dumps string literal (ensure_ascii=True).
void append_json_string(std::string& out, const std::string& s) {
  out += '"';
  for (std::size_t i = 0; i < s.size();) {
    const char32_t cp = next_code_point(s, i);
    switch (cp) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (cp >= 0x20 && cp < 0x7f) {
          out += static_cast<char>(cp);
        } else if (cp < 0x10000) {
          out += hex_escape("\\u", 4, cp);
        } else { // a UTF-16 surrogate pair, as Python writes it
          const unsigned v = cp - 0x10000;
          out += hex_escape("\\u", 4, 0xd800 | (v >> 10));
          out += hex_escape("\\u", 4, 0xdc00 | (v & 0x3ff));
        }
    }
  }
  out += '"';
}

// Python's str.isprintable() for one non-ASCII code point: false for the
// control, format, separator, surrogate and private-use characters. Exact for
// every assigned code point (Unicode 14, Python 3.11); unassigned ones count
// as printable here, which Python would escape.
bool python_printable(char32_t cp) {
  struct range { char32_t lo, hi; };
  static constexpr std::array<range, 24> hidden{{
    {0x80, 0xa0}, {0xad, 0xad}, {0x600, 0x605}, {0x61c, 0x61c}, {0x6dd, 0x6dd},
    {0x70f, 0x70f}, {0x890, 0x891}, {0x8e2, 0x8e2}, {0x1680, 0x1680},
    {0x180e, 0x180e}, {0x2000, 0x200f}, {0x2028, 0x202f}, {0x205f, 0x206f},
    {0x3000, 0x3000}, {0xd800, 0xf8ff}, {0xfeff, 0xfeff}, {0xfff9, 0xfffb},
    {0x110bd, 0x110bd}, {0x110cd, 0x110cd}, {0x13430, 0x1343f},
    {0x1bca0, 0x1bca3}, {0x1d173, 0x1d17a}, {0xe0001, 0xe007f},
    {0xf0000, 0x10ffff},
  }};
  for (const auto& r : hidden)
    if (cp >= r.lo && cp <= r.hi)
      return false;
  return true;
}

// Python's repr() of a str, as str(list) writes its elements.
void append_python_string(std::string& out, const std::string& s) {
  const bool has_single = s.find('\'') != std::string::npos;
  const bool has_double = s.find('"') != std::string::npos;
  const char quote = has_single && !has_double ? '"' : '\'';
  out += quote;
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t start = i;
    const char32_t cp = next_code_point(s, i);
    if (cp == static_cast<char32_t>(quote) || cp == '\\') {
      out += '\\';
      out += static_cast<char>(cp);
    } else if (cp == '\n') {
      out += "\\n";
    } else if (cp == '\r') {
      out += "\\r";
    } else if (cp == '\t') {
      out += "\\t";
    } else if (cp < 0x20 || cp == 0x7f) {
      out += hex_escape("\\x", 2, cp);
    } else if (cp < 0x7f || python_printable(cp)) {
      out.append(s, start, i - start);
    } else if (cp <= 0xff) {
      out += hex_escape("\\x", 2, cp);
    } else if (cp <= 0xffff) {
      out += hex_escape("\\u", 4, cp);
    } else {
      out += hex_escape("\\U", 8, cp);
    }
  }
  out += quote;
}

// Python's repr() of a float: the shortest round-trip digits, positional
// for exponents in [-4, 16), scientific ("1e-05", "1e+16") otherwise.
std::string python_float(double v) {
  if (std::isnan(v))
    return "nan";
  if (std::isinf(v))
    return v < 0 ? "-inf" : "inf";
  if (v == 0)
    return std::signbit(v) ? "-0.0" : "0.0";
  char buf[64];
  const auto res = std::to_chars(buf, buf + sizeof buf, v,
                                 std::chars_format::scientific);
  const std::string sci(buf, res.ptr); // e.g. "-1.25e-05"
  const std::size_t e_pos = sci.find('e');
  std::string sign, digits;
  for (std::size_t k = 0; k < e_pos; ++k) {
    if (sci[k] == '-')
      sign = "-";
    else if (sci[k] != '.')
      digits += sci[k];
  }
  const int exponent = std::stoi(sci.substr(e_pos + 1));
  const int point = exponent + 1; // digits are 0.d1d2... * 10^point
  const int n = static_cast<int>(digits.size());
  if (point < -3 || point > 16) {
    std::string mantissa = digits.substr(0, 1);
    if (n > 1)
      mantissa += "." + digits.substr(1);
    char exp_buf[16];
    std::snprintf(exp_buf, sizeof exp_buf, "e%c%02d", exponent < 0 ? '-' : '+',
                  std::abs(exponent));
    return sign + mantissa + exp_buf;
  }
  if (point <= 0)
    return sign + "0." + std::string(-point, '0') + digits;
  if (point >= n)
    return sign + digits + std::string(point - n, '0') + ".0";
  return sign + digits.substr(0, point) + "." + digits.substr(point);
}

// The scalars, where str(), repr() and json.dumps agree but for the
// spelling of true/false/null.
bool append_scalar(std::string& out, const ojson& v, bool python) {
  switch (v.type()) {
    case ojson::value_t::null: out += python ? "None" : "null"; return true;
    case ojson::value_t::boolean:
      out += v.get<bool>() ? (python ? "True" : "true") : (python ? "False" : "false");
      return true;
    case ojson::value_t::number_integer: out += std::to_string(v.get<std::int64_t>()); return true;
    case ojson::value_t::number_unsigned: out += std::to_string(v.get<std::uint64_t>()); return true;
    case ojson::value_t::number_float: out += python_float(v.get<double>()); return true;
    default: return false;
  }
}

// python == false: json.dumps(v); python == true: repr(v).
void append_value(std::string& out, const ojson& v, bool python) {
  if (append_scalar(out, v, python))
    return;
  const auto append_str = python ? append_python_string : append_json_string;
  if (v.is_string()) {
    append_str(out, v.get_ref<const std::string&>());
  } else if (v.is_array()) {
    out += '[';
    for (std::size_t k = 0; k < v.size(); ++k) {
      if (k > 0)
        out += ", ";
      append_value(out, v[k], python);
    }
    out += ']';
  } else if (v.is_object()) {
    out += '{';
    bool first = true;
    for (const auto& [key, item] : v.items()) {
      if (!first)
        out += ", ";
      first = false;
      append_str(out, key);
      out += ": ";
      append_value(out, item, python);
    }
    out += '}';
  } else { // binary: cannot come from JSON text
    out += v.dump();
  }
}

std::string sha256_hex(const std::string& data) {
  const std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(
    EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1
      || EVP_DigestUpdate(ctx.get(), data.data(), data.size()) != 1
      || EVP_DigestFinal_ex(ctx.get(), digest, &length) != 1)
    throw std::runtime_error("SHA-256 is not available from OpenSSL");
  std::string out;
  for (unsigned int k = 0; k < length; ++k)
    out += hex_escape("", 2, digest[k]);
  return out;
}

} // namespace

std::string litellm_deployment_id(const std::string& model_name,
                                  const ojson& litellm_params) {
  std::string concat = model_name;
  if (litellm_params.is_object()) {
    for (const auto& [key, value] : litellm_params.items()) {
      concat += key;
      if (value.is_string())
        concat += value.get_ref<const std::string&>();
      else
        append_value(concat, value, /*python=*/!value.is_object());
    }
  }
  return sha256_hex(concat);
}

} // namespace switchyard
