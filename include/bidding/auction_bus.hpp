#pragma once
// The fan-out between pods, as the server sees it: an abstract bus that carries accepted bids,
// closes and pause requests per auction. Redis pub/sub is the one real implementation
// (redis_bus.hpp). Every call only enqueues and never blocks a socket thread; what the bus
// loses is recovered from the store by the auction feeds.
#include <bidding/auction_feed.hpp>
#include <bidding/fanout.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace bidding {

class auction_bus {
public:
    // What arrives from the other pods; called on the bus's own thread.
    struct handlers {
        // Accepted bids of one auction, in the order they arrived (a burst is passed at once).
        std::function<void(auction_id, std::vector<feed_event>)> on_bids;
        std::function<void(auction_id, shared_text)> on_close;
        // The subscription to this auction's channel is in effect (again): anything published
        // before that may have been missed.
        std::function<void(auction_id)> on_subscribed;
        // Another pod asks for a pause of the auction's bids.
        std::function<void(auction_id, std::chrono::milliseconds)> on_hold;
    };

    virtual ~auction_bus() = default;

    virtual void start() = 0;
    // Publishes what is queued (for at most `flush_timeout`), then disconnects.
    virtual void stop(std::chrono::milliseconds flush_timeout) = 0;

    // `committed_us`: when the bid's transaction committed (microseconds since the Unix epoch).
    virtual void publish_bid(auction_id id, const feed_event& event, std::int64_t committed_us) = 0;
    virtual void publish_close(auction_id id, const std::string& bid_closed_json) = 0;
    virtual void publish_hold(auction_id id, std::chrono::milliseconds duration) = 0;
    virtual void subscribe(auction_id id) = 0;
    virtual void unsubscribe(auction_id id) = 0;

    virtual bool connected() const = 0;
    virtual std::uint64_t reconnects() const = 0;
    // Messages on our channels that failed the signature (another program, or another deployment).
    virtual std::uint64_t rejected() const = 0;
};

}  // namespace bidding
