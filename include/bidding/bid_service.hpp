#pragma once
// The bid path between a session and Postgres. Bids of one auction form a lane: at most one
// transaction per auction is in flight from this process, and the bids that queued up while it
// ran are decided together, in arrival order, in the next one. After the commit, accepted bids
// go to this pod's clients at once (not through Redis) and are published for the other pods;
// only then is each sender answered, so a sender normally sees its new_bid before bid_accepted.
#include <bidding/db_pool.hpp>
#include <bidding/fanout.hpp>
#include <bidding/metrics.hpp>
#include <bidding/protocol.hpp>
#include <bidding/session_registry.hpp>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <unordered_map>

namespace bidding {

class bid_service {
public:
    // Called once per submitted bid, from a database thread, with the serialized reply for the
    // sender alone: bid_accepted with the seq it acknowledges, or an error with seq 0.
    using reply_fn = std::function<void(seq_t accepted_seq, shared_text reply)>;

    // Called after each commit with the auction's newly accepted bids, to tell the other pods.
    // `committed_us`: when the transaction committed (microseconds since the Unix epoch).
    using publish_fn = std::function<void(auction_id, const std::vector<fanout_message>&, std::int64_t committed_us)>;

    bid_service(db_pool& db, session_registry& registry, metrics& stats, publish_fn publish = {},
                std::size_t max_batch = 128);

    void submit(auction_id id, bid_request request, reply_fn reply);

    // Blocks until no bid is queued or in flight, or the timeout passes; true when idle.
    bool wait_idle(std::chrono::milliseconds timeout);

private:
    struct pending {
        bid_request request;
        reply_fn reply;
        std::chrono::steady_clock::time_point received;
    };
    struct lane {
        std::deque<pending> queue;
        bool busy{false};
    };

    // Takes the next batch of `id`'s lane and runs it on the pool. Called with busy set.
    void dispatch(auction_id id, std::vector<pending> batch);
    void decide(postgres_store& store, auction_id id, std::vector<pending>& batch);
    std::vector<pending> take_batch(lane& l);

    db_pool& db_;
    session_registry& registry_;
    metrics& stats_;
    publish_fn publish_;
    std::size_t max_batch_;
    std::mutex mutex_;
    std::condition_variable idle_;
    std::unordered_map<auction_id, lane> lanes_;
    std::size_t outstanding_{0};
};

}  // namespace bidding
