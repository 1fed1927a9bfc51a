#pragma once
// Fan-out between pods through Redis pub/sub: one connection that publishes and one that
// subscribes, per process, each on its own thread (hiredis is blocking), so the socket threads
// only ever enqueue. What travels, and how it is signed, is bus_codec's.
//
// Both connections reconnect with capped exponential backoff, and every reply has a deadline
// (REDIS_TIMEOUT): the subscriber pings twice a second, and a ping unanswered in time counts as a
// lost connection, so a frozen Redis is noticed as fast as a dead one. What was published while
// Redis was away is recovered by the pods from Postgres (see auction_feed): after reconnecting,
// the subscriber resubscribes (and the registry re-reads every served auction), and the
// publisher sends again the newest bid it had to drop per auction, which reveals the gap to
// pods that were subscribed all along.
#include <bidding/auction_bus.hpp>
#include <bidding/bus_codec.hpp>
#include <bidding/config.hpp>
#include <bidding/metrics.hpp>

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

namespace bidding {

struct redis_bus_settings {
    redis_endpoint endpoint;
    std::chrono::milliseconds timeout{2000};        // connect, and every reply
    std::chrono::milliseconds ping_interval{500};  // the subscriber's liveness check: a frozen Redis is noticed within this + timeout
};

// At most this many messages wait to be published; beyond it they are dropped (and recovered
// from Postgres by the other pods).
inline constexpr std::size_t redis_bus_max_queued = 100'000;

// The Redis implementation of the bus (hiredis stays in src/redis_bus.cpp). `fanout_latency`,
// when given, observes commit -> arrival for every bid received.
std::unique_ptr<auction_bus> make_redis_bus(redis_bus_settings s, bus_codec codec, auction_bus::handlers h,
                                            histogram* fanout_latency = nullptr);

// One PUBLISH on a short-lived connection, for the command line (`bid close`). Returns false
// (and logs) when Redis cannot be reached.
bool publish_once(const redis_endpoint& endpoint, const std::string& channel, const std::string& payload);

}  // namespace bidding
