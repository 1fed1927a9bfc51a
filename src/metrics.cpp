#include <bidding/metrics.hpp>

#include <fmt/format.h>

namespace bidding {

namespace {

const std::vector<double> latency_bounds = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                            0.1,    0.25,  0.5,    1.0,   2.5,  5.0,   10.0};

void header(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

template <class T>
void sample(std::string& out, std::string_view name, std::string_view type, std::string_view help, T value) {
    header(out, name, type, help);
    out += fmt::format("{} {}\n", name, value);
}

constexpr bool is_connection_limit(refusal r) {
    return r == refusal::max_connections || r == refusal::max_connections_per_ip || r == refusal::opening_timeout;
}
constexpr bool is_ws_close(refusal r) {
    return r == refusal::ws_protocol_error || r == refusal::ws_invalid_utf8 || r == refusal::ws_message_too_big;
}

}  // namespace

std::string_view to_string(refusal r) {
    switch (r) {
    case refusal::max_connections: return "max_connections";
    case refusal::max_connections_per_ip: return "max_connections_per_ip";
    case refusal::header_timeout: return "header_timeout";
    case refusal::uri_too_long: return "uri_too_long";
    case refusal::headers_too_large: return "headers_too_large";
    case refusal::body_too_large: return "body_too_large";
    case refusal::malformed_request: return "malformed_request";
    case refusal::handshake_timeout: return "handshake_timeout";
    case refusal::ws_protocol_error: return "protocol_error";
    case refusal::ws_invalid_utf8: return "invalid_utf8";
    case refusal::ws_message_too_big: return "message_too_big";
    case refusal::opening_timeout: return "opening_timeout";
    }
    return "unknown";
}

histogram::histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), buckets_(new std::atomic<std::uint64_t>[bounds_.size()]) {
    for (std::size_t i = 0; i < bounds_.size(); ++i) {
        buckets_[i] = 0;
    }
}

void histogram::observe(std::chrono::nanoseconds value) {
    const auto ns = value.count() < 0 ? 0 : value.count();
    const double seconds = static_cast<double>(ns) / 1e9;
    for (std::size_t i = 0; i < bounds_.size(); ++i) {
        if (seconds <= bounds_[i]) {
            buckets_[i].fetch_add(1, std::memory_order_relaxed);
            break;
        }
    }
    count_.fetch_add(1, std::memory_order_relaxed);
    sum_ns_.fetch_add(static_cast<std::uint64_t>(ns), std::memory_order_relaxed);
}

void histogram::render(std::string& out, std::string_view name, std::string_view help) const {
    header(out, name, "histogram", help);
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < bounds_.size(); ++i) {
        cumulative += buckets_[i].load(std::memory_order_relaxed);
        out += fmt::format("{}_bucket{{le=\"{}\"}} {}\n", name, bounds_[i], cumulative);
    }
    const auto count = count_.load(std::memory_order_relaxed);
    out += fmt::format("{}_bucket{{le=\"+Inf\"}} {}\n", name, count);
    out += fmt::format("{}_sum {}\n", name, static_cast<double>(sum_ns_.load(std::memory_order_relaxed)) / 1e9);
    out += fmt::format("{}_count {}\n", name, count);
}

metrics::metrics() : bid_decision(latency_bounds), fanout(latency_bounds) {}

