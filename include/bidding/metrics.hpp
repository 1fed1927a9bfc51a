#pragma once
// Counters, gauges and histograms for /metrics (Prometheus text format 0.0.4). Lock-free:
// updated from any thread with relaxed atomics, rendered on demand.
#include <bidding/auction.hpp>
#include <bidding/protocol.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace bidding {

class histogram {
public:
    // Upper bounds in seconds, ascending; +Inf is implied.
    explicit histogram(std::vector<double> bounds);
    void observe(std::chrono::nanoseconds value);
    void render(std::string& out, std::string_view name, std::string_view help) const;

private:
    std::vector<double> bounds_;
    std::unique_ptr<std::atomic<std::uint64_t>[]> buckets_;  // non-cumulative, one per bound
    std::atomic<std::uint64_t> count_{0};
    std::atomic<std::uint64_t> sum_ns_{0};
};

// What /metrics shows that lives elsewhere (registry, Redis, Postgres, drain).
struct metrics_extra {
    std::vector<std::pair<auction_id, std::size_t>> connections_per_auction;
    bool draining{false};
    bool postgres_up{false};
    std::size_t max_connections{0};         // the limits in force (0: none)
    std::size_t max_connections_per_ip{0};
    std::size_t opening{0};          // connections being set up now (MAX_OPENING_CONNECTIONS)
    std::size_t waiting_to_open{0};  // upgrades waiting for an opening place
    std::size_t max_opening{0};
    bool redis_configured{false};
    bool redis_connected{false};
    std::uint64_t redis_reconnects{0};
    std::uint64_t bus_rejected{0};   // bus messages that no pod of this deployment signed
    std::size_t db_queued{0};        // database jobs waiting for a pool thread
    std::uint64_t watchdog_cuts{0};  // database calls cut at their deadline
};

// What a hostile or broken client was refused, each counted under its own label.
enum class refusal {
    max_connections,         // upgrade answered 503: the pod holds MAX_CONNECTIONS
    max_connections_per_ip,  // upgrade answered 429: the client address holds MAX_CONNECTIONS_PER_IP
    header_timeout,          // request headers not complete within HTTP_HEADER_TIMEOUT: dropped
    uri_too_long,            // 414
    headers_too_large,       // 431
    body_too_large,          // 413
    malformed_request,       // 400: not HTTP/1.x, or a target that is not a path and a query
    handshake_timeout,       // the 101 answer not taken within WS_HANDSHAKE_TIMEOUT: dropped
    ws_protocol_error,       // closed 1002: broken framing (RFC 6455)
    ws_invalid_utf8,         // closed 1007: a text message or close reason that is not UTF-8
    ws_message_too_big,      // closed 1009: a message beyond MAX_MESSAGE_BYTES
    opening_timeout,         // upgrade answered 503: it waited longer than WS_HANDSHAKE_TIMEOUT for an opening place
};
inline constexpr std::size_t refusal_count = 12;
std::string_view to_string(refusal r);

class metrics {
public:
    metrics();

    void connection_opened() { count(connections_total_), connections_open_.fetch_add(1, std::memory_order_relaxed); }
    void connection_closed() { connections_open_.fetch_sub(1, std::memory_order_relaxed); }
    void message_in() { count(messages_in_); }
    void message_out() { count(messages_out_); }
    void bid_accepted() { count(bids_accepted_); }
    void bid_rejected(error_code code) { count(bids_rejected_.at(static_cast<std::size_t>(code))); }
    void slow_consumer_dropped() { count(slow_consumers_); }
    void refused(refusal r) { count(refusals_.at(static_cast<std::size_t>(r))); }
    std::uint64_t refusals(refusal r) const { return refusals_.at(static_cast<std::size_t>(r)).load(std::memory_order_relaxed); }
    std::atomic<std::uint64_t>& postgres_reconnects() { return postgres_reconnects_; }

    histogram bid_decision;  // bid received from a socket -> decided (committed or rejected)
    histogram fanout;        // bid committed (on any pod) -> handed to this pod's clients

    std::string render(const metrics_extra& extra) const;

private:
    static void count(std::atomic<std::uint64_t>& c) { c.fetch_add(1, std::memory_order_relaxed); }

    std::atomic<std::uint64_t> connections_total_{0};
    std::atomic<std::int64_t> connections_open_{0};
    std::atomic<std::uint64_t> messages_in_{0};
    std::atomic<std::uint64_t> messages_out_{0};
    std::atomic<std::uint64_t> bids_accepted_{0};
    std::array<std::atomic<std::uint64_t>, error_code_count> bids_rejected_{};  // by error_code
    std::atomic<std::uint64_t> slow_consumers_{0};
    std::array<std::atomic<std::uint64_t>, refusal_count> refusals_{};  // by refusal
    std::atomic<std::uint64_t> postgres_reconnects_{0};
};

}  // namespace bidding
