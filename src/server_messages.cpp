#include <bidding/server_messages.hpp>

namespace bidding {

namespace {

using json = nlohmann::json;
using ordered_json = nlohmann::ordered_json;

std::string dump(const ordered_json& j) {
    // replace: a stray invalid byte (e.g. from the database) must not throw while serializing.
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

ordered_json optional_string(const std::optional<std::string>& s) {
    return s ? ordered_json(*s) : ordered_json(nullptr);
}


}  // namespace

ordered_json auction_object(const auction& a) {
    ordered_json j = ordered_json::object();
    j["id"] = a.id;
    j["name"] = a.name;
    j["status"] = to_string(a.status);
    j["initial_price"] = format_cents(a.initial_price);
    j["current_price"] = format_cents(a.current_price);
    j["last_seq"] = a.last_seq;
    return j;
}

ordered_json history_object(const history_entry& e) {
    ordered_json j = ordered_json::object();
    j["seq"] = e.seq;
    j["bidder"] = e.bidder;
    j["price"] = format_cents(e.price);
    j["added_at"] = e.added_at;
    return j;
}

namespace {

ordered_json initial_state_json(const auction& a, const std::vector<history_entry>& entries) {
    ordered_json data = ordered_json::array();
    for (const history_entry& e : entries) data.push_back(history_object(e));

    ordered_json j = ordered_json::object();
    j["type"] = "initial_state";
    j["bid"] = auction_object(a);
    j["data"] = std::move(data);
    return j;
}

}  // namespace

std::string serialize_initial_state(const auction& a, const std::vector<history_entry>& newest_first) {
    return dump(initial_state_json(a, newest_first));
}

std::string serialize_initial_state(const auction& a, const std::vector<history_entry>& oldest_first, seq_t since,
                                    bool truncated) {
    auto j = initial_state_json(a, oldest_first);
    j["since"] = since;
    if (truncated) j["truncated"] = true;
    return dump(j);
}

std::string serialize_new_bid(auction_id id, const history_entry& entry) {
    ordered_json j = ordered_json::object();
    j["type"] = "new_bid";
    j["bid_id"] = id;
    j["seq"] = entry.seq;
    j["bidder"] = entry.bidder;
    j["price"] = format_cents(entry.price);
    j["added_at"] = entry.added_at;
    return dump(j);
}

std::string serialize_bid_accepted(const history_entry& entry, const std::optional<std::string>& ref) {
    ordered_json j = ordered_json::object();
    j["type"] = "bid_accepted";
    j["seq"] = entry.seq;
    j["price"] = format_cents(entry.price);
    j["ref"] = optional_string(ref);
    return dump(j);
}

std::string serialize_error(error_code code, std::string_view message, const std::optional<std::string>& ref,
                            std::optional<cents> current_price) {
    ordered_json j = ordered_json::object();
    j["type"] = "error";
    j["code"] = to_string(code);
    j["message"] = message;
    j["ref"] = optional_string(ref);
    if (current_price) j["current_price"] = format_cents(*current_price);
    return dump(j);
}

std::string serialize_ping() { return R"({"type":"ping"})"; }

std::string serialize_bid_closed(auction_id id, cents final_price, const std::optional<std::string>& winner) {
    ordered_json j = ordered_json::object();
    j["type"] = "bid_closed";
    j["bid_id"] = id;
    j["final_price"] = format_cents(final_price);
    j["winner"] = optional_string(winner);
    return dump(j);
}

std::string serialize_server_shutdown() { return R"({"type":"server_shutdown","reconnect":true})"; }

std::string price_too_low_message(cents current_price) {
    return "Bid must be higher than " + format_cents(current_price);
}

}  // namespace bidding
