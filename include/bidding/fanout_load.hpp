#pragma once
// How far behind one auction's fan-out is on this pod. Updated lock-free by the registry and
// the sessions; read on every bid of the auction to decide whether to take it (see
// websocket_session::handle_text).
//
// The auction is "behind" when more than half of its sessions have a message that has waited
// longer than `max_lag` (FANOUT_MAX_LAG) since the pod handed it over, or when the messages not
// yet taken by the sessions' strands exceed `high_water` bytes per session (the pod cannot even
// hand them over), or when another pod asked for a pause. A pod that cannot write as fast as bids
// are accepted, or whose clients cannot read that fast, delays every session at once and answers
// new bids "overloaded" long before a healthy reader reaches its byte bound; a client that stops
// reading delays only itself and is cut off at its bound without stopping the auction for the
// others.
#include <atomic>
#include <chrono>
#include <cstdint>

namespace bidding {

class fanout_load {
public:
    using clock = std::chrono::steady_clock;

    fanout_load(std::int64_t high_water, std::chrono::milliseconds max_lag) : high_water_(high_water), max_lag_(max_lag) {}

    void sessions_changed(std::int64_t delta) { sessions_.fetch_add(delta, std::memory_order_relaxed); }
    // Bytes posted to sessions (the registry), and taken by them (each session, once per post).
    void posted(std::int64_t bytes) { in_transit_.fetch_add(bytes, std::memory_order_relaxed); }
    void taken(std::int64_t bytes) { in_transit_.fetch_sub(bytes, std::memory_order_relaxed); }
    // A session's oldest unwritten message became older than max_lag (true), or no longer is.
    void session_over(bool over) { over_.fetch_add(over ? 1 : -1, std::memory_order_relaxed); }
    std::chrono::milliseconds max_lag() const { return max_lag_; }

    // Another pod's fan-out of this auction is behind: take no bids until `until`.
    void hold(clock::time_point until) {
        const auto ms = to_ms(until);
        auto seen = hold_until_ms_.load(std::memory_order_relaxed);
        while (seen < ms && !hold_until_ms_.compare_exchange_weak(seen, ms, std::memory_order_relaxed)) {
        }
    }

    // This pod's own fan-out is behind.
    bool behind() const {
        const auto sessions = sessions_.load(std::memory_order_relaxed);
        return sessions > 0 && (in_transit_.load(std::memory_order_relaxed) > sessions * high_water_ ||
                                2 * over_.load(std::memory_order_relaxed) > sessions);
    }
    // No bids now: this pod is behind, or another pod asked for a pause.
    bool refuse_bids(clock::time_point now) const {
        return behind() || to_ms(now) < hold_until_ms_.load(std::memory_order_relaxed);
    }
    // True at most once per `every` while behind: time to ask the other pods for a pause.
    bool should_signal(clock::time_point now, std::chrono::milliseconds every) {
        const auto ms = to_ms(now);
        auto last = last_signal_ms_.load(std::memory_order_relaxed);
        return ms - last >= every.count() &&
               last_signal_ms_.compare_exchange_strong(last, ms, std::memory_order_relaxed);
    }

    std::int64_t in_transit_bytes() const { return in_transit_.load(std::memory_order_relaxed); }
    std::int64_t sessions_over() const { return over_.load(std::memory_order_relaxed); }

private:
    static std::int64_t to_ms(clock::time_point t) {
        return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
    }

    const std::int64_t high_water_;
    const std::chrono::milliseconds max_lag_;
    std::atomic<std::int64_t> sessions_{0};
    std::atomic<std::int64_t> in_transit_{0};
    std::atomic<std::int64_t> over_{0};
    std::atomic<std::int64_t> hold_until_ms_{0};
    std::atomic<std::int64_t> last_signal_ms_{0};
};

}  // namespace bidding
