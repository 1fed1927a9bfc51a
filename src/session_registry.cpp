#include <bidding/session_registry.hpp>

#include <algorithm>

namespace bidding {

void session_registry::set_hooks(hooks h) { hooks_ = std::move(h); }

std::shared_ptr<fanout_load> session_registry::join(auction_id id, const std::shared_ptr<feed_subscriber>& session) {
    std::lock_guard lock(mutex_);
    auto& slot = rooms_[id];
    if (!slot) {
        slot = std::make_shared<room>();
        slot->load = std::make_shared<fanout_load>(high_water_, max_lag_);
        // Under the registry lock, so subscribe and unsubscribe requests keep their order.
        if (hooks_.first_joined) {
            hooks_.first_joined(id);
        }
    }
    std::lock_guard room_lock(slot->mutex);
    if (slot->sessions.emplace(session.get(), session).second) {
        ++count_;
        slot->load->sessions_changed(1);
    }
    return slot->load;
}

void session_registry::leave(auction_id id, const feed_subscriber* session) {
    std::lock_guard lock(mutex_);
    const auto it = rooms_.find(id);
    if (it == rooms_.end()) {
        return;
    }
    bool empty = false;
    {
        std::lock_guard room_lock(it->second->mutex);
        if (it->second->sessions.erase(session) > 0) {
            --count_;
            it->second->load->sessions_changed(-1);
        }
        empty = it->second->sessions.empty();
    }
    if (empty) {
        rooms_.erase(it);
        if (hooks_.last_left) {
            hooks_.last_left(id);
        }
    }
}

std::shared_ptr<session_registry::room> session_registry::find(auction_id id) const {
    std::lock_guard lock(mutex_);
    const auto it = rooms_.find(id);
    return it == rooms_.end() ? nullptr : it->second;
}

template <class Step>
void session_registry::advance(auction_id id, Step&& step) {
    const auto r = find(id);
    if (!r) {
        return;  // nobody here follows this auction
    }
    std::optional<seq_t> read_after;
    bool signal = false;
    // Released after the lock: dropping the last reference to a session runs its destructor,
    // which leaves the room.
    std::vector<std::shared_ptr<feed_subscriber>> recipients;
    {
        std::lock_guard lock(r->mutex);
        auto out = step(r->feed);
        if (!out.empty()) {
            std::int64_t bytes = 0;
            for (const auto& m : out) {
                bytes += static_cast<std::int64_t>(m.text->size());
            }
            auto batch = std::make_shared<const std::vector<fanout_message>>(std::move(out));
            recipients.reserve(r->sessions.size());
            for (const auto& [ptr, weak] : r->sessions) {
                if (auto s = weak.lock()) {
                    recipients.push_back(std::move(s));
                }
            }
            // Counted before any session can take it, so the backlog never reads negative.
            r->load->posted(bytes * static_cast<std::int64_t>(recipients.size()));
            const auto now = fanout_load::clock::now();
            for (const auto& s : recipients) {
                s->deliver(batch, bytes, now);
            }
            signal = r->load->behind() && r->load->should_signal(now, signal_every);
        }
        if (r->feed.wants_fill() && hooks_.read_after) {
            r->feed.fill_started();
            read_after = r->feed.last();
        }
    }
    if (read_after) {
        hooks_.read_after(id, *read_after, fill_limit);
    }
    if (signal && hooks_.behind) {
        hooks_.behind(id);
    }
}

void session_registry::hold(auction_id id, fanout_load::clock::time_point until) {
    if (const auto r = find(id)) {
        r->load->hold(until);
    }
}

void session_registry::baseline(auction_id id, seq_t last_seq) {
    advance(id, [&](auction_feed& f) { return f.baseline(last_seq); });
}

void session_registry::publish(auction_id id, std::vector<feed_event> events) {
    advance(id, [&](auction_feed& f) {
        std::vector<feed_event> out;
        for (auto& e : events) {
            auto ready = f.push(std::move(e));
            out.insert(out.end(), std::make_move_iterator(ready.begin()), std::make_move_iterator(ready.end()));
        }
        return out;
    });
}

void session_registry::fill_done(auction_id id, const std::vector<feed_event>& rows, bool complete) {
    advance(id, [&](auction_feed& f) { return f.filled(rows, complete); });
}

void session_registry::fill_failed(auction_id id) {
    if (const auto r = find(id)) {
        std::lock_guard lock(r->mutex);
        r->feed.fill_failed();
    }
}

void session_registry::resync(auction_id id) {
    advance(id, [](auction_feed& f) {
        f.request_fill();
        return std::vector<feed_event>{};
    });
}

void session_registry::resync_all() {
    for (const auto id : auctions()) {
        resync(id);
    }
}

void session_registry::close_auction(auction_id id, const shared_text& message) {
    const auto r = find(id);
    if (!r) {
        return;
    }
    std::vector<std::shared_ptr<feed_subscriber>> recipients;  // released after the lock
    std::lock_guard lock(r->mutex);
    for (const auto& [ptr, weak] : r->sessions) {
        if (auto s = weak.lock()) {
            s->close_auction(message);
            recipients.push_back(std::move(s));
        }
    }
}

void session_registry::shutdown_all(const shared_text& message) {
    std::vector<std::shared_ptr<feed_subscriber>> all;
    {
        std::lock_guard lock(mutex_);
        all.reserve(count_);
        for (const auto& [id, r] : rooms_) {
            std::lock_guard room_lock(r->mutex);
            for (const auto& [ptr, weak] : r->sessions) {
                if (auto s = weak.lock()) {
                    all.push_back(std::move(s));
                }
            }
        }
    }
    for (const auto& s : all) {
        s->shutdown(message);
    }
}

std::vector<auction_id> session_registry::auctions() const {
    std::lock_guard lock(mutex_);
    std::vector<auction_id> out;
    out.reserve(rooms_.size());
    for (const auto& [id, r] : rooms_) {
        out.push_back(id);
    }
    return out;
}

std::vector<std::pair<auction_id, std::size_t>> session_registry::room_sizes() const {
    std::lock_guard lock(mutex_);
    std::vector<std::pair<auction_id, std::size_t>> out;
    out.reserve(rooms_.size());
    for (const auto& [id, r] : rooms_) {
        std::lock_guard room_lock(r->mutex);
        out.emplace_back(id, r->sessions.size());
    }
    std::sort(out.begin(), out.end());
    return out;
}

std::size_t session_registry::size() const {
    std::lock_guard lock(mutex_);
    return count_;
}

}  // namespace bidding
