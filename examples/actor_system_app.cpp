// An application that is itself a CAF actor system and embeds Switchyard in
// it: the router joins the application's actor_system, and the application's
// own actor talks to the router actor with ordinary request/response
// messages.

#include "switchyard/actor_protocol.hpp"
#include "switchyard/config.hpp"
#include "switchyard/lean_scheduler.hpp"
#include "switchyard/router.hpp"

#include <caf/all.hpp>

#include <nlohmann/json.hpp>

#include <iostream>
#include <map>

namespace {

using go_atom = caf::atom_constant<caf::atom("go")>;

constexpr const char* config_json = R"({
  "model_list": [
    {"model_name": "gpt-4o",
     "litellm_params": {"model": "azure/eastus2", "weight": 3,
                        "mock_response": {"error": "InternalServerError",
                                          "message": "eastus2 is down"}},
     "model_info": {"id": "eastus2"}},
    {"model_name": "gpt-4o",
     "litellm_params": {"model": "azure/westus", "weight": 1,
                        "mock_response": "hello from westus", "mock_latency_ms": 2},
     "model_info": {"id": "westus"}}
  ],
  "router_settings": {"enable_weighted_failover": true, "num_retries": 0,
                      "cooldown_time": 30}
})";

struct client_state {
  int outstanding = 0;
  std::map<std::string, int> served_by;
  int failed = 0;
};

// The application's own actor: sends `count` requests to the router at once
// and reports when every one of them has been answered.
caf::behavior client(caf::stateful_actor<client_state>* self, caf::actor router,
                     int count) {
  return {
    [=](go_atom) {
      auto done = self->make_response_promise();
      self->state.outstanding = count;
      for (int i = 0; i < count; ++i) {
        auto request = std::make_shared<switchyard::chat_request>();
        request->model = "gpt-4o";
        request->messages = nlohmann::json::array(
          {{{"role", "user"}, {"content", "hi " + std::to_string(i)}}});
        self->request(router, caf::infinite, switchyard::route_atom::value,
                      switchyard::request_ptr(std::move(request)))
          .then([=](const switchyard::route_result& r) mutable {
            auto& st = self->state;
            if (r.ok)
              ++st.served_by[r.deployment_id];
            else
              ++st.failed;
            if (--st.outstanding == 0)
              done.deliver(st.served_by["westus"], st.failed);
          });
      }
      return done;
    },
  };
}

} // namespace

int main() {
  caf::actor_system_config cfg;
  cfg.set("logger.console", caf::atom("none"));
  // Optional: CAF's scheduler with a clock that actors without timeouts
  // (the router's per-request orchestrators) quit without waking.
  switchyard::use_lean_scheduler(cfg);
  caf::actor_system system{cfg};

  switchyard::router_options options;
  options.seed = 42; // reproducible picks
  switchyard::router router{system,
                            switchyard::load_config(nlohmann::ordered_json::parse(config_json)),
                            options};

  constexpr int count = 500;
  auto app = system.spawn(client, router.handle(), count);
  caf::scoped_actor self{system};
  int westus = 0;
  int failed = -1;
  self->request(app, caf::infinite, go_atom::value)
    .receive([&](int served, int errors) { westus = served, failed = errors; },
             [&](caf::error& err) {
               std::cerr << "client failed: " << system.render(err) << "\n";
             });
  self->send_exit(app, caf::exit_reason::user_shutdown);

  std::cout << "requests: " << count << ", served by westus: " << westus
            << ", failed: " << failed << "\n";
  // eastus2 always fails; weighted failover must carry every request to
  // westus inside the same request.
  return westus == count && failed == 0 ? 0 : 1;
}
