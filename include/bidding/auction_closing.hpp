#pragma once
// Closing an auction, the one way: the API (api_routes), the command line (`bid close`), the end
// time (auction_closer) and the pods (close_listener, the bus) all go through here. The store
// commits the close together with its announcement (Postgres NOTIFY, which reaches every pod's close_listener); the bid_closed
// message it carries is built here, once, and is the same text the bus and every client get.
#include <bidding/auction_store.hpp>
#include <bidding/fanout.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace bidding {

struct closing {
    close_result result;
    std::string bid_closed;  // the message every client of the auction gets (empty when not found)
};

// Closes the auction (or finds it already closed, which announces it again: harmless, and it
// reaches a pod that missed the first). Throws store_unavailable.
closing close_auction(auction_store& store, auction_id id);

// Closes the open auctions whose end has passed by the database's clock (at most `limit`), each
// announced like any close: what the pods' auction_closer runs. Throws store_unavailable.
ended_sweep close_ended_auctions(auction_store& store, std::size_t limit);

// The auction a close announcement is about (the NOTIFY payload, a bus message), or nullopt
// when it is not one.
std::optional<auction_id> closed_auction_of(std::string_view bid_closed);

}  // namespace bidding
