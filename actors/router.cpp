#include "switchyard/router.hpp"

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

std::unique_ptr<caf::actor_system_config> make_system_config(std::size_t threads) {
  auto cfg = std::make_unique<caf::actor_system_config>();
  if (threads > 0)
    cfg->set("scheduler.max-threads", threads);
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
  /// Router actors: [0] is router::handle(); async_complete spreads its
  /// requests over all of them so no single mailbox serialises the spawns.
  std::vector<caf::actor> router_actors;
  std::atomic<std::size_t> next_router{0};

  void start(caf::actor_system& sys, router_config cfg, const router_options& options) {
    system = &sys;
    config = std::make_shared<const router_config>(std::move(cfg));
    table = start_routing(sys, config, pick_seed(options), options.max_in_flight);
    std::size_t n = options.threads > 0 ? options.threads
                                        : std::thread::hardware_concurrency();
    n = std::clamp<std::size_t>(n, 1, 8);
    for (std::size_t i = 0; i < n; ++i)
      router_actors.push_back(spawn_router_actor(sys, table));
  }

  ~impl() {
    if (!table)
      return;
    for (auto& a : router_actors)
      caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    stop_routing(*table);
    router_actors.clear();
    table.reset();
    if (owned_system)
      owned_system->await_all_actors_done();
  }
};

router::router(router_config config, router_options options)
  : impl_(std::make_unique<impl>()) {
  impl_->owned_config = make_system_config(options.threads);
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
  impl_->start(system, std::move(config), options);
}

router::~router() = default;

void router::async_complete(chat_request request, completion_handler done) {
  // Not spawned on the caller's thread: CAF 0.17's spawn leaves a
  // thread-local reference to the system's logger on the spawning thread,
  // and ~actor_system then waits for every such thread to end. A router
  // actor spawns the orchestrator on one of the system's own workers.
  auto& actors = impl_->router_actors;
  auto i = impl_->next_router.fetch_add(1, std::memory_order_relaxed) % actors.size();
  caf::anon_send(actors[i], route_atom::value,
                 request_ptr(std::make_shared<const chat_request>(std::move(request))),
                 std::move(done));
}

route_result router::complete(chat_request request) {
  std::promise<route_result> result;
  auto future = result.get_future();
  async_complete(std::move(request),
                 [&result](route_result r) { result.set_value(std::move(r)); });
  return future.get();
}

caf::actor router::handle() const {
  return impl_->router_actors.front();
}

const router_config& router::config() const noexcept {
  return *impl_->config;
}

std::shared_ptr<const router_config> router::shared_config() const noexcept {
  return impl_->config;
}

} // namespace switchyard
