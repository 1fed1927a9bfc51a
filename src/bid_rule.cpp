#include <bidding/bid_rule.hpp>

namespace bidding {

bid_verdict judge_bid(auction_status status, cents current_price, cents offered) {
    if (status == auction_status::closed) return bid_verdict::closed;
    // Strictly higher: an equal bid would tie with the current leader.
    if (offered <= current_price) return bid_verdict::price_too_low;
    return bid_verdict::accepted;
}

std::string_view to_string(auction_status status) {
    switch (status) {
        case auction_status::open: return "open";
        case auction_status::closed: return "closed";
    }
    return "open";
}

}  // namespace bidding
