#pragma once
// The domain: an auction ("bid" in the API and the Django tables) and its history.
#include <bidding/money.hpp>
#include <bidding/strong_id.hpp>

#include <cstdint>
#include <optional>
#include <string>

namespace bidding {

// bids_bid.id: "bid_id" on the wire, the Django app's name for an auction.
using auction_id = strong_id<struct auction_id_tag>;
// bids_bidhistory.id: every accepted bid's place in its auction's order (0: none yet).
using seq_t = strong_id<struct seq_tag>;

enum class auction_status { open, closed };

struct auction {
    auction_id id{0};
    std::string name;
    auction_status status{auction_status::open};
    cents initial_price{10'000};
    cents current_price{10'000};  // last accepted price, or the initial price
    seq_t last_seq{0};            // id of the newest history row, 0 when none
    std::optional<std::string> leader;  // bidder of the newest history row
    std::string created_at;             // ISO 8601 UTC
};

struct history_entry {
    seq_t seq{0};
    std::string bidder;
    cents price{0};
    std::string added_at;  // ISO 8601 UTC with milliseconds, e.g. 2026-11-25T14:00:00.123Z
};

std::string_view to_string(auction_status status);

}  // namespace bidding
