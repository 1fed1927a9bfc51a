#include <bidding/connection_watchdog.hpp>

#include <sys/socket.h>

#include <algorithm>

namespace bidding {

connection_watchdog::connection_watchdog() : thread_([this] { run(); }) {}

connection_watchdog::~connection_watchdog() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    changed_.notify_all();
    thread_.join();
}

std::uint64_t connection_watchdog::arm(int fd, clock::time_point deadline) {
    std::uint64_t ticket = 0;
    bool earliest = false;
    {
        std::lock_guard lock(mutex_);
        ticket = next_++;
        earliest = armed_.empty() ||
                   std::all_of(armed_.begin(), armed_.end(), [&](const auto& e) { return e.second.deadline > deadline; });
        armed_.emplace(ticket, entry{fd, deadline});
    }
    if (earliest) {
        changed_.notify_one();
    }
    return ticket;
}

bool connection_watchdog::disarm(std::uint64_t ticket) {
    std::lock_guard lock(mutex_);
    if (armed_.erase(ticket) > 0) {
        return false;
    }
    return fired_.erase(ticket) > 0;
}

std::uint64_t connection_watchdog::cuts() const {
    std::lock_guard lock(mutex_);
    return cuts_;
}

void connection_watchdog::run() {
    std::unique_lock lock(mutex_);
    while (!stopping_) {
        auto next = clock::time_point::max();
        const auto now = clock::now();
        for (auto it = armed_.begin(); it != armed_.end();) {
            if (it->second.deadline <= now) {
                // Under the lock: the owner cannot close the socket (and its number be reused)
                // before disarm() returns, which takes this lock.
                ::shutdown(it->second.fd, SHUT_RDWR);
                fired_.insert(it->first);
                ++cuts_;
                it = armed_.erase(it);
            } else {
                next = std::min(next, it->second.deadline);
                ++it;
            }
        }
        if (next == clock::time_point::max()) {
            changed_.wait(lock);
        } else {
            changed_.wait_until(lock, next);
        }
    }
}

}  // namespace bidding
