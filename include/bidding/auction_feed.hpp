#pragma once
// The order in which one pod delivers an auction's accepted bids to its clients. Pure logic:
// events come from the local bid path and from Redis, in any order, with duplicates; each
// carries the seq of the auction's previous accepted bid (`prev`), so a missing one is
// noticed. The feed delivers strictly in seq order and asks for a read from Postgres when it
// sees a gap, holding later events until the read fills it.
#include <bidding/fanout.hpp>

#include <cstddef>
#include <map>
#include <vector>

namespace bidding {

using feed_event = fanout_message;

class auction_feed {
public:
    // Held events beyond this are dropped and re-read from Postgres instead.
    static constexpr std::size_t max_held = 10'000;

    bool known() const { return known_; }
    seq_t last() const { return last_; }

    // A client's snapshot of the auction ended at `last_seq`. The first one sets where delivery
    // starts; a later one that is ahead of the feed means the feed missed something.
    std::vector<feed_event> baseline(seq_t last_seq);

    // An event from the local bid path or from Redis. Returns what can be delivered now.
    std::vector<feed_event> push(feed_event event);

    // Rows read from Postgres after last(), ascending. `complete` when the read returned every
    // row there was (fewer than it asked for).
    std::vector<feed_event> filled(const std::vector<feed_event>& rows, bool complete);

    // Something may have been missed (Redis reconnected): read Postgres after last().
    void request_fill();

    // True when a read from Postgres should start now; the caller then calls fill_started().
    bool wants_fill() const { return known_ && gap_ && !filling_; }
    void fill_started() { filling_ = true; }
    // The read failed: it will be asked for again by wants_fill().
    void fill_failed() { filling_ = false; }

    std::size_t held() const { return held_.size(); }

private:
    std::vector<feed_event> drain();

    bool known_{false};
    seq_t last_{0};
    bool gap_{false};
    bool filling_{false};
    bool refill_{false};  // a fill was asked for while one was in flight
    std::map<seq_t, feed_event> held_;  // by seq
};

}  // namespace bidding
