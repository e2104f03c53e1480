#include "json_checks.hpp"
#include "ordered_config.hpp"
#include "yaml_config.hpp"

#include "switchyard/provider.hpp"
#include "switchyard/config_keys.hpp"
#include "switchyard/request.hpp"
#include "switchyard/routing_strategy.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <unordered_map>
#include <unordered_set>

namespace switchyard {

namespace {

using ojson = nlohmann::ordered_json;
using key_list = std::vector<std::string_view>;

constexpr std::string_view env_prefix = "os.environ/";

// The keys Switchyard reads in router_settings and litellm_settings (and
// the only top-level sections it reads are these two and model_list).
// Everything else is ignored (LiteLLM has many more), and its os.environ/
// references are left alone: a proxy config names REDIS_PASSWORD or
// LITELLM_MASTER_KEY there, which this process need not have.
const key_list router_keys = config_key_names(key_section::router_settings);
// litellm_settings keys that LiteLLM's Router falls back to (module globals
// such as litellm.num_retries) when router_settings leaves them unset.
const key_list litellm_keys = config_key_names(key_section::litellm_settings);

// What a mock reads of its litellm_params: the table's keys but those only
// a real endpoint uses (a mock notes them as ignored).
const key_list& mock_params() {
  static const key_list keys = [] {
    constexpr std::string_view transport_only[] = {"api_version", "azure_ad_token",
                                                   "organization", "extra_headers",
                                                   "ssl_verify"};
    key_list out;
    for (auto k : config_key_names(key_section::litellm_params))
      if (std::find(std::begin(transport_only), std::end(transport_only), k)
          == std::end(transport_only))
        out.push_back(k);
    return out;
  }();
  return keys;
}

bool is_known(const key_list& known, std::string_view key) {
  return std::find(known.begin(), known.end(), key) != known.end();
}

std::string format_problems(const std::vector<config_problem>& problems) {
  std::string out;
  for (const auto& p : problems) {
    if (!out.empty())
      out += '\n';
    out += p.path + ": " + p.message;
  }
  return out;
}

std::string comma_list(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items)
    out += (out.empty() ? "" : ", ") + item;
  return out;
}

template <class T, class U>
void set_if(T& field, const std::optional<U>& value) {
  if (value)
    field = static_cast<T>(*value);
}

// The keys of LiteLLM's RetryPolicy / AllowedFailsPolicy: `<kind><suffix>`.
struct per_kind_field {
  std::string_view kind;
  std::optional<int> per_kind_counts::*member;
};
constexpr per_kind_field per_kind_fields[] = {
  {"BadRequestError", &per_kind_counts::bad_request},
  {"AuthenticationError", &per_kind_counts::authentication},
  {"TimeoutError", &per_kind_counts::timeout},
  {"RateLimitError", &per_kind_counts::rate_limit},
  {"ContentPolicyViolationError", &per_kind_counts::content_policy_violation},
  {"InternalServerError", &per_kind_counts::internal_server},
};

// One load: resolves os.environ/ references, validates, and collects every
// problem before throwing. Lives for one load_config call.
class loader {
public:
  explicit loader(const env_lookup& env) : env_(env) {}

  router_config load(ojson doc);

private:
  void resolve_env(ojson& value, const std::string& path);
  void resolve_known(ojson& section, const std::string& path, const key_list& known);
  void note_unknown(const ojson& obj, const std::string& path, const key_list& known);
  void reject_from_env(const std::string& path, const std::string& what) {
    if (from_env_.count(path))
      check_.fail(path, "cannot come from os.environ/: " + what
                          + " is printed in results, traces and logs");
  }
  // Echoing a value is only allowed when it did not come from the environment.
  std::string quoted_unless_secret(const std::string& value,
                                   const std::string& path) const {
    return from_env_.count(path) ? std::string() : " '" + value + "'";
  }

  std::optional<deployment_config> load_deployment(const ojson& d,
                                                   const std::string& path,
                                                   std::string& id_path);
  void load_litellm_params(const ojson& p, const std::string& path,
                           deployment_config& dep);
  std::shared_ptr<const provider_endpoint> load_endpoint(const ojson& p,
                                                         const std::string& path,
                                                         deployment_config& dep);
  void load_extra_headers(const ojson& p, const std::string& path, http_headers& headers);
  void load_tls(const ojson& p, const std::string& path, tls_settings& tls);
  void load_shared_settings(const ojson& s, const std::string& path,
                            std::string_view timeout_key, const router_config& cfg,
                            router_settings& out);
  void load_litellm_settings(const ojson& s, const std::string& path,
                             const router_config& cfg, router_settings& out);
  void load_router_settings(const ojson& s, const std::string& path,
                            const router_config& cfg, router_settings& out);
  std::optional<redis_settings> load_redis_settings(const ojson& s, const std::string& path);
  per_kind_counts per_kind_at(const ojson& policy, const std::string& path,
                              std::string_view suffix, std::int64_t max = INT_MAX);
  void load_group_retry_policy(const ojson& groups, const std::string& path,
                               const router_config& cfg, router_settings& out);
  void load_group_alias(const ojson& aliases, const std::string& path,
                        const router_config& cfg, router_settings& out);
  std::optional<std::vector<fallback_rule>> fallbacks_at(const ojson& s,
                                                         std::string_view key,
                                                         const std::string& parent,
                                                         const router_config& cfg);
  std::vector<std::string> group_names(const ojson& list,
                                       const std::string& path,
                                       const router_config& cfg);
  void check_group(const std::string& name, const std::string& path,
                   const router_config& cfg);

