#pragma once
// MAX_OPENING_CONNECTIONS: how many WebSocket connections this pod sets up at once (from its 101
// answer to its initial_state: the snapshot read and the first message). A burst of upgrades
// (thousands of clients reconnecting at once) is let in that many at a time, in arrival order,
// so that the sessions' threads never hold more than that many set-ups in their queues, ahead of
// the live clients' bids and replies. Pure and thread-safe: entered on the accepting thread, left
// from any session's, as connection_limits.
#include <chrono>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>

namespace bidding {

class opening_gate : public std::enable_shared_from_this<opening_gate> {
public:
    using clock = std::chrono::steady_clock;

    explicit opening_gate(std::size_t slots);

    // A place among the connections being set up: frees itself when destroyed (or released).
    class ticket {
    public:
        ticket() = default;
        ticket(ticket&& other) noexcept : owner_(std::move(other.owner_)) {}
        // The place held before is given back last: giving it back may start a waiter, whose
        // start may move this ticket (in a container) before it returns.
        ticket& operator=(ticket&& other) noexcept {
            if (this != &other) {
                ticket before(std::move(*this));
                owner_ = std::move(other.owner_);
            }
            return *this;
        }
        ticket(const ticket&) = delete;
        ticket& operator=(const ticket&) = delete;
        ~ticket() { release(); }
        explicit operator bool() const { return owner_ != nullptr; }
        void release();

    private:
        friend class opening_gate;
        explicit ticket(std::shared_ptr<opening_gate> owner) : owner_(std::move(owner)) {}
        std::shared_ptr<opening_gate> owner_;
    };

    // Called with the place, and how long the connection waited for it. It must hand the ticket
    // on (post it to the connection's executor), never release it before returning: the next
    // waiter is started from the releasing thread.
    using start_fn = std::function<void(ticket, clock::duration waited)>;

    // Runs `start` now, on the calling thread, when a place is free; else when one frees, in the
    // order of arrival. The waiters are bounded by MAX_CONNECTIONS: each holds a connection's lease.
    void enter(start_fn start);

    std::size_t opening() const;  // places held
    std::size_t waiting() const;
    std::size_t slots() const { return slots_; }

private:
    void leave();

    struct waiter {
        start_fn start;
        clock::time_point since;
    };
    const std::size_t slots_;
    mutable std::mutex mutex_;
    std::size_t opening_{0};
    std::deque<waiter> waiting_;
};

}  // namespace bidding
