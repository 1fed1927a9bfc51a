#pragma once
// What the session registry hands an auction's messages to: a WebSocket session in the server,
// a recording fake in the unit tests. Each call may come from any thread and must not block:
// an implementation queues the work onto its own strand.
#include <bidding/fanout.hpp>

#include <chrono>
#include <cstdint>

namespace bidding {

class feed_subscriber {
public:
    virtual ~feed_subscriber() = default;
    // Consecutive accepted bids of the auction, in the feed's order. `bytes`: the batch's size,
    // counted in the auction's fan-out load until the subscriber takes it (fanout_load::taken);
    // `handed_over`: when the pod handed it over (the start of its lag).
    virtual void deliver(fanout_batch batch, std::int64_t bytes, std::chrono::steady_clock::time_point handed_over) = 0;
    // bid_closed: the last message before the subscriber closes with 4003.
    virtual void close_auction(shared_text bid_closed_message) = 0;
    // server_shutdown: the last message before the subscriber closes with 1012.
    virtual void shutdown(shared_text shutdown_message) = 0;
};

}  // namespace bidding