  // Reads a number or an integer with the bounds of its config_keys entry.
  std::optional<double> number(const ojson& obj, key_section section, std::string_view key,
                               const std::string& path) {
    const auto& k = config_key_of(section, key);
    return check_.number_at(obj, key, path,
                            number_rule{k.min, k.above, k.max, expected_text(k).data()});
  }
  std::optional<std::int64_t> integer(const ojson& obj, key_section section,
                                      std::string_view key, const std::string& path) {
    const auto& k = config_key_of(section, key);
    const auto max = k.max >= 9.2e18 ? INT64_MAX : static_cast<std::int64_t>(k.max);
    return check_.integer_at(obj, key, path, static_cast<std::int64_t>(k.min), max);
  }

  const env_lookup& env_;
  std::vector<config_problem> problems_;
  json_checks check_{problems_};
  std::unordered_set<std::string> from_env_;
  std::vector<std::string> unknown_;
};

void loader::resolve_env(ojson& value, const std::string& path) {
  if (value.is_array()) {
    for (std::size_t i = 0; i < value.size(); ++i)
      resolve_env(value[i], index_path(path, i));
  } else if (value.is_object()) {
    for (auto& item : value.items())
      resolve_env(item.value(), key_path(path, item.key()));
  } else if (value.is_string()) {
    const auto& text = value.get_ref<const std::string&>();
    if (text.compare(0, env_prefix.size(), env_prefix) != 0)
      return;
    const std::string name = text.substr(env_prefix.size());
    from_env_.insert(path);
    if (auto resolved = env_ ? env_(name) : std::nullopt)
      value = std::move(*resolved);
    else
      check_.fail(path, "environment variable " + name + " is not set");
  }
}

void loader::resolve_known(ojson& section, const std::string& path,
                           const key_list& known) {
  if (!section.is_object())
    return;
  for (auto& item : section.items())
    if (is_known(known, item.key()))
      resolve_env(item.value(), key_path(path, item.key()));
}

void loader::note_unknown(const ojson& obj, const std::string& path,
                          const key_list& known) {
  for (const auto& item : obj.items())
    if (!is_known(known, item.key()))
      unknown_.push_back(key_path(path, item.key()));
}

router_config loader::load(ojson doc) {
  router_config cfg;
  if (!doc.is_object()) {
    check_.fail("", "expected a JSON object");
    throw config_error(std::move(problems_));
  }
  // Every value of model_list counts: the generated ids hash all of
  // litellm_params, so an unresolved reference there is always an error.
  std::vector<std::string> ignored_sections;
  for (auto& item : doc.items()) {
    if (item.key() == "model_list")
      resolve_env(item.value(), item.key());
    else if (item.key() == "router_settings")
      resolve_known(item.value(), item.key(), router_keys);
    else if (item.key() == "litellm_settings")
      resolve_known(item.value(), item.key(), litellm_keys);
    else
      ignored_sections.push_back(item.key());
  }

  const ojson* list = json_checks::find(doc, "model_list");
  if (!list)
    check_.fail("model_list", "is required");
  else if (!list->is_array() || list->empty())
    check_.fail("model_list", "expected a non-empty array");
  else {
    std::unordered_map<std::string, std::size_t> first_use;
    for (std::size_t i = 0; i < list->size(); ++i) {
      std::string id_path;
      auto dep = load_deployment((*list)[i], index_path("model_list", i), id_path);
      if (!dep)
        continue;
      // An empty id means litellm_params was unusable, already reported.
      auto [used, fresh] = first_use.emplace(dep->id, i);
      if (!fresh && !dep->id.empty())
        check_.fail(id_path, "duplicate deployment id (also used by "
                               + index_path("model_list", used->second) + ")");
      cfg.deployments.push_back(std::move(*dep));
    }
  }
  cfg.index_groups();

  // litellm_settings first, then router_settings over it: a key set in both
  // takes router_settings' value, as LiteLLM's Router prefers its own
  // arguments to the litellm.* globals that litellm_settings sets.
  if (const ojson* s = check_.object_at(doc, "litellm_settings", ""))
    load_litellm_settings(*s, "litellm_settings", cfg, cfg.settings);
  if (const ojson* s = check_.object_at(doc, "router_settings", ""))
    load_router_settings(*s, "router_settings", cfg, cfg.settings);

  if (!ignored_sections.empty())
    spdlog::info("config: ignoring sections Switchyard does not use: {}",
                 comma_list(ignored_sections));
  if (!unknown_.empty())
    spdlog::debug("config: ignoring unknown keys: {}", comma_list(unknown_));
  if (!problems_.empty())
    throw config_error(std::move(problems_));
  return cfg;
}

std::optional<deployment_config>
loader::load_deployment(const ojson& d, const std::string& path,
                        std::string& id_path) {
  if (!d.is_object()) {
    check_.fail(path, "expected an object");
    return std::nullopt;
  }
  note_unknown(d, path, config_key_names(key_section::deployment));
  deployment_config dep;
  // Names and ids are printed in results, traces, logs and `check`, and a
  // value from the environment never is: so they cannot come from there
  // (LiteLLM resolves os.environ/ in litellm_params only).
  reject_from_env(key_path(path, "model_name"), "a model group name");
  dep.model_name = check_.string_at(d, "model_name", path, required | non_empty)
                     .value_or("");
  // Top-level rpm/tpm mean the same as in litellm_params, which wins.
  set_if(dep.rpm, number(d, key_section::deployment, "rpm", path));
  set_if(dep.tpm, number(d, key_section::deployment, "tpm", path));
  const ojson* params = check_.object_at(d, "litellm_params", path, required);
  if (params)
    load_litellm_params(*params, key_path(path, "litellm_params"), dep);

  id_path = path;
  if (const ojson* info = check_.object_at(d, "model_info", path)) {
    const std::string info_path = key_path(path, "model_info");
    note_unknown(*info, info_path, config_key_names(key_section::model_info));
    if (const ojson* id = json_checks::find(*info, "id")) {
      id_path = key_path(info_path, "id");
      reject_from_env(id_path, "a deployment id");
      // LiteLLM ids are strings; a numeric id keeps its JSON spelling.
      if (id->is_number())
        dep.id = id->dump();
      else if (id->is_string() && !id->get_ref<const std::string&>().empty())
        dep.id = id->get<std::string>();
      else
        check_.fail(id_path, "expected a non-empty string or a number");
    }
    set_if(dep.max_input_tokens,
           integer(*info, key_section::model_info, "max_input_tokens", info_path));
    // Costs may sit in either place; litellm_params wins.
    const auto input_cost = number(*info, key_section::model_info, "input_cost_per_token", info_path);
    const auto output_cost = number(*info, key_section::model_info, "output_cost_per_token", info_path);
    if (!dep.input_cost_per_token)
      set_if(dep.input_cost_per_token, input_cost);
    if (!dep.output_cost_per_token)
      set_if(dep.output_cost_per_token, output_cost);
  }
  if (dep.id.empty() && params)
    dep.id = litellm_deployment_id(dep.model_name, *params);
  return dep;
}

void loader::load_litellm_params(const ojson& p, const std::string& path,
                                 deployment_config& dep) {
  dep.model = check_.string_at(p, "model", path, required | non_empty).value_or("");
  dep.model_from_env = from_env_.count(key_path(path, "model")) != 0;
  if (auto key = check_.string_at(p, "api_key", path))
    dep.api_key = secret(std::move(*key));
  set_if(dep.api_base, check_.string_at(p, "api_base", path));
  set_if(dep.weight, number(p, key_section::litellm_params, "weight", path));
  set_if(dep.rpm, number(p, key_section::litellm_params, "rpm", path));
  set_if(dep.tpm, number(p, key_section::litellm_params, "tpm", path));
  set_if(dep.order, integer(p, key_section::litellm_params, "order", path));
  set_if(dep.timeout_s, number(p, key_section::litellm_params, "timeout", path));
  set_if(dep.stream_timeout_s, number(p, key_section::litellm_params, "stream_timeout", path));
  set_if(dep.cooldown_time_s, number(p, key_section::litellm_params, "cooldown_time", path));
  set_if(dep.num_retries, integer(p, key_section::litellm_params, "num_retries", path));
  set_if(dep.input_cost_per_token,
         number(p, key_section::litellm_params, "input_cost_per_token", path));
  set_if(dep.output_cost_per_token,
         number(p, key_section::litellm_params, "output_cost_per_token", path));
  if (const ojson* mock = json_checks::find(p, "mock_response"))
    dep.mock = parse_mock_response(nlohmann::json(*mock),
                                   key_path(path, "mock_response"), problems_);
  set_if(dep.mock_latency_ms, number(p, key_section::litellm_params, "mock_latency_ms", path));
  set_if(dep.mock_latency_jitter_ms,
         number(p, key_section::litellm_params, "mock_latency_jitter_ms", path));
  set_if(dep.mock_first_token_ms,
         number(p, key_section::litellm_params, "mock_first_token_ms", path));
  set_if(dep.mock_failure_rate, number(p, key_section::litellm_params, "mock_failure_rate", path));
  if (auto kind = check_.string_at(p, "mock_failure", path, non_empty))
    set_if(dep.mock_failure, check_.error_kind_at(*kind, key_path(path, "mock_failure")));
  set_if(dep.mock_failure_after_calls,
         integer(p, key_section::litellm_params, "mock_failure_after_calls", path));
  // A real deployment sends every key that is not the router's or the
  // transport's as a provider parameter, so none is unknown there; a mock
  // ignores all it does not read.
  if (json_checks::find(p, "mock_response"))
    note_unknown(p, path, mock_params());
  else if (!dep.model.empty())
    dep.endpoint = load_endpoint(p, path, dep);
}

// LiteLLM's litellm_params that are the router's or the transport's, never
// sent upstream as provider parameters (besides router_request_keys() and
// every mock_* key). docs/configuration.md lists them.
const key_list deployment_keys = {
  "model", "api_key", "api_base", "api_version", "azure_ad_token", "extra_headers",
  "ssl_verify", "weight", "rpm", "tpm", "order", "timeout", "stream_timeout",
  "cooldown_time", "num_retries", "max_retries", "input_cost_per_token",
  "output_cost_per_token", "input_cost_per_second", "output_cost_per_second",
  "custom_llm_provider", "base_model", "model_info", "tags", "region_name",
  "organization", "max_parallel_requests", "litellm_credential_name",
  "use_in_pass_through", "use_litellm_proxy", "merge_reasoning_content_in_choices",
  "max_budget", "budget_duration", "tenant_id", "client_id", "client_secret",
  "azure_username", "azure_password", "azure_scope", "api_type", "stream",
  "drop_params", "additional_drop_params", "configurable_clientside_auth_params",
  "litellm_trace_id", "metadata", "model_name", "deployment_id", "access_groups"};

// Credentials of other clouds (aws_secret_access_key, vertex_credentials,
// azure_client_secret, ...) are never a provider parameter either.
constexpr std::string_view deployment_key_prefixes[] = {"mock_", "aws_", "vertex_", "azure_",
                                                        "watsonx_"};

bool is_deployment_key(std::string_view key) {
  if (is_known(deployment_keys, key) || is_router_request_key(key))
    return true;
  for (auto prefix : deployment_key_prefixes)
    if (key.substr(0, prefix.size()) == prefix)
      return true;
  return false;
}

// The first of the variables that is set and non-empty.
std::optional<std::string> first_env(const env_lookup& env,
                                     std::initializer_list<std::string_view> names) {
  if (!env)
    return std::nullopt;
  for (auto name : names) {
    if (name.empty())
      continue;
    auto value = env(std::string(name));
    if (value && !value->empty())
      return value;
  }
  return std::nullopt;
}

bool is_http_url(const std::string& url) {
  return url.compare(0, 7, "http://") == 0 || url.compare(0, 8, "https://") == 0;
}

bool is_header_name(const std::string& name) {
  if (name.empty())
    return false;
  for (unsigned char c : name)
    if (c <= ' ' || c >= 127 || c == ':')
      return false;
  return true;
}

bool is_header_value(const std::string& value) {
  return value.find_first_of("\r\n") == std::string::npos
         && value.find('\0') == std::string::npos;
}

// Replaces a header of the same name (ASCII case-insensitive) or appends.
void put_header(http_headers& headers, http_header h) {
  for (auto& existing : headers)
    if (find_header({existing}, h.name)) {
      existing = std::move(h);
      return;
    }
  headers.push_back(std::move(h));
}

std::shared_ptr<const provider_endpoint>
loader::load_endpoint(const ojson& p, const std::string& path, deployment_config& dep) {
  const std::string model_path = key_path(path, "model");
  const auto slash = dep.model.find('/');
  const std::string prefix = slash == std::string::npos ? "openai" : dep.model.substr(0, slash);
  const provider_info* provider = find_provider(prefix);
  if (!provider) {
    check_.fail(model_path, "unknown provider"
                              + (dep.model_from_env ? std::string() : " '" + prefix + "'")
                              + "; expected one of: " + supported_providers()
                              + " (or a mock_response)");
    return nullptr;
  }
  auto ep = std::make_shared<provider_endpoint>();
  ep->provider = provider;
  ep->upstream_model = slash == std::string::npos ? dep.model : dep.model.substr(slash + 1);
  if (ep->upstream_model.empty())
    check_.fail(model_path, "expected a model name after the provider prefix");

  const std::string name(provider->name);
  // api_base: the params, else the provider's variable, else its default.
  endpoint_url_parts parts;
  parts.model = ep->upstream_model;
  parts.model_from_env = dep.model_from_env;
  const std::string base_path = key_path(path, "api_base");
  if (!dep.api_base.empty()) {
    parts.base = dep.api_base;
    parts.base_from_env = from_env_.count(base_path) != 0;
  } else if (auto base = first_env(env_, {provider->base_env})) {
    parts.base = *base;
    parts.base_from_env = true;
  } else {
    parts.base = std::string(provider->default_base);
  }
  if (parts.base.empty())
    check_.fail(base_path, "is required for provider '" + name + "' (or set "
                             + std::string(provider->base_env) + ")");
  else if (!is_http_url(parts.base))
    check_.fail(base_path, "expected an http:// or https:// URL");

  // The key: api_key, else the provider's variables. Azure may use an AD
  // token instead (Authorization: Bearer).
  const std::string key_path_s = key_path(path, "api_key");
  secret key = dep.api_key;
  if (key.empty())
    if (auto from_env = first_env(env_, {provider->key_env, provider->key_env_alt[0],
                                         provider->key_env_alt[1], provider->key_env_alt[2]}))
      key = secret(std::move(*from_env));
  std::optional<std::string> ad_token;
  if (provider->kind == dialect::azure) {
    ad_token = check_.string_at(p, "azure_ad_token", path, non_empty);
    if (!ad_token && key.empty())
      ad_token = first_env(env_, {"AZURE_AD_TOKEN"});
    if (auto v = check_.string_at(p, "api_version", path, non_empty)) {
      parts.api_version = *v;
      parts.api_version_from_env = from_env_.count(key_path(path, "api_version")) != 0;
    } else if (auto env_version = first_env(env_, {"AZURE_API_VERSION"})) {
      parts.api_version = *env_version;
    } else {
      parts.api_version = std::string(azure_default_api_version);
    }
  }
  if (provider->needs_key && key.empty() && !ad_token)
    check_.fail(key_path_s, "is required for provider '" + name + "' (or set "
                              + std::string(provider->key_env)
                              + (provider->kind == dialect::azure ? ", or azure_ad_token" : "")
                              + ")");
  set_endpoint_url(*ep, parts);

  const auto secret_header = [](std::string n, std::string v) {
    return http_header{std::move(n), std::move(v), true};
  };
  switch (provider->kind) {
  case dialect::azure:
    if (ad_token)
      ep->headers.push_back(secret_header("Authorization", "Bearer " + *ad_token));
    else
      ep->headers.push_back(secret_header("api-key", key.reveal()));
    break;
  case dialect::anthropic:
    ep->headers.push_back(secret_header("x-api-key", key.reveal()));
    ep->headers.push_back({"anthropic-version", std::string(anthropic_api_version), false});
    break;
  default:
    if (!key.empty())
      ep->headers.push_back(secret_header("Authorization", "Bearer " + key.reveal()));
    // As the openai client sends `organization`.
    if (auto org = check_.string_at(p, "organization", path, non_empty))
      ep->headers.push_back({"OpenAI-Organization", *org,
                             from_env_.count(key_path(path, "organization")) != 0});
  }
  ep->headers.push_back({"content-type", "application/json", false});

  load_extra_headers(p, path, ep->headers);
  load_tls(p, path, ep->tls);
  for (const auto& item : p.items())
    if (!is_deployment_key(item.key()) && !item.value().is_null())
      ep->param_defaults[item.key()] = nlohmann::json(item.value());
  return ep;
}

// extra_headers: an object of strings, each replacing a default header of
// its name; a value from os.environ/ is a secret.
void loader::load_extra_headers(const ojson& p, const std::string& path,
                                http_headers& headers) {
  const ojson* extra = check_.object_at(p, "extra_headers", path);
  if (!extra)
    return;
  const std::string extra_path = key_path(path, "extra_headers");
  for (const auto& item : extra->items()) {
    const std::string header_path = key_path(extra_path, item.key());
    if (!is_header_name(item.key())) {
      check_.fail(header_path, "expected a header name (visible ASCII, no ':')");
      continue;
    }
    if (!item.value().is_string()
        || !is_header_value(item.value().get_ref<const std::string&>())) {
      check_.fail(header_path, "expected a string without line breaks");
      continue;
    }
    put_header(headers, {item.key(), item.value().get<std::string>(),
                         from_env_.count(header_path) != 0});
  }
}

// ssl_verify: true (the default), false, or a CA bundle path.
void loader::load_tls(const ojson& p, const std::string& path, tls_settings& tls) {
  const ojson* verify = json_checks::find(p, "ssl_verify");
  if (!verify)
    return;
  if (verify->is_boolean())
    tls.verify = verify->get<bool>();
  else if (verify->is_string() && !verify->get_ref<const std::string&>().empty())
    tls.ca_file = verify->get<std::string>();
  else
    check_.fail(key_path(path, "ssl_verify"), "expected true, false or a CA bundle path");
}

// The keys router_settings and litellm_settings share; each one overwrites
// `out` only when present (and not null), so the later section wins.
void loader::load_shared_settings(const ojson& s, const std::string& path,
                                  std::string_view timeout_key,
                                  const router_config& cfg, router_settings& out) {
  const auto section = timeout_key == "timeout" ? key_section::router_settings
                                                : key_section::litellm_settings;
  set_if(out.num_retries, integer(s, section, "num_retries", path));
  set_if(out.timeout_s, number(s, section, timeout_key, path));
  set_if(out.allowed_fails, integer(s, section, "allowed_fails", path));
  set_if(out.cooldown_time_s, number(s, section, "cooldown_time", path));
  if (const ojson* policy = json_checks::find(s, "retry_policy"))
    out.retry_policy = per_kind_at(*policy, key_path(path, "retry_policy"), "Retries", max_num_retries);
  set_if(out.fallbacks, fallbacks_at(s, "fallbacks", path, cfg));
  set_if(out.context_window_fallbacks, fallbacks_at(s, "context_window_fallbacks", path, cfg));
  set_if(out.content_policy_fallbacks, fallbacks_at(s, "content_policy_fallbacks", path, cfg));
  if (const ojson* list = json_checks::find(s, "default_fallbacks"))
    out.default_fallbacks = group_names(*list, key_path(path, "default_fallbacks"), cfg);
}

void loader::load_litellm_settings(const ojson& s, const std::string& path,
                                   const router_config& cfg, router_settings& out) {
  note_unknown(s, path, litellm_keys);
  load_shared_settings(s, path, "request_timeout", cfg, out);
}

void loader::load_router_settings(const ojson& s, const std::string& path,
                                  const router_config& cfg, router_settings& out) {
  note_unknown(s, path, router_keys);
  if (auto name = check_.string_at(s, "routing_strategy", path, non_empty)) {
    const auto& registry = strategy_registry::builtin();
    const std::string name_path = key_path(path, "routing_strategy");
    if (registry.contains(*name))
      out.routing_strategy = *name;
    else
      check_.fail(name_path, "unknown routing strategy"
                               + quoted_unless_secret(*name, name_path)
                               + "; expected one of: " + registry.names());
  }
  load_shared_settings(s, path, "timeout", cfg, out);
  set_if(out.stream_timeout_s, number(s, key_section::router_settings, "stream_timeout", path));
  set_if(out.total_timeout_s, number(s, key_section::router_settings, "total_timeout", path));
  if (const ojson* policy = json_checks::find(s, "allowed_fails_policy"))
    out.allowed_fails_policy =
      per_kind_at(*policy, key_path(path, "allowed_fails_policy"), "AllowedFails");
  if (const ojson* groups = check_.object_at(s, "model_group_retry_policy", path))
    load_group_retry_policy(*groups, key_path(path, "model_group_retry_policy"), cfg, out);
  if (const ojson* aliases = check_.object_at(s, "model_group_alias", path))
    load_group_alias(*aliases, key_path(path, "model_group_alias"), cfg, out);
  set_if(out.disable_cooldowns, check_.bool_at(s, "disable_cooldowns", path));
  set_if(out.enable_weighted_failover, check_.bool_at(s, "enable_weighted_failover", path));
  set_if(out.enable_pre_call_checks, check_.bool_at(s, "enable_pre_call_checks", path));
  set_if(out.max_fallbacks, integer(s, key_section::router_settings, "max_fallbacks", path));
  if (const ojson* args = check_.object_at(s, "routing_strategy_args", path)) {
    const std::string args_path = key_path(path, "routing_strategy_args");
    note_unknown(*args, args_path, config_key_names(key_section::routing_strategy_args));
    set_if(out.lowest_latency_buffer,
           number(*args, key_section::routing_strategy_args, "lowest_latency_buffer", args_path));
  }
  out.redis = load_redis_settings(s, path);
}

// LiteLLM's redis_url, or redis_host with redis_port and redis_password;
// the url wins over the separate keys (as redis.from_url does), but for a
// password the url lacks. Values are never echoed: a url holds the
// password, and any of them may come from the environment.
std::optional<redis_settings> loader::load_redis_settings(const ojson& s,
                                                          const std::string& path) {
  redis_settings r;
  auto host = check_.string_at(s, "redis_host", path, non_empty);
  auto password = check_.string_at(s, "redis_password", path);
  auto prefix = check_.string_at(s, "redis_key_prefix", path, non_empty);
  std::optional<std::int64_t> port;
  const std::string port_path = key_path(path, "redis_port");
  if (const ojson* p = json_checks::find(s, "redis_port")) {
    // From os.environ/ a port is a string of digits.
    std::int64_t x = 0;
    if (p->is_string()) {
      const auto& text = p->get_ref<const std::string&>();
      auto res = std::from_chars(text.data(), text.data() + text.size(), x);
      if (text.empty() || res.ec != std::errc() || res.ptr != text.data() + text.size())
        check_.fail(port_path, "expected a port number (1 to 65535)");
      else if (check_.integer_in(x, port_path, 1, 65535))
        port = x;
    } else {
      port = check_.integer_at(s, "redis_port", path, 1, 65535);
    }
  }
  const std::string url_path = key_path(path, "redis_url");
  if (auto url = check_.string_at(s, "redis_url", path, non_empty)) {
    std::string error;
    auto parsed = parse_redis_url(*url, error);
    if (!parsed) {
      check_.fail(url_path, error);
      return std::nullopt;
    }
    r = std::move(*parsed);
    r.host_from_env = from_env_.count(url_path) != 0;
    if (r.password.empty() && password)
      r.password = secret(std::move(*password));
  } else if (host) {
    r.host = std::move(*host);
    r.host_from_env = from_env_.count(key_path(path, "redis_host")) != 0;
    if (port)
      r.port = static_cast<int>(*port);
    if (password)
      r.password = secret(std::move(*password));
  } else {
    return std::nullopt; // no Redis: the state stays in the process
  }
  if (prefix)
    r.key_prefix = std::move(*prefix);
  return r;
}

per_kind_counts loader::per_kind_at(const ojson& policy, const std::string& path,
                                    std::string_view suffix, std::int64_t max) {
  per_kind_counts out;
  if (!policy.is_object()) {
    check_.fail(path, "expected an object");
    return out;
  }
  out.present = true;
  for (const auto& item : policy.items()) {
    const std::string& key = item.key();
    const auto field = std::find_if(
      std::begin(per_kind_fields), std::end(per_kind_fields), [&](const per_kind_field& f) {
        return key.size() == f.kind.size() + suffix.size()
               && key.compare(0, f.kind.size(), f.kind) == 0
               && key.compare(f.kind.size(), std::string::npos, suffix) == 0;
      });
    if (field == std::end(per_kind_fields)) {
      std::string valid;
      for (const auto& f : per_kind_fields)
        valid += (valid.empty() ? "" : ", ") + std::string(f.kind) + std::string(suffix);
      check_.fail(key_path(path, key), "unknown key; expected one of: " + valid);
      continue;
    }
    set_if(out.*(field->member), check_.integer_at(policy, key, path, 0, max));
  }
  return out;
}

void loader::load_group_retry_policy(const ojson& groups, const std::string& path,
                                     const router_config& cfg, router_settings& out) {
  for (const auto& item : groups.items()) {
    const std::string group_path = key_path(path, item.key());
    if (item.value().is_null())
      continue;
    // The name is in the path already: the message need not repeat it.
    if (!cfg.find_group(item.key()))
      check_.fail(group_path, "unknown model group");
    auto policy = per_kind_at(item.value(), group_path, "Retries", max_num_retries);
    if (cfg.find_group(item.key()))
      out.model_group_retry_policy[item.key()] = policy;
  }
}

void loader::load_group_alias(const ojson& aliases, const std::string& path,
                              const router_config& cfg, router_settings& out) {
  for (const auto& item : aliases.items()) {
    const std::string& alias = item.key();
    const std::string alias_path = key_path(path, alias);
    const ojson& target = item.value();
    if (target.is_null())
      continue;
    if (alias.empty()) {
      check_.fail(path, "expected non-empty alias names");
      continue;
    }
    // An alias that shadows a group would make that group unreachable.
    if (cfg.find_group(alias)) {
      check_.fail(alias_path, "alias has the name of a model group");
      continue;
    }
    std::optional<std::string> group;
    std::string group_path = alias_path;
    if (target.is_string()) {
      group = target.get<std::string>();
    } else if (target.is_object()) {
      // LiteLLM's RouterModelGroupAliasItem: {"model": ..., "hidden": ...}.
      // `hidden` only hides the alias from model listings, which Switchyard
      // does not serve: validated, then not kept.
      note_unknown(target, alias_path, {"model", "hidden"});
      group = check_.string_at(target, "model", alias_path, required | non_empty);
      group_path = key_path(alias_path, "model");
      check_.bool_at(target, "hidden", alias_path);
    } else {
      check_.fail(alias_path,
                  "expected a model group name or a {\"model\": ..., \"hidden\": ...} object");
      continue;
    }
    if (!group)
      continue;
    if (group->empty()) {
      check_.fail(group_path, "expected a non-empty string");
      continue;
    }
    check_group(*group, group_path, cfg);
    if (cfg.find_group(*group))
      out.model_group_alias[alias] = *group;
  }
}

std::optional<std::vector<fallback_rule>> loader::fallbacks_at(const ojson& s,
                                                               std::string_view key,
                                                               const std::string& parent,
                                                               const router_config& cfg) {
  const ojson* list = json_checks::find(s, key);
  if (!list)
    return std::nullopt;
  std::vector<fallback_rule> rules;
  const std::string path = key_path(parent, key);
  if (!list->is_array()) {
    check_.fail(path, "expected an array of {\"group\": [\"fallback group\", ...]} objects");
    return rules;
  }
  for (std::size_t i = 0; i < list->size(); ++i) {
    const ojson& entry = (*list)[i];
    const std::string entry_path = index_path(path, i);
    if (!entry.is_object()) {
      check_.fail(entry_path, "expected an object mapping a model group to fallback groups");
      continue;
    }
    // Keys need not be groups of this config ("*", provider-prefixed names).
    for (const auto& item : entry.items())
      rules.push_back({item.key(),
                       group_names(item.value(), key_path(entry_path, item.key()), cfg)});
  }
  return rules;
}

std::vector<std::string> loader::group_names(const ojson& list,
                                             const std::string& path,
                                             const router_config& cfg) {
  std::vector<std::string> names;
  if (!list.is_array()) {
    check_.fail(path, "expected an array of model group names");
    return names;
  }
  for (std::size_t i = 0; i < list.size(); ++i) {
    const std::string item_path = index_path(path, i);
    if (!list[i].is_string()) {
      check_.fail(item_path, "expected a string");
      continue;
    }
    const auto& name = list[i].get_ref<const std::string&>();
    check_group(name, item_path, cfg);
    names.push_back(name);
  }
  return names;
}

void loader::check_group(const std::string& name, const std::string& path,
                         const router_config& cfg) {
  if (!cfg.find_group(name))
    check_.fail(path, "unknown model group" + quoted_unless_secret(name, path));
}

// What a config file holds, by its extension; for any other extension, by
// its first significant character (JSON documents start with { or [; a
// LiteLLM proxy config.yaml starts with a key or a comment).
bool is_yaml_file(const std::string& file, const std::string& text) {
  const auto dot = file.find_last_of("./");
  if (dot != std::string::npos && file[dot] == '.') {
    std::string ext = file.substr(dot + 1);
    for (auto& c : ext)
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (ext == "yaml" || ext == "yml")
      return true;
    if (ext == "json")
      return false;
  }
  std::size_t i = text.compare(0, 3, "\xEF\xBB\xBF") == 0 ? 3 : 0; // UTF-8 BOM
  while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i])))
    ++i;
  return i < text.size() && text[i] != '{' && text[i] != '[';
}

} // namespace

