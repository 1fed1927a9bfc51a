#pragma once
// The bid rule, apart from any I/O: a bid is accepted only on an open auction whose end (if it
// has one) has not come, and only at or above the current price plus the auction's increment.
// A bid accepted in the soft-close window moves the end (docs/timed-auctions.md).
#include <bidding/auction.hpp>

namespace bidding {

enum class bid_verdict { accepted, price_too_low, closed };

struct bid_decision {
    bid_verdict verdict{bid_verdict::closed};
    // The auction's end after this bid: moved when an accepted bid came within the window.
    std::optional<timestamp> ends_at;
};

// The smallest acceptable price: the current price (the initial price before any bid) plus the
// increment.
cents min_price(cents current_price, cents min_increment);

// `now` is the database's clock at the decision: never a pod's.
bid_decision judge_bid(auction_status status, const auction_terms& terms, cents current_price, cents offered,
                       timestamp now);

// An auction without an end, with the default increment (0.01).
bid_verdict judge_bid(auction_status status, cents current_price, cents offered);

}  // namespace bidding
