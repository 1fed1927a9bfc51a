#include <bidding/auction_closing.hpp>
#include <bidding/server_messages.hpp>

#include <nlohmann/json.hpp>

namespace bidding {

closing close_auction(auction_store& store, auction_id id) {
    closing out;
    out.result = store.close_auction(id, [&out](auction_id a, const close_result& r) {
        out.bid_closed = serialize_bid_closed(a, r.final_price, r.winner);
        return out.bid_closed;
    });
    return out;
}

ended_sweep close_ended_auctions(auction_store& store, std::size_t limit) {
    return store.close_ended_auctions(
        [](auction_id a, const close_result& r) { return serialize_bid_closed(a, r.final_price, r.winner); }, limit);
}

std::optional<auction_id> closed_auction_of(std::string_view bid_closed) {
    const auto j = nlohmann::json::parse(bid_closed, nullptr, false);
    if (!j.is_object() || j.value("type", "") != "bid_closed" || !j.contains("bid_id") ||
        !j["bid_id"].is_number_integer()) {
        return std::nullopt;
    }
    return auction_id(j["bid_id"].get<std::int64_t>());
}

}  // namespace bidding
