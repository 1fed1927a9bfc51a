#pragma once
// The domain: an auction ("bid" in the API and the Django tables) and its history.
#include <bidding/money.hpp>
#include <bidding/strong_id.hpp>
#include <bidding/timestamp.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace bidding {

// bids_bid.id: "bid_id" on the wire, the Django app's name for an auction.
using auction_id = strong_id<struct auction_id_tag>;
// bids_bidhistory.id: every accepted bid's place in its auction's order (0: none yet).
using seq_t = strong_id<struct seq_tag>;

enum class auction_status { open, closed };

// How a timed auction ends (docs/timed-auctions.md). No end: open until an operator closes it.
struct auction_terms {
    std::optional<timestamp> ends_at;  // the current end, moved by extensions
    // Soft close: a bid accepted within `extend_window` of the end moves it to `extend_by` after
    // that bid. Both or neither, and only with an end.
    std::optional<std::chrono::seconds> extend_window;
    std::optional<std::chrono::seconds> extend_by;
    cents min_increment{1};  // a bid must beat the current price by at least this
};

struct auction {
    auction_id id{0};
    std::string name;
    auction_status status{auction_status::open};
    cents initial_price{10'000};
    cents current_price{10'000};  // last accepted price, or the initial price
    seq_t last_seq{0};            // id of the newest history row, 0 when none
    std::optional<std::string> leader;  // bidder of the newest history row
    std::string created_at;             // ISO 8601 UTC
    auction_terms terms;
};

// What create_auction makes (POST /api/bids, `bid create`, validated by their parsers).
struct new_auction {
    std::string name;
    cents initial_price{10'000};
    // At most one of the two; `duration` counts from the database's clock.
    std::optional<timestamp> ends_at;
    std::optional<std::chrono::seconds> duration;
    std::optional<std::chrono::seconds> extend_window;
    std::optional<std::chrono::seconds> extend_by;
    cents min_increment{1};
};

// The longest an auction may run from its creation, and the longest soft-close window or extension.
inline constexpr std::chrono::seconds max_auction_duration{365LL * 86'400};
inline constexpr std::chrono::seconds max_extension{86'400};

struct history_entry {
    seq_t seq{0};
    std::string bidder;
    cents price{0};
    std::string added_at;  // ISO 8601 UTC with milliseconds, e.g. 2026-11-25T14:00:00.123Z
    // What this bid's new_bid shows of the auction: its end after this bid (an extension shows
    // here) and its increment, which never changes.
    std::optional<timestamp> ends_at;
    cents min_increment{1};
};

std::string_view to_string(auction_status status);

}  // namespace bidding
