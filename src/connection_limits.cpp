#include <bidding/connection_limits.hpp>

namespace bidding {

connection_limits::connection_limits(std::size_t max_total, std::size_t max_per_client)
    : max_total_(max_total), max_per_client_(max_per_client) {}

connection_limits::admission connection_limits::admit(const std::string& client_key) {
    std::lock_guard lock(mutex_);
    if (max_total_ != 0 && open_ >= max_total_) {
        return {verdict::pod_full, lease{}};
    }
    auto& mine = per_client_[client_key];
    if (max_per_client_ != 0 && mine >= max_per_client_) {
        return {verdict::client_full, lease{}};  // mine > 0 here: the entry was there already
    }
    ++mine;
    ++open_;
    return {verdict::admitted, lease{shared_from_this(), client_key}};
}

void connection_limits::release(const std::string& key) {
    std::lock_guard lock(mutex_);
    --open_;
    if (const auto it = per_client_.find(key); it != per_client_.end() && --it->second == 0) {
        per_client_.erase(it);
    }
}

std::size_t connection_limits::open() const {
    std::lock_guard lock(mutex_);
    return open_;
}

void connection_limits::lease::release() {
    if (owner_) {
        owner_->release(key_);
        owner_.reset();
    }
}

}  // namespace bidding
