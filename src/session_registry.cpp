#include <bidding/session_registry.hpp>
#include <bidding/websocket_session.hpp>

namespace bidding {

void session_registry::join(auction_id id, const std::shared_ptr<websocket_session>& session) {
    std::lock_guard lock(mutex_);
    if (rooms_[id].emplace(session.get(), session).second) {
        ++count_;
    }
}

void session_registry::leave(auction_id id, const websocket_session* session) {
    std::lock_guard lock(mutex_);
    const auto it = rooms_.find(id);
    if (it == rooms_.end()) {
        return;
    }
    if (it->second.erase(session) > 0) {
        --count_;
    }
    if (it->second.empty()) {
        rooms_.erase(it);
    }
}

std::vector<std::shared_ptr<websocket_session>> session_registry::sessions_of(auction_id id) const {
    std::vector<std::shared_ptr<websocket_session>> out;
    std::lock_guard lock(mutex_);
    const auto it = rooms_.find(id);
    if (it == rooms_.end()) {
        return out;
    }
    out.reserve(it->second.size());
    for (const auto& [ptr, weak] : it->second) {
        if (auto s = weak.lock()) {
            out.push_back(std::move(s));
        }
    }
    return out;
}

void session_registry::broadcast(auction_id id, const fanout_batch& batch) {
    for (const auto& s : sessions_of(id)) {
        s->deliver(batch);
    }
}

void session_registry::close_auction(auction_id id, const shared_text& message) {
    for (const auto& s : sessions_of(id)) {
        s->close_auction(message);
    }
}

void session_registry::shutdown_all(const shared_text& message) {
    std::vector<std::shared_ptr<websocket_session>> all;
    {
        std::lock_guard lock(mutex_);
        all.reserve(count_);
        for (const auto& [id, room] : rooms_) {
            for (const auto& [ptr, weak] : room) {
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
    for (const auto& [id, room] : rooms_) {
        out.push_back(id);
    }
    return out;
}

std::size_t session_registry::size() const {
    std::lock_guard lock(mutex_);
    return count_;
}

}  // namespace bidding
