#pragma once
// Bounds every blocking database call in time. libpq blocks in recv() for as long as TCP
// allows, and a frozen server whose kernel still acknowledges (SIGSTOP) or a network that
// silently drops packets can hold a thread for minutes. The watchdog shuts the connection's
// socket down when its deadline passes, so the blocked call fails at once as a broken
// connection, and the caller reports "unavailable" instead of hanging.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <thread>

namespace bidding {

class connection_watchdog {
public:
    using clock = std::chrono::steady_clock;

    connection_watchdog();
    ~connection_watchdog();
    connection_watchdog(const connection_watchdog&) = delete;
    connection_watchdog& operator=(const connection_watchdog&) = delete;

    // Watches socket `fd` until disarm(); at `deadline` it is shut down (both directions).
    std::uint64_t arm(int fd, clock::time_point deadline);
    // Stops watching; true when the deadline had already cut the socket. Call it before the
    // socket may be closed (its number could be reused).
    bool disarm(std::uint64_t ticket);

    std::uint64_t cuts() const;

private:
    struct entry {
        int fd;
        clock::time_point deadline;
    };
    void run();

    mutable std::mutex mutex_;
    std::condition_variable changed_;
    std::map<std::uint64_t, entry> armed_;
    std::set<std::uint64_t> fired_;
    std::uint64_t next_{1};
    std::uint64_t cuts_{0};
    bool stopping_{false};
    std::thread thread_;
};

// Arms the watchdog for one call and disarms it when it goes out of scope, writing whether the
// deadline cut the connection to `*cut` (so the caller can tell a timeout from a failure).
class watchdog_guard {
public:
    watchdog_guard(connection_watchdog* dog, int fd, connection_watchdog::clock::time_point deadline, bool* cut)
        : dog_(dog), cut_(cut) {
        if (dog_ != nullptr && fd >= 0) {
            ticket_ = dog_->arm(fd, deadline);
        }
    }
    ~watchdog_guard() {
        if (ticket_ != 0 && dog_->disarm(ticket_) && cut_ != nullptr) {
            *cut_ = true;
        }
    }
    watchdog_guard(const watchdog_guard&) = delete;
    watchdog_guard& operator=(const watchdog_guard&) = delete;

private:
    connection_watchdog* dog_;
    bool* cut_;
    std::uint64_t ticket_{0};
};

}  // namespace bidding
