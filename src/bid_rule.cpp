#include <bidding/bid_rule.hpp>

#include <algorithm>

namespace bidding {

cents min_price(cents current_price, cents min_increment) { return current_price + min_increment; }

bid_decision judge_bid(auction_status status, const auction_terms& terms, cents current_price, cents offered,
                       timestamp now) {
    bid_decision d{bid_verdict::closed, terms.ends_at};
    // At the end itself the auction is over: "ends at 17:00:00.000" takes no bid stamped then.
    if (status == auction_status::closed || (terms.ends_at && now >= *terms.ends_at)) {
        return d;
    }
    if (offered < min_price(current_price, terms.min_increment)) {
        d.verdict = bid_verdict::price_too_low;
        return d;
    }
    d.verdict = bid_verdict::accepted;
    if (terms.ends_at && terms.extend_window && terms.extend_by && now >= *terms.ends_at - *terms.extend_window) {
        d.ends_at = std::max(*terms.ends_at, now + *terms.extend_by);
    }
    return d;
}

bid_verdict judge_bid(auction_status status, cents current_price, cents offered) {
    return judge_bid(status, auction_terms{}, current_price, offered, timestamp{}).verdict;
}

std::string_view to_string(auction_status status) {
    switch (status) {
        case auction_status::open: return "open";
        case auction_status::closed: return "closed";
    }
    return "open";
}

}  // namespace bidding
