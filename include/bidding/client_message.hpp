#pragma once
// What a client's text frame means: a bid, a pong, or an error to answer (docs/protocol.md).
// Pure: no sockets, no database. Numbers are read from their JSON text, never through a double.
#include <bidding/error_code.hpp>
#include <bidding/money.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace bidding {

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

// Trims ASCII whitespace and checks a bidder or item name (names are shown to everybody): valid
// UTF-8, 1..255 code points, no control characters, no invisible or bidirectional-control ones
// (zero-width characters, U+202E and the other format characters, variation selectors, fillers),
// not only spaces. nullopt (and *error set, when given) when it is not acceptable.
std::optional<std::string> normalize_name(std::string_view raw, std::string* error = nullptr);

}  // namespace bidding
