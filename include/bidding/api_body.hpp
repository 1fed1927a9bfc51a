#pragma once
// The HTTP API's request bodies (docs/api.md), read as strictly as client frames. Pure.
#include <bidding/auction.hpp>

#include <string>
#include <string_view>
#include <variant>

namespace bidding {

// The body of POST /api/bids: {"name": string, "initial_price": number or string (optional,
// default 100.00), and for a timed auction "ends_at" (ISO 8601 with a zone) or "duration"
// (whole seconds), "extend_window" and "extend_by" (whole seconds, both or neither),
// "min_increment" (a price, default 0.01)}, numbers read from their text like bids' prices.
// Whether the end is in the future is the database's clock's to say (create_auction).
using new_auction_request = new_auction;
struct body_error {
    std::string code;  // invalid_json, bad_request, invalid_name, invalid_price, invalid_ends_at, invalid_extension
    std::string message;
};
std::variant<new_auction_request, body_error> parse_new_auction(std::string_view body);

}  // namespace bidding