std::optional<redis_settings> parse_redis_url(std::string_view url, std::string& error) {
  const auto bad = [&error](std::string why) {
    error = std::move(why) + " (expected redis://[[user]:password@]host[:port][/db])";
    return std::nullopt;
  };
  constexpr std::string_view scheme = "redis://";
  if (url.substr(0, 9) == "rediss://")
    return bad("TLS (rediss://) is not supported");
  if (url.substr(0, scheme.size()) != scheme)
    return bad("not a redis:// url");
  std::string_view rest = url.substr(scheme.size());
  redis_settings r;
  const auto slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  if (slash != std::string_view::npos) {
    std::string_view db = rest.substr(slash + 1);
    db = db.substr(0, db.find('?'));
    if (!db.empty()) {
      int x = 0;
      auto res = std::from_chars(db.data(), db.data() + db.size(), x);
      if (res.ec != std::errc() || res.ptr != db.data() + db.size() || x < 0)
        return bad("the database after '/' is not a number");
      r.db = x;
    }
  }
  const auto at = authority.rfind('@');
  if (at != std::string_view::npos) {
    std::string_view userinfo = authority.substr(0, at);
    authority = authority.substr(at + 1);
    const auto colon = userinfo.find(':');
    r.username = std::string(userinfo.substr(0, colon));
    if (colon != std::string_view::npos)
      r.password = secret(std::string(userinfo.substr(colon + 1)));
  }
  std::string_view host = authority;
  if (!authority.empty() && authority.front() == '[') { // [::1]:6379
    const auto close = authority.find(']');
    if (close == std::string_view::npos)
      return bad("an IPv6 host lacks its ']'");
    host = authority.substr(1, close - 1);
    authority = authority.substr(close + 1);
  } else {
    host = authority.substr(0, authority.find(':'));
    authority = authority.substr(host.size());
  }
  if (!authority.empty()) {
    if (authority.front() != ':')
      return bad("unexpected text after the host");
    std::string_view port = authority.substr(1);
    int x = 0;
    auto res = std::from_chars(port.data(), port.data() + port.size(), x);
    if (port.empty() || res.ec != std::errc() || res.ptr != port.data() + port.size()
        || x < 1 || x > 65535)
      return bad("the port is not a number from 1 to 65535");
    r.port = x;
  }
  if (host.empty())
    return bad("no host");
  r.host = std::string(host);
  return r;
}

