#pragma once
// What one client is sent of its auction, and when. Pure: the websocket session owns one, feeds
// it what arrives (the pod's deliveries, rows read from Postgres, replies to its bids) and sends
// what it returns. The promise it keeps: every accepted bid after the client's snapshot exactly
// once, in seq order, with no gap; and a bidder's bid_accepted only after the new_bid it
// acknowledges. A delivery whose `prev` is ahead of what this client has (its snapshot predates
// what the pod already delivered) is held while the missing rows are read from Postgres.
// Held messages are bounded in bytes: past the bound they are dropped and read back instead.
#include <bidding/fanout.hpp>

#include <cstddef>
#include <deque>
#include <utility>
#include <vector>

namespace bidding {

class session_feed {
public:
    explicit session_feed(std::size_t max_held_bytes) : max_held_bytes_(max_held_bytes) {}

    // What to do now: send these messages in this order, and, when `fill` is set, read the
    // auction's rows after last() from Postgres and pass them to filled().
    struct step {
        std::vector<shared_text> send;
        bool fill{false};
    };

    // The client's initial_state went out, ending at `last_seq`: delivery starts after it.
    step start(seq_t last_seq);
    // Accepted bids of the auction, from the pod (consecutive per batch, possibly old or repeated).
    step deliver(const std::vector<fanout_message>& batch);
    // Rows after last(), ascending, read from Postgres; `complete` when the read got all there were.
    step filled(const std::vector<fanout_message>& rows, bool complete);
    // The reply to one of the client's bids: `accepted_seq` is the seq a bid_accepted acknowledges
    // (it waits until that new_bid was sent), 0 for an error (sent in turn, at once).
    step reply(seq_t accepted_seq, shared_text message);
    // Every reply still waiting, for the client's last word before a close.
    std::vector<shared_text> take_replies();

    bool live() const { return live_; }
    seq_t last() const { return last_; }
    std::size_t held_bytes() const { return held_bytes_; }
    std::size_t waiting_replies() const { return replies_.size(); }

private:
    void take(const fanout_message& m, step& out);
    void hold(const fanout_message& m);
    void release_held(step& out);
    void flush_replies(step& out);
    void want_fill(step& out);

    std::size_t max_held_bytes_;
    bool live_{false};
    bool filling_{false};
    bool refill_{false};  // held messages were dropped (or more rows wait): read again after this fill
    seq_t last_{0};
    std::vector<fanout_message> held_;
    std::size_t held_bytes_{0};
    std::deque<std::pair<seq_t, shared_text>> replies_;
};

}  // namespace bidding
