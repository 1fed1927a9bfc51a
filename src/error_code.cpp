#include <bidding/error_code.hpp>

namespace bidding {

std::string_view to_string(error_code code) {
    switch (code) {
        case error_code::invalid_json: return "invalid_json";
        case error_code::invalid_message: return "invalid_message";
        case error_code::invalid_name: return "invalid_name";
        case error_code::invalid_price: return "invalid_price";
        case error_code::price_too_low: return "price_too_low";
        case error_code::bid_closed: return "bid_closed";
        case error_code::unsupported: return "unsupported";
        case error_code::unavailable: return "unavailable";
        case error_code::rate_limited: return "rate_limited";
        case error_code::overloaded: return "overloaded";
        case error_code::in_doubt: return "in_doubt";
    }
    return "invalid_message";
}

}  // namespace bidding
