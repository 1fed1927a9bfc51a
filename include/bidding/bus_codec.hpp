#pragma once
// What the pods say to each other on Redis, and how a pod knows a message came from a pod of its
// own deployment. Pure (no Redis): the channel names and the wire form of the messages.
//
// Channel per auction: PREFIX + "auction:" + id, where PREFIX (REDIS_CHANNEL_PREFIX) defaults to
// "bidding:{database}:", so two deployments sharing one Redis never hear each other.
// A message is a header line, then the client message unchanged (receivers forward its bytes):
//   "bid PREV SEQ COMMITTED_US SIG\n{new_bid json}"
//   "close SIG\n{bid_closed json}"
//   "hold MILLIS SIG\n"             this pod's fan-out of the auction is behind: pause its bids
// SIG is the first 16 bytes (hex) of HMAC-SHA256 over channel, header and body, under a key
// derived from SECRET_KEY: a message another program publishes is refused, and one copied from
// another auction's channel does not verify either. COMMITTED_US (commit time, microseconds
// since the Unix epoch) measures fan-out latency.
#include <bidding/fanout.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace bidding {

struct bus_bid {
    fanout_message event;
    std::int64_t committed_us{0};
};
struct bus_close {
    shared_text text;
};
struct bus_hold {
    std::chrono::milliseconds duration{0};
};
using bus_message = std::variant<bus_bid, bus_close, bus_hold>;

// The signing key: from SECRET_KEY when set, else from the database settings (which every pod of
// one deployment shares and which hold its password), never from nothing.
std::string derive_bus_key(std::string_view secret_key, std::string_view database_conninfo);

class bus_codec {
public:
    bus_codec(std::string prefix, std::string key);

    std::string channel(auction_id id) const;
    // "PREFIXauction:42" -> 42
    std::optional<auction_id> auction_of(std::string_view channel) const;

    std::string encode_bid(auction_id id, const fanout_message& event, std::int64_t committed_us) const;
    std::string encode_close(auction_id id, std::string_view bid_closed_json) const;
    std::string encode_hold(auction_id id, std::chrono::milliseconds duration) const;

    // nullopt for a payload that is malformed or not signed by a pod of this deployment.
    std::optional<bus_message> decode(auction_id id, std::string_view payload) const;

private:
    std::string sign(auction_id id, std::string_view header, std::string_view body) const;

    std::string prefix_;
    std::string key_;
};

}  // namespace bidding