std::optional<int> per_kind_counts::for_kind(error_kind k) const {
  switch (k) {
  case error_kind::content_policy_violation:
    return content_policy_violation ? content_policy_violation : bad_request;
  case error_kind::bad_request:
  case error_kind::context_window_exceeded:
    return bad_request;
  case error_kind::authentication:
    return authentication;
  case error_kind::timeout:
    return timeout;
  case error_kind::rate_limit:
    return rate_limit;
  case error_kind::internal_server:
    return internal_server;
  default:
    return std::nullopt;
  }
}

std::optional<std::uint32_t> router_config::resolve_group(std::string_view model) const {
  if (auto g = find_group(model))
    return g;
  if (auto a = settings.model_group_alias.find(std::string(model));
      a != settings.model_group_alias.end())
    return find_group(a->second);
  return std::nullopt;
}

std::optional<std::uint32_t> router_config::find_group(std::string_view name) const {
  auto i = group_index_.find(std::string(name));
  if (i == group_index_.end())
    return std::nullopt;
  return i->second;
}

void router_config::index_groups() {
  // Hand-built configs may leave `groups` empty: derive it from model_name,
  // in order of first appearance, as load_config does.
  if (groups.empty()) {
    std::unordered_map<std::string, std::uint32_t> seen;
    for (std::uint32_t d = 0; d < deployments.size(); ++d) {
      const std::string& name = deployments[d].model_name;
      auto [at, fresh] = seen.emplace(name, static_cast<std::uint32_t>(groups.size()));
      if (fresh)
        groups.push_back({name, {}});
      groups[at->second].deployments.push_back(d);
    }
  }
  group_index_.clear();
  for (std::uint32_t g = 0; g < groups.size(); ++g) {
    group_index_.emplace(groups[g].name, g);
    for (std::uint32_t k = 0; k < groups[g].deployments.size(); ++k) {
      auto& dep = deployments.at(groups[g].deployments[k]);
      dep.group = g;
      dep.index_in_group = k;
    }
  }
}

