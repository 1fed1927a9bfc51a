#pragma once
// The error codes of the wire protocol (docs/protocol.md, "Errors"): what an `error` message's
// "code" says, and what the per-code counters of /metrics count.
#include <cstddef>
#include <string_view>

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

}  // namespace bidding