std::string metrics::render(const metrics_extra& extra) const {
    std::string out;
    out.reserve(4096);
    sample(out, "bidding_connections_open", "gauge", "WebSocket connections open now.",
           connections_open_.load(std::memory_order_relaxed));
    sample(out, "bidding_connections_total", "counter", "WebSocket connections accepted since start.",
           connections_total_.load(std::memory_order_relaxed));
    sample(out, "bidding_auctions_served", "gauge", "Auctions with at least one connection on this pod.",
           extra.connections_per_auction.size());
    header(out, "bidding_auction_connections", "gauge", "Connections open now, per auction (bid id).");
    for (const auto& [id, n] : extra.connections_per_auction) {
        out += fmt::format("bidding_auction_connections{{bid_id=\"{}\"}} {}\n", id, n);
    }
    header(out, "bidding_connection_limit", "gauge",
           "The WebSocket connection limits in force (MAX_CONNECTIONS, MAX_CONNECTIONS_PER_IP, MAX_OPENING_CONNECTIONS; 0: none).");
    out += fmt::format("bidding_connection_limit{{scope=\"pod\"}} {}\n", extra.max_connections);
    out += fmt::format("bidding_connection_limit{{scope=\"client_address\"}} {}\n", extra.max_connections_per_ip);
    out += fmt::format("bidding_connection_limit{{scope=\"opening\"}} {}\n", extra.max_opening);
    sample(out, "bidding_connections_opening", "gauge",
           "WebSocket connections being set up now: from the 101 to the initial_state (MAX_OPENING_CONNECTIONS).",
           extra.opening);
    sample(out, "bidding_connections_waiting_to_open", "gauge",
           "WebSocket upgrades waiting for a place among the connections being set up.", extra.waiting_to_open);
    const auto refusals_with = [&](std::string_view name, std::string_view help, std::string_view label, auto pick) {
        header(out, name, "counter", help);
        for (std::size_t i = 0; i < refusals_.size(); ++i) {
            const auto r = static_cast<refusal>(i);
            if (pick(r)) {
                out += fmt::format("{}{{{}=\"{}\"}} {}\n", name, label, to_string(r),
                                   refusals_[i].load(std::memory_order_relaxed));
            }
        }
    };
    refusals_with("bidding_connections_refused_total", "WebSocket upgrades refused by a connection limit (503, 429).",
                  "reason", [](refusal r) { return is_connection_limit(r); });
    refusals_with("bidding_http_refused_total",
                  "HTTP requests refused or dropped before routing: slow, oversized or malformed (docs/security.md).",
                  "reason", [](refusal r) { return !is_connection_limit(r) && !is_ws_close(r); });
    refusals_with("bidding_ws_protocol_closes_total",
                  "WebSocket connections closed for breaking RFC 6455 (1002), UTF-8 (1007) or MAX_MESSAGE_BYTES (1009).",
                  "reason", [](refusal r) { return is_ws_close(r); });
    sample(out, "bidding_messages_in_total", "counter", "WebSocket messages received from clients.",
           messages_in_.load(std::memory_order_relaxed));
    sample(out, "bidding_messages_out_total", "counter", "WebSocket messages queued to clients.",
           messages_out_.load(std::memory_order_relaxed));
    sample(out, "bidding_bids_accepted_total", "counter", "Bids accepted (committed) by this pod.",
           bids_accepted_.load(std::memory_order_relaxed));
    header(out, "bidding_bids_rejected_total", "counter", "Error replies sent by this pod, by error code.");
    for (std::size_t i = 0; i < bids_rejected_.size(); ++i) {
        out += fmt::format("bidding_bids_rejected_total{{code=\"{}\"}} {}\n", to_string(static_cast<error_code>(i)),
                           bids_rejected_[i].load(std::memory_order_relaxed));
    }
    sample(out, "bidding_slow_consumers_dropped_total", "counter",
           "Connections closed because the client fell too far behind or its writes made no progress.",
           slow_consumers_.load(std::memory_order_relaxed));
    bid_decision.render(out, "bidding_bid_decision_seconds",
                        "From a bid read off a socket to its decision (commit or rejection).");
    fanout.render(out, "bidding_fanout_seconds",
                  "From a bid's commit (on any pod) to its hand-over to this pod's connections.");
    sample(out, "bidding_postgres_up", "gauge", "1 while Postgres answers.", extra.postgres_up ? 1 : 0);
    sample(out, "bidding_postgres_reconnects_total", "counter", "Postgres connections reopened after a failure.",
           postgres_reconnects_.load(std::memory_order_relaxed));
    if (extra.redis_configured) {
        sample(out, "bidding_redis_connected", "gauge", "1 while both Redis connections are up.",
               extra.redis_connected ? 1 : 0);
        sample(out, "bidding_redis_reconnects_total", "counter", "Redis connections reopened after a failure.",
               extra.redis_reconnects);
        sample(out, "bidding_bus_rejected_total", "counter",
               "Messages on this deployment's Redis channels that no pod of it signed (ignored).", extra.bus_rejected);
    }
    sample(out, "bidding_db_queue_length", "gauge", "Database jobs waiting for a pool thread.", extra.db_queued);
    sample(out, "bidding_db_timeouts_total", "counter",
           "Database calls cut at their deadline (a frozen or partitioned Postgres).", extra.watchdog_cuts);
    sample(out, "bidding_draining", "gauge", "1 while the pod drains after SIGTERM.", extra.draining ? 1 : 0);
    return out;
}

}  // namespace bidding
