#pragma once
// The WebSocket wire contract (docs/protocol.md): parsing client frames into values and
// serializing server messages. Pure: no sockets, no database.
#include <bidding/auction.hpp>

#include <nlohmann/json.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace bidding {

enum class error_code {
    invalid_json,
    invalid_message,
    invalid_name,
    invalid_price,
    price_too_low,
    bid_closed,
    unsupported,
    unavailable,
    rate_limited,
    overloaded,  // the server is too busy: not stored; retry later
    in_doubt,    // the outcome is not known yet: the bid may have been stored
};

// How many error codes there are (for per-code counters).
inline constexpr std::size_t error_code_count = static_cast<std::size_t>(error_code::in_doubt) + 1;

std::string_view to_string(error_code code);

inline constexpr std::size_t max_name_chars = 255;
inline constexpr std::size_t max_ref_chars = 64;

struct pong_message {};

struct bid_request {
    std::string name;  // trimmed, validated
    cents price{0};    // rounded half up, 0 < price <= max_price_cents
    std::optional<std::string> ref;
};

// A client frame that cannot become a bid: answered with an error, connection stays open.
struct message_error {
    error_code code{error_code::invalid_message};
    std::string message;
    std::optional<std::string> ref;  // echoed when the frame carried a valid one
};

using client_message = std::variant<pong_message, bid_request, message_error>;

// Parses one text frame. Numbers are read from their JSON text, never through a double.
// Accepted: bare text "pong"; {"type":"pong"}; {"name":..., "price"|"Price":..., "type":"bid"?, "ref"?}.
// With `name_from_token` the connection's identity comes from its signed token: "name" is neither
// required nor read (the caller sets the bidder).
client_message parse_client_message(std::string_view text, bool name_from_token = false);

// Trims ASCII whitespace and checks a bidder or item name: valid UTF-8, 1..255 code points, no
// control characters. nullopt (and *error set, when given) when it is not acceptable.
std::optional<std::string> normalize_name(std::string_view raw, std::string* error = nullptr);

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

// The JSON objects every message, the API and the command line show for an auction
// ({"id","name","status","initial_price","current_price","last_seq"}) and a history entry
// ({"seq","bidder","price","added_at"}).
nlohmann::ordered_json auction_object(const auction& a);
nlohmann::ordered_json history_object(const history_entry& e);

// Server messages, serialized once and shared by every recipient.
std::string serialize_initial_state(const auction& a, const std::vector<history_entry>& newest_first);
// The reconnect form (?since=SEQ): entries oldest first, plus "since" and, when the client
// missed more than it gets, "truncated":true.
std::string serialize_initial_state(const auction& a, const std::vector<history_entry>& oldest_first, seq_t since,
                                    bool truncated);
std::string serialize_new_bid(auction_id id, const history_entry& entry);
std::string serialize_bid_accepted(const history_entry& entry, const std::optional<std::string>& ref);
std::string serialize_error(error_code code, std::string_view message, const std::optional<std::string>& ref,
                            std::optional<cents> current_price = std::nullopt);
std::string serialize_ping();
std::string serialize_bid_closed(auction_id id, cents final_price, const std::optional<std::string>& winner);
std::string serialize_server_shutdown();

// "Bid must be higher than 123.66"
std::string price_too_low_message(cents current_price);

}  // namespace bidding
