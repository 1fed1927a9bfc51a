#pragma once
// The bid path between a session and Postgres. Bids of one auction form a lane: at most one
// transaction per auction is in flight from this process, and the bids that queued up while it
// ran are decided together, in arrival order, in the next one. The lanes' batches wait for a
// round: at most `rounds` database jobs decide bids at once, and each takes up to
// `round_auctions` waiting batches into one transaction (one COMMIT for many auctions: a pod
// with many busy auctions pays one round trip per statement, not per auction). After the commit, accepted bids
// go to this pod's clients at once (not through Redis) and are published for the other pods;
// only then is each sender answered, so a sender normally sees its new_bid before bid_accepted.
//
// Every bid gets exactly one reply, within `reply_timeout` of its arrival:
//   bid_accepted / price_too_low / bid_closed  decided under the row lock;
//   overloaded   the lane (or this pod) holds too many undecided bids, or the bid waited too
//                long for its turn: never sent to Postgres, not stored;
//   unavailable  Postgres could not be reached or refused the transaction: not stored;
//   in_doubt     the connection broke during COMMIT and the server could not say in time what
//                became of it: the bid may be stored (commit_resolver publishes it if so).
#include <bidding/commit_resolver.hpp>
#include <bidding/db_pool.hpp>
#include <bidding/fanout.hpp>
#include <bidding/metrics.hpp>
#include <bidding/protocol.hpp>
#include <bidding/session_registry.hpp>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <unordered_map>

namespace bidding {

class bid_service {
public:
    using clock = std::chrono::steady_clock;

    // Called once per submitted bid, from any thread, with the serialized reply for the sender
    // alone: bid_accepted with the seq it acknowledges, or an error with seq 0.
    using reply_fn = std::function<void(seq_t accepted_seq, shared_text reply)>;

    // Called after each commit with the auction's newly accepted bids, to tell the other pods.
    // `committed_us`: when the transaction committed (microseconds since the Unix epoch).
    using publish_fn = std::function<void(auction_id, const std::vector<fanout_message>&, std::int64_t committed_us)>;

    struct limits {
        std::size_t per_auction{1024};  // undecided bids of one auction
        std::size_t total{16'384};      // undecided bids of this pod
        std::size_t max_batch{128};     // bids decided in one transaction
        std::chrono::milliseconds db_timeout{2000};     // a bid's transaction ends this long after its arrival
        std::chrono::milliseconds reply_timeout{5000};  // a bid's reply comes within this, in doubt or not
        std::size_t rounds{4};           // bid transactions in flight (the pool's threads)
        std::size_t round_auctions{64};  // auctions decided in one transaction
    };

    bid_service(db_pool& db, session_registry& registry, metrics& stats, limits lim, publish_fn publish = {},
                commit_resolver* resolver = nullptr);

    void submit(auction_id id, bid_request request, clock::time_point received, reply_fn reply);

    // Blocks until no bid is queued or in flight, or the timeout passes; true when idle.
    bool wait_idle(std::chrono::milliseconds timeout);

    // Accepted bids to this pod's clients and to the other pods (also for bids found committed
    // after their transaction was in doubt).
    void fan_out(auction_id id, std::vector<fanout_message> accepted);

private:
    struct pending {
        bid_request request;
        reply_fn reply;
        clock::time_point received;
    };
    struct lane {
        std::deque<pending> queue;
        bool busy{false};
    };
    using batch = std::vector<pending>;
    // A lane's batch waiting for a round; the lane stays busy until it is answered.
    struct ready_batch {
        auction_id id;
        batch bids;
        clock::time_point deadline;  // its transaction must end by then
    };
    using round = std::vector<ready_batch>;

    // Queues `b` (taken from `id`'s lane, which is busy) for the next round.
    void dispatch(auction_id id, batch b);
    // A round on the pool: it takes its batches when it starts (so the more bids wait, the more
    // it decides at once), then decides and answers them.
    void post_round();
    void take_round(round& r);
    void run_round(auction_store& store, round& r);
    void answer(auction_id id, batch& b, placement result);
    void refuse_round(round& r, error_code code);
    // A round that will not run: what it would have taken is answered `code` (not stored).
    void abandon_round(round& r, error_code code);
    // The round's batches are answered: their lanes go on, and another round starts if any waits.
    void end_round(round& r);
    // The batch has been answered: releases its share of the counts and starts the next one.
    void finished(auction_id id, std::size_t done);
    // The next bids of a busy lane that can still be decided in time; the others are answered
    // (overloaded, or unavailable while Postgres is known to be away) into `late`.
    batch take_batch(lane& l, std::vector<pending>& late);
    void refuse(pending& p, error_code code);

    db_pool& db_;
    session_registry& registry_;
    metrics& stats_;
    limits limits_;
    publish_fn publish_;
    commit_resolver* resolver_;
    std::mutex mutex_;
    std::condition_variable idle_;
    std::unordered_map<auction_id, lane> lanes_;
    std::deque<ready_batch> ready_;  // at most one per busy lane
    std::size_t rounds_{0};          // round jobs posted and not ended
    std::size_t outstanding_{0};
};

}  // namespace bidding
