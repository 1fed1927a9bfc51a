#pragma once
// Whether one connection's bid goes on to the bid path now, or is answered at once, and with
// what. Pure: the session asks it for each valid bid and tells it of each reply.
//
// In order: over the connection's rate limit -> rate_limited; the pod draining -> unavailable;
// too many of its bids without a reply yet, or the auction's fan-out on this pod behind ->
// overloaded. Reading never pauses, so a bid that cannot be taken now is refused instead of
// waiting unbounded in the socket.
#include <bidding/error_code.hpp>
#include <bidding/rate_limiter.hpp>

#include <chrono>
#include <optional>
#include <string_view>

namespace bidding {

class bid_admission {
public:
    using clock = std::chrono::steady_clock;

    // Bids of one connection awaiting their reply; beyond it a bid is answered "overloaded" at once.
    static constexpr int max_in_flight = 32;

    struct refusal {
        error_code code;
        std::string_view message;  // for the client: says that nothing was stored
    };

    // `rate` bids per second with bursts of `burst` (BID_RATE_LIMIT, BID_BURST; rate 0: no limit).
    bid_admission(double rate, double burst) : rate_(rate, burst) {}

    // nullopt: the bid goes on, and counts as in flight until answered().
    std::optional<refusal> admit(clock::time_point now, bool draining, bool fanout_behind);
    // A bid that went on got its reply.
    void answered() { --in_flight_; }
    int in_flight() const { return in_flight_; }

private:
    rate_limiter rate_;
    int in_flight_{0};
};

}  // namespace bidding
