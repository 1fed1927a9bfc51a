#include <bidding/session_feed.hpp>

#include <algorithm>

namespace bidding {

session_feed::step session_feed::start(seq_t last_seq) {
    step out;
    live_ = true;
    last_ = last_seq;
    release_held(out);
    if (refill_ && !filling_) {
        want_fill(out);
    }
    flush_replies(out);
    return out;
}

session_feed::step session_feed::deliver(const std::vector<fanout_message>& batch) {
    step out;
    for (const auto& m : batch) {
        if (!live_) {
            if (m.seq > last_) {
                hold(m);
            }
            continue;
        }
        take(m, out);
    }
    return out;
}

session_feed::step session_feed::filled(const std::vector<fanout_message>& rows, bool complete) {
    step out;
    filling_ = false;
    for (const auto& row : rows) {
        if (row.seq > last_) {
            out.send.push_back(row.text);
            last_ = row.seq;
            flush_replies(out);
        }
    }
    if (!complete || refill_) {
        want_fill(out);  // held messages wait for the rest
        return out;
    }
    release_held(out);
    return out;
}

session_feed::step session_feed::reply(seq_t accepted_seq, shared_text message) {
    step out;
    replies_.emplace_back(accepted_seq, std::move(message));
    flush_replies(out);
    return out;
}

std::vector<shared_text> session_feed::take_replies() {
    std::vector<shared_text> out;
    out.reserve(replies_.size());
    for (auto& [seq, text] : replies_) {
        out.push_back(std::move(text));
    }
    replies_.clear();
    return out;
}

void session_feed::take(const fanout_message& m, step& out) {
    if (m.seq <= last_) {
        return;  // already sent (e.g. the snapshot had it, or a fill read it)
    }
    if (filling_) {
        hold(m);
        return;
    }
    if (m.prev > last_) {
        hold(m);
        want_fill(out);
        return;
    }
    out.send.push_back(m.text);
    last_ = m.seq;
    flush_replies(out);
}

void session_feed::hold(const fanout_message& m) {
    if (held_bytes_ + m.text->size() > max_held_bytes_) {
        // Postgres has every row: forget what is held and read it back when the fill ends.
        held_.clear();
        held_bytes_ = 0;
        refill_ = true;
        return;
    }
    held_bytes_ += m.text->size();
    held_.push_back(m);
}

void session_feed::release_held(step& out) {
    auto held = std::move(held_);
    held_.clear();
    held_bytes_ = 0;
    std::stable_sort(held.begin(), held.end(),
                     [](const fanout_message& a, const fanout_message& b) { return a.seq < b.seq; });
    for (const auto& m : held) {
        take(m, out);
    }
}

void session_feed::flush_replies(step& out) {
    while (!replies_.empty() && replies_.front().first <= last_) {
        out.send.push_back(std::move(replies_.front().second));
        replies_.pop_front();
    }
}

void session_feed::want_fill(step& out) {
    filling_ = true;
    refill_ = false;
    out.fill = true;
}

}  // namespace bidding
