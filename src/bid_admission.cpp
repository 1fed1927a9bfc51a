#include <bidding/bid_admission.hpp>

namespace bidding {

std::optional<bid_admission::refusal> bid_admission::admit(clock::time_point now, bool draining, bool fanout_behind) {
    if (!rate_.allow(now)) {
        return refusal{error_code::rate_limited, "too many bids; slow down and try again"};
    }
    if (draining) {
        return refusal{error_code::unavailable, "the server is shutting down; the bid was not stored"};
    }
    // While this auction's fan-out is behind, taking more would grow every client's queue:
    // refused before any reaches its bound.
    if (in_flight_ >= max_in_flight || fanout_behind) {
        return refusal{error_code::overloaded, "the server is too busy; the bid was not stored; retry later"};
    }
    ++in_flight_;
    return std::nullopt;
}

}  // namespace bidding