config_error::config_error(std::vector<config_problem> problems)
  : std::runtime_error(format_problems(problems)), problems_(std::move(problems)) {}

env_lookup process_env() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* value = std::getenv(name.c_str());
    return value ? std::optional<std::string>(value) : std::nullopt;
  };
}

namespace {

// Before anything copies or walks the document recursively.
template <class Json>
void check_depth(const Json& doc) {
  if (nests_deeper_than(doc, max_config_depth))
    throw config_error({config_problem{
      "(root)", "nested too deeply (more than " + std::to_string(max_config_depth)
                  + " levels)"}});
}

} // namespace

router_config load_config(const nlohmann::ordered_json& doc, const env_lookup& env) {
  check_depth(doc);
  return loader(env).load(doc);
}

router_config load_config_text(const std::string& text, const env_lookup& env) {
  nlohmann::ordered_json doc;
  try {
    doc = nlohmann::ordered_json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    // e.what() reads "[json.exception.parse_error.101] parse error at line
    // L, column C: <what>; last read: '<input>'...". Keep "line L, column C"
    // as the path and <what> as the message; drop the echoed input, which
    // may hold a secret.
    std::string what = e.what();
    const auto at = what.find("line ");
    const auto colon = what.find(": ", at == std::string::npos ? 0 : at);
    std::string where = at != std::string::npos && colon != std::string::npos
                          ? what.substr(at, colon - at)
                          : "byte " + std::to_string(e.byte);
    std::string message = colon != std::string::npos ? what.substr(colon + 2) : what;
    message = message.substr(0, message.find("; last read:"));
    throw config_error({{where, message}});
  } catch (const nlohmann::json::out_of_range&) {
    // "number overflow parsing '1e999'": nlohmann gives no position, and
    // its message echoes the number.
    throw config_error({config_problem{"(root)", "a number is too large"}});
  }
  check_depth(doc);
  return load_config(doc, env);
}

