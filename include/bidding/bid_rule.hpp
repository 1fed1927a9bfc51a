#pragma once
// The bid rule, apart from any I/O: a bid is accepted only on an open auction and only
// when strictly above the current price.
#include <bidding/auction.hpp>

namespace bidding {

enum class bid_verdict { accepted, price_too_low, closed };

bid_verdict judge_bid(auction_status status, cents current_price, cents offered);

}  // namespace bidding
