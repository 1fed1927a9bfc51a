#pragma once
// What every connection needs from the process: configuration and the shared services.
#include <bidding/config.hpp>

#include <atomic>

namespace bidding {

class session_registry;
class bid_service;
class db_pool;

struct server_context {
    const config& cfg;
    session_registry& registry;
    bid_service& bids;
    db_pool& db;
    std::atomic<bool> draining{false};
};

}  // namespace bidding
