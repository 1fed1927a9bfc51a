#include <bidding/auction_feed.hpp>

namespace bidding {

std::vector<feed_event> auction_feed::baseline(seq_t last_seq) {
    if (!known_) {
        known_ = true;
        last_ = last_seq;
        // Bids committed between that snapshot and the Redis subscription taking effect reach
        // no one through Redis: always check Postgres once when delivery starts.
        gap_ = true;
        return drain();
    }
    if (last_seq > last_) {
        request_fill();
    }
    return {};
}

std::vector<feed_event> auction_feed::push(feed_event event) {
    if (known_ && event.seq <= last_) {
        return {};  // already delivered
    }
    if (held_.size() >= max_held) {
        // Too much is waiting: forget it all, Postgres has every row.
        held_.clear();
        gap_ = true;
        return {};
    }
    held_.emplace(event.seq, std::move(event));
    return known_ ? drain() : std::vector<feed_event>{};
}

std::vector<feed_event> auction_feed::filled(const std::vector<feed_event>& rows, bool complete) {
    filling_ = false;
    std::vector<feed_event> out;
    for (const auto& row : rows) {
        if (row.seq > last_) {
            out.push_back(row);
            last_ = row.seq;
        }
    }
    gap_ = !complete || refill_;
    refill_ = false;
    auto more = drain();
    out.insert(out.end(), std::make_move_iterator(more.begin()), std::make_move_iterator(more.end()));
    return out;
}

void auction_feed::request_fill() {
    if (!known_) {
        return;  // baseline() will check Postgres anyway
    }
    gap_ = true;
    if (filling_) {
        refill_ = true;  // the read in flight may have started too early
    }
}

std::vector<feed_event> auction_feed::drain() {
    std::vector<feed_event> out;
    while (!held_.empty()) {
        auto it = held_.begin();
        if (it->first <= last_) {
            held_.erase(it);
            continue;
        }
        if (it->second.prev > last_) {
            gap_ = true;  // an earlier bid has not arrived: Postgres has it
            break;
        }
        last_ = it->first;
        out.push_back(std::move(it->second));
        held_.erase(it);
    }
    return out;
}

}  // namespace bidding