router_config load_config_file(const std::string& file, const env_lookup& env) {
  const auto cannot_read = [&file](int err) {
    return config_error({{file, std::string("cannot read file: ") + std::strerror(err)}});
  };
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(file.c_str(), "rb"),
                                                    &std::fclose);
  if (!f)
    throw cannot_read(errno);
  std::string text;
  char buf[1 << 16];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f.get())) > 0)
    text.append(buf, n);
  if (std::ferror(f.get()))
    throw cannot_read(errno);
  if (is_yaml_file(file, text))
    return load_config(yaml_to_json(text), env);
  return load_config_text(text, env);
}

mock_spec parse_mock_response(const nlohmann::json& value, const std::string& path,
                              std::vector<config_problem>& problems) {
  json_checks check(problems);
  mock_spec spec;
  const auto fail_with = [&spec](error_kind kind, std::string message,
                                 std::optional<double> retry_after) {
    spec.kind = mock_spec::mode::fail;
    spec.error = router_error::make(kind, std::move(message), retry_after);
  };
  const auto default_message = [](error_kind kind) {
    return "this is a mock " + std::string(name_of(kind));
  };
  if (value.is_null())
    return spec;
  if (value.is_string()) {
    const auto& text = value.get_ref<const std::string&>();
    if (text.compare(0, 8, "litellm.") != 0) {
      spec.kind = mock_spec::mode::reply;
      spec.content = text;
    } else if (auto kind = check.error_kind_at(text, path)) {
      fail_with(*kind, default_message(*kind), std::nullopt);
    }
    return spec;
  }
  if (!value.is_object()) {
    check.fail(path, "expected a string, an {\"error\": ...} or a {\"content\": ...} object");
    return spec;
  }
  // A reply with its finish_reason, e.g. a provider's content filter:
  // {"content": "...", "finish_reason": "content_filter"}.
  if (value.contains("content") && !value.contains("error")) {
    const auto content = check.string_at(value, "content", path, required);
    const auto finish = check.string_at(value, "finish_reason", path, non_empty);
    if (content) {
      spec.kind = mock_spec::mode::reply;
      spec.content = *content;
      spec.finish_reason = finish.value_or("stop");
    }
    return spec;
  }
  const auto name = check.string_at(value, "error", path, required | non_empty);
  const auto message = check.string_at(value, "message", path);
  const auto retry_after = check.number_at(value, "retry_after", path, at_least_zero);
  if (name)
    if (auto kind = check.error_kind_at(*name, key_path(path, "error")))
      fail_with(*kind, message.value_or(default_message(*kind)), retry_after);
  return spec;
}

} // namespace switchyard
