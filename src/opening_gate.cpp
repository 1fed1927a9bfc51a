#include <bidding/opening_gate.hpp>

#include <utility>

namespace bidding {

opening_gate::opening_gate(std::size_t slots) : slots_(slots == 0 ? 1 : slots) {}

void opening_gate::ticket::release() {
    if (auto owner = std::move(owner_)) {
        owner->leave();
    }
}

void opening_gate::enter(start_fn start) {
    {
        std::lock_guard lock(mutex_);
        if (opening_ >= slots_ || !waiting_.empty()) {
            waiting_.push_back(waiter{std::move(start), clock::now()});
            return;
        }
        ++opening_;
    }
    start(ticket(shared_from_this()), clock::duration::zero());
}

void opening_gate::leave() {
    waiter next;
    {
        std::lock_guard lock(mutex_);
        if (waiting_.empty()) {
            --opening_;
            return;
        }
        // The place passes to the oldest waiter as it is.
        next = std::move(waiting_.front());
        waiting_.pop_front();
    }
    next.start(ticket(shared_from_this()), clock::now() - next.since);
}

std::size_t opening_gate::opening() const {
    std::lock_guard lock(mutex_);
    return opening_;
}

std::size_t opening_gate::waiting() const {
    std::lock_guard lock(mutex_);
    return waiting_.size();
}

}  // namespace bidding
