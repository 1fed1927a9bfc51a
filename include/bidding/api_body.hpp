#pragma once
// The HTTP API's request bodies (docs/api.md), read as strictly as client frames. Pure.
#include <bidding/money.hpp>

#include <string>
#include <string_view>
#include <variant>

namespace bidding {

// The body of POST /api/bids: {"name": string, "initial_price": number or string (optional,
// default 100.00)}, numbers read from their text like bids' prices.
struct new_auction_request {
    std::string name;
    cents initial_price{10'000};
};
struct body_error {
    std::string code;  // invalid_json, bad_request, invalid_name, invalid_price
    std::string message;
};
std::variant<new_auction_request, body_error> parse_new_auction(std::string_view body);

}  // namespace bidding
