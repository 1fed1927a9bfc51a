#pragma once
// What every connection needs from the process: configuration and the shared services.
#include <bidding/config.hpp>
#include <bidding/metrics.hpp>
#include <bidding/server_clock.hpp>

#include <atomic>
#include <functional>
#include <memory>

namespace bidding {

class session_registry;
class bid_service;
class db_pool;
class history_reader;
class connection_limits;
class opening_gate;

struct server_context {
    const config& cfg;
    session_registry& registry;
    bid_service& bids;
    db_pool& db;                // the API's jobs
    history_reader& history;    // the sessions' snapshots and gap fills
    metrics& stats;
    // The state /readyz and /metrics report that lives outside the connection path. `full`
    // false: only the flags /healthz and /readyz need (atomics: no lock a flood holds is taken,
    // so the probes stay fast under load); true: everything /metrics shows.
    std::function<metrics_extra(bool full)> observe;
    // Tells the other pods that an auction was closed here (Redis); empty in single-pod mode.
    std::function<void(auction_id, const std::string&)> publish_close;
    // MAX_CONNECTIONS and MAX_CONNECTIONS_PER_IP: each websocket_session holds a lease.
    std::shared_ptr<connection_limits> limits{};
    std::shared_ptr<opening_gate> openings{};
    std::atomic<bool> draining{false};
    // server_time for the clients' countdowns (the auction closer keeps it in step with Postgres).
    server_clock clock{};
};

}  // namespace bidding
