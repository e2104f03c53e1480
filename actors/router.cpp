#include "switchyard/router.hpp"

#include "switchyard/lean_scheduler.hpp"
#include "orchestrator.hpp"
#include "router_actor.hpp"

#include <caf/all.hpp>

#include <algorithm>
#include <future>
#include <thread>
#include <random>

namespace switchyard {

namespace {

std::uint64_t pick_seed(const router_options& options) {
  if (options.seed)
    return *options.seed;
  std::random_device rd;
  return (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
}

std::unique_ptr<caf::actor_system_config> make_system_config(const router_options& options) {
  auto cfg = std::make_unique<caf::actor_system_config>();
  if (options.threads > 0)
    cfg->set("scheduler.max-threads", options.threads);
  // No polling: an idle worker waits on its condition variable at once,
  // and work handed to it from outside (a spawn, a transport's answer)
  // wakes it.
  if (options.idle_workers == router_options::idle_policy::sleep) {
    cfg->set("work-stealing.aggressive-poll-attempts", std::size_t{0});
    cfg->set("work-stealing.moderate-poll-attempts", std::size_t{0});
  }
  // Orchestrators quit without waking CAF's clock thread (see
  // lean_scheduler.hpp).
  use_lean_scheduler(*cfg);
  // The router logs through spdlog; CAF's own console output stays quiet.
  cfg->set("logger.console", caf::atom("none"));
  return cfg;
}

} // namespace

struct router::impl {
  // Declaration order is destruction order in reverse: the owned system
  // must outlive the handles into it.
  std::unique_ptr<caf::actor_system_config> owned_config;
  std::unique_ptr<caf::actor_system> owned_system;
  caf::actor_system* system = nullptr;
  std::shared_ptr<const router_config> config;
  routing_table_ptr table;
  /// The router actor behind router::handle().
  caf::actor router_actor;

  void start(caf::actor_system& sys, router_config cfg, const router_options& options) {
    system = &sys;
    config = std::make_shared<const router_config>(std::move(cfg));
    table = start_routing(sys, config, pick_seed(options), options);
    router_actor = spawn_router_actor(sys, table);
  }

  ~impl() {
    if (!table)
      return;
    caf::anon_send_exit(router_actor, caf::exit_reason::user_shutdown);
    // Ends calls in flight and timer waits too (transport::stop), so
    // nothing holds this destructor for a provider's timeout.
    stop_routing(*table);
    router_actor = nullptr;
    table.reset();
    if (owned_system)
      owned_system->await_all_actors_done();
  }
};

router::router(router_config config, router_options options)
  : impl_(std::make_unique<impl>()) {
  // Before any actor exists: a broken hand-built config throws here.
  validate_config(config);
  impl_->owned_config = make_system_config(options);
  impl_->owned_system = std::make_unique<caf::actor_system>(*impl_->owned_config);
  impl_->start(*impl_->owned_system, std::move(config), options);
  // CAF 0.17: building the system and spawning left this thread holding a
  // reference to the system's logger, and ~actor_system waits for every
  // such reference: the router could then only be destroyed on this thread.
  caf::logger::set_current_actor_system(nullptr);
}

router::router(caf::actor_system& system, router_config config,
               router_options options)
  : impl_(std::make_unique<impl>()) {
  validate_config(config);
  impl_->start(system, std::move(config), options);
}

router::~router() = default;

request_handle router::async_complete(chat_request request, completion_handler done) {
  return async_stream(std::move(request), {}, {}, std::move(done));
}

request_handle router::async_stream(chat_request request, chunk_handler on_chunk,
                                    completion_handler done) {
  return async_stream(std::move(request), {}, std::move(on_chunk), std::move(done));
}

request_handle router::async_stream(chat_request request, commit_handler on_commit,
                                    chunk_handler on_chunk, completion_handler done) {
  auto& table = *impl_->table;
  if (!table.admit()) {
    done(overloaded(table));
    return {};
  }
  // Spawned right here, no hop through a router actor. CAF 0.17's spawn
  // leaves a thread-local reference to the system's logger on the spawning
  // thread, and ~actor_system waits for every such reference: a thread that
  // had none gets none back.
  const bool foreign_thread = caf::logger::current_logger() == nullptr;
  auto handle = spawn_orchestrator(*impl_->system, impl_->table,
                                   std::make_shared<const chat_request>(std::move(request)),
                                   completion{std::move(done)}, std::move(on_chunk),
                                   std::move(on_commit));
  if (foreign_thread)
    caf::logger::set_current_actor_system(nullptr);
  return handle;
}

route_result router::complete(chat_request request) {
  std::promise<route_result> result;
  auto future = result.get_future();
  async_complete(std::move(request),
                 [&result](route_result r) { result.set_value(std::move(r)); });
  return future.get();
}

caf::actor router::handle() const {
  return impl_->router_actor;
}

const router_config& router::config() const noexcept {
  return *impl_->config;
}

std::shared_ptr<const router_config> router::shared_config() const noexcept {
  return impl_->config;
}

switchyard::shared_state_status router::shared_state_status() const {
  return impl_->table->shared->status();
}

switchyard::shared_state_stats router::shared_state_stats() const {
  return impl_->table->shared->stats();
}

} // namespace switchyard
