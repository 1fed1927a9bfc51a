// parse_client_message, for a connection without and with a token identity, and the replies the
// session makes of the result (serialize_error, the new_bid and bid_accepted of an accepted bid).
#include <fuzz_targets.hpp>

#include <bidding/client_message.hpp>
#include <bidding/json_object.hpp>
#include <bidding/server_messages.hpp>
#include <bidding/utf8.hpp>

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>
#include <variant>

namespace bidding::fuzz {

namespace {

void check_ref(const std::optional<std::string>& ref, std::string_view input) {
    if (ref) {
        fuzz_check(!ref->empty() && valid_utf8(*ref) && code_point_count(*ref) <= max_ref_chars,
                   "a ref that breaks the ref rule was accepted", input);
    }
}

// What the session sends back must be JSON (nlohmann throws on text that is not UTF-8).
void check_reply(const std::string& reply, std::string_view what) {
    fuzz_check(nlohmann::json::accept(reply), what, reply);
}

void check(const client_message& message, bool name_from_token, std::string_view input) {
    // The session hands the parser text frames only, which ws_frame_parser has checked to be
    // UTF-8; the replies are checked for those inputs (others cannot reach them).
    const bool reachable = valid_utf8(input);
    if (const auto* error = std::get_if<message_error>(&message)) {
        check_ref(error->ref, input);
        fuzz_check(!error->message.empty(), "an error without a message", input);
        if (reachable) {
            check_reply(serialize_error(error->code, error->message, error->ref), "the error reply is not JSON");
        }
        return;
    }
    const auto* bid = std::get_if<bid_request>(&message);
    if (bid == nullptr) {
        return;  // a pong
    }
    check_ref(bid->ref, input);
    fuzz_check(bid->price > cents(0) && bid->price <= max_price_cents, "a bid's price out of range", input);
    if (name_from_token) {
        fuzz_check(bid->name.empty(), "a name read although the token names the bidder", input);
    } else {
        const auto again = normalize_name(bid->name);
        fuzz_check(again && *again == bid->name, "an accepted name does not pass normalize_name unchanged", bid->name);
    }
    // The price is the one of the "price" member (else "Price"), read from its text.
    const auto doc = json_object::read(input);
    fuzz_check(doc.has_value(), "a bid from text that json_object does not read", input);
    const json_member* price = doc->find("price");
    if (price == nullptr) price = doc->find("Price");
    fuzz_check(price != nullptr && parse_price(price->text).value == bid->price, "the price is not the member's",
               input);
    if (reachable && !name_from_token) {
        history_entry entry;
        entry.seq = seq_t{7};
        entry.bidder = bid->name;
        entry.price = bid->price;
        entry.added_at = "2026-11-25T14:00:01.456Z";
        const auto new_bid = serialize_new_bid(auction_id{1}, entry);
        check_reply(new_bid, "new_bid is not JSON");
        fuzz_check(nlohmann::json::parse(new_bid).at("bidder") == bid->name, "new_bid changed the name", new_bid);
        check_reply(serialize_bid_accepted(entry, bid->ref), "bid_accepted is not JSON");
    }
}

}  // namespace

void client_message_one(std::string_view input) {
    const auto anonymous = parse_client_message(input, false);
    check(anonymous, false, input);
    const auto token = parse_client_message(input, true);
    check(token, true, input);
    // The token only takes the name's place: a bid accepted with a name is accepted without.
    if (const auto* bid = std::get_if<bid_request>(&anonymous)) {
        const auto* same = std::get_if<bid_request>(&token);
        fuzz_check(same != nullptr && same->price == bid->price && same->ref == bid->ref,
                   "a bid accepted with a name is refused or changed for a token's connection", input);
    }
    fuzz_check(std::holds_alternative<pong_message>(anonymous) == std::holds_alternative<pong_message>(token),
               "a pong for one kind of connection only", input);
}

}  // namespace bidding::fuzz
