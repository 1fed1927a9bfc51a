// The bus codec (what a pod makes of a message read from Redis) under a fixed key. Most inputs
// fail the signature, so each is decoded twice: as it is, and re-signed by the harness (the
// HMAC-SHA256 of channel, header and body that include/bidding/bus_codec.hpp documents), which
// lets the header's parsing see any text. Then encode and decode round trips from the input.
#include <fuzz_targets.hpp>

#include <bidding/bus_codec.hpp>
#include <bidding/jwt.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <variant>

namespace bidding::fuzz {

namespace {

const bus_codec& codec() {
    static const bus_codec c(std::string(fuzz_bus_prefix), derive_bus_key(fuzz_secret_key, ""));
    return c;
}

constexpr auction_id channel_id{42};

std::string hex(std::string_view bytes) {
    constexpr char digits[] = "0123456789abcdef";
    std::string out;
    for (const unsigned char c : bytes) {
        out += digits[c >> 4];
        out += digits[c & 0xf];
    }
    return out;
}

// The input's first line as the header (the signature appended to it), the rest as the body,
// signed as a pod signs.
std::string signed_payload(auction_id id, std::string_view input) {
    const auto nl = input.find('\n');
    std::string_view header = input.substr(0, nl);
    const std::string_view body = nl == std::string_view::npos ? std::string_view{} : input.substr(nl + 1);
    const std::string key = derive_bus_key(fuzz_secret_key, "");
    const std::string signed_text = codec().channel(id) + "\n" + std::string(header) + "\n" + std::string(body);
    const std::string sig = hex(hmac_sha256(key, signed_text).substr(0, 16));
    return std::string(header) + " " + sig + "\n" + std::string(body);
}

// A decoded message is sane, and encoding it again gives a message that decodes the same.
void check_decoded(const bus_message& m, std::string_view payload) {
    if (const auto* bid = std::get_if<bus_bid>(&m)) {
        fuzz_check(bid->event.prev.value() >= 0 && bid->event.seq > bid->event.prev && bid->committed_us >= 0 &&
                       bid->event.text != nullptr,
                   "a bid with an impossible header", payload);
        const auto again = codec().decode(channel_id, codec().encode_bid(channel_id, bid->event, bid->committed_us));
        const auto* same = again ? std::get_if<bus_bid>(&*again) : nullptr;
        fuzz_check(same != nullptr && same->event.prev == bid->event.prev && same->event.seq == bid->event.seq &&
                       same->committed_us == bid->committed_us && *same->event.text == *bid->event.text,
                   "a decoded bid does not survive encode and decode", payload);
    } else if (const auto* close = std::get_if<bus_close>(&m)) {
        fuzz_check(close->text != nullptr, "a close without text", payload);
        const auto again = codec().decode(channel_id, codec().encode_close(channel_id, *close->text));
        fuzz_check(again && std::holds_alternative<bus_close>(*again) && *std::get<bus_close>(*again).text == *close->text,
                   "a decoded close does not survive encode and decode", payload);
    } else {
        const auto& hold = std::get<bus_hold>(m);
        fuzz_check(hold.duration.count() >= 0, "a negative hold", payload);
        const auto again = codec().decode(channel_id, codec().encode_hold(channel_id, hold.duration));
        fuzz_check(again && std::holds_alternative<bus_hold>(*again) && std::get<bus_hold>(*again).duration == hold.duration,
                   "a decoded hold does not survive encode and decode", payload);
    }
}

std::int64_t read_count(std::string_view& input) {
    std::uint64_t v = 0;
    const auto n = std::min<std::size_t>(input.size(), sizeof v);
    std::memcpy(&v, input.data(), n);
    input.remove_prefix(n);
    return static_cast<std::int64_t>(v >> 1);  // non-negative
}

}  // namespace

void bus_message_one(std::string_view input) {
    const auto& c = codec();
    if (const auto m = c.decode(channel_id, input)) check_decoded(*m, input);

    const std::string resigned = signed_payload(channel_id, input);
    if (const auto m = c.decode(channel_id, resigned)) {
        check_decoded(*m, resigned);
        // Signed for one auction's channel: refused on another's.
        fuzz_check(!c.decode(auction_id{channel_id.value() + 1}, resigned), "a message verified on another channel",
                   resigned);
    }
    if (const auto id = c.auction_of(input)) {
        fuzz_check(id->value() >= 1 && c.auction_of(c.channel(*id)) == id, "a channel's auction does not round-trip",
                   input);
    }

    // Round trips of the input's values: prev, seq and the commit time from its first bytes,
    // the rest as the message text.
    std::string_view rest = input;
    const std::int64_t prev = read_count(rest);
    const std::int64_t seq = read_count(rest);
    const std::int64_t committed = read_count(rest);
    const auto text = make_shared_text(std::string(rest));
    const auto bid = c.decode(channel_id, c.encode_bid(channel_id, fanout_message{seq_t(prev), seq_t(seq), text}, committed));
    if (seq > prev) {
        fuzz_check(bid && std::holds_alternative<bus_bid>(*bid), "an encoded bid does not decode", rest);
        const auto& b = std::get<bus_bid>(*bid);
        fuzz_check(b.event.prev == seq_t(prev) && b.event.seq == seq_t(seq) && b.committed_us == committed &&
                       *b.event.text == *text,
                   "an encoded bid decodes to another", rest);
    } else {
        fuzz_check(!bid, "a bid whose seq is not after prev decodes", rest);
    }
    const auto close = c.decode(channel_id, c.encode_close(channel_id, *text));
    fuzz_check(close && std::holds_alternative<bus_close>(*close) && *std::get<bus_close>(*close).text == *text,
               "an encoded close decodes to another", rest);
    const auto hold = c.decode(channel_id, c.encode_hold(channel_id, std::chrono::milliseconds(prev)));
    fuzz_check(hold && std::holds_alternative<bus_hold>(*hold) &&
                   std::get<bus_hold>(*hold).duration == std::chrono::milliseconds(prev),
               "an encoded hold decodes to another", rest);
}

}  // namespace bidding::fuzz
