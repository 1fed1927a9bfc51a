#pragma once
// Every message the server sends, serialized once and shared by all its recipients, and the
// JSON shapes they share with the API and the command line (docs/protocol.md). Pure.
#include <bidding/auction.hpp>
#include <bidding/error_code.hpp>

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace bidding {

// The JSON objects every message, the API and the command line show for an auction
// ({"id","name","status","initial_price","current_price","last_seq","ends_at","extend_window",
// "extend_by","min_increment","min_price"}) and a history entry ({"seq","bidder","price","added_at"}).
nlohmann::ordered_json auction_object(const auction& a);
nlohmann::ordered_json history_object(const history_entry& e);

// Server messages, serialized once and shared by every recipient.
// `server_time`: the server's clock (corrected to the database's), for the clients' countdowns.
std::string serialize_initial_state(const auction& a, const std::vector<history_entry>& newest_first,
                                    timestamp server_time);
// The reconnect form (?since=SEQ): entries oldest first, plus "since" and, when the client
// missed more than it gets, "truncated":true.
std::string serialize_initial_state(const auction& a, const std::vector<history_entry>& oldest_first, seq_t since,
                                    bool truncated, timestamp server_time);
std::string serialize_new_bid(auction_id id, const history_entry& entry);
std::string serialize_bid_accepted(const history_entry& entry, const std::optional<std::string>& ref);
std::string serialize_error(error_code code, std::string_view message, const std::optional<std::string>& ref,
                            std::optional<cents> current_price = std::nullopt,
                            std::optional<cents> least_price = std::nullopt);
std::string serialize_ping(timestamp server_time);
std::string serialize_bid_closed(auction_id id, cents final_price, const std::optional<std::string>& winner);
std::string serialize_server_shutdown();

// "Bid must be higher than 123.66" (the increment is 0.01), else "Bid must be at least 124.66".
std::string price_too_low_message(cents current_price, cents least_price);

}  // namespace bidding
