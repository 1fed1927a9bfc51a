#include <bidding/server_messages.hpp>
#include <bidding/bid_rule.hpp>

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

ordered_json optional_time(const std::optional<timestamp>& t) {
    return t ? ordered_json(format_timestamp(*t)) : ordered_json(nullptr);
}

ordered_json optional_seconds(const std::optional<std::chrono::seconds>& s) {
    return s ? ordered_json(s->count()) : ordered_json(nullptr);
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
    j["ends_at"] = optional_time(a.terms.ends_at);
    j["extend_window"] = optional_seconds(a.terms.extend_window);
    j["extend_by"] = optional_seconds(a.terms.extend_by);
    j["min_increment"] = format_cents(a.terms.min_increment);
    j["min_price"] = format_cents(min_price(a.current_price, a.terms.min_increment));
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

std::string serialize_initial_state(const auction& a, const std::vector<history_entry>& newest_first,
                                    timestamp server_time) {
    auto j = initial_state_json(a, newest_first);
    j["server_time"] = format_timestamp(server_time);
    return dump(j);
}

std::string serialize_initial_state(const auction& a, const std::vector<history_entry>& oldest_first, seq_t since,
                                    bool truncated, timestamp server_time) {
    auto j = initial_state_json(a, oldest_first);
    j["since"] = since;
    if (truncated) j["truncated"] = true;
    j["server_time"] = format_timestamp(server_time);
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
    // Every byte of a new_bid goes to every client of the auction: an auction without an end and
    // with the default increment keeps the shape of old (the flood test's readers fell behind their
    // byte bound with 38 bytes more), and the sum min_price is never sent.
    if (entry.ends_at || entry.min_increment != cents{1}) {
        j["ends_at"] = optional_time(entry.ends_at);
        j["min_increment"] = format_cents(entry.min_increment);
    }
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
                            std::optional<cents> current_price, std::optional<cents> least_price) {
    ordered_json j = ordered_json::object();
    j["type"] = "error";
    j["code"] = to_string(code);
    j["message"] = message;
    j["ref"] = optional_string(ref);
    if (current_price) j["current_price"] = format_cents(*current_price);
    if (least_price) j["min_price"] = format_cents(*least_price);
    return dump(j);
}

std::string serialize_ping(timestamp server_time) {
    return R"({"type":"ping","server_time":")" + format_timestamp(server_time) + "\"}";
}

std::string serialize_bid_closed(auction_id id, cents final_price, const std::optional<std::string>& winner) {
    ordered_json j = ordered_json::object();
    j["type"] = "bid_closed";
    j["bid_id"] = id;
    j["final_price"] = format_cents(final_price);
    j["winner"] = optional_string(winner);
    return dump(j);
}

std::string serialize_server_shutdown() { return R"({"type":"server_shutdown","reconnect":true})"; }

std::string price_too_low_message(cents current_price, cents least_price) {
    // The default increment keeps the words clients of the Django application know.
    if (least_price == current_price + cents{1}) {
        return "Bid must be higher than " + format_cents(current_price);
    }
    return "Bid must be at least " + format_cents(least_price);
}

}  // namespace bidding
