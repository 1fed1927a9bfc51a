#pragma once
// Capped exponential backoff between reconnection attempts: 100 ms, 200 ms, 400 ms ... up to
// the cap, back to the start once a connection works. Pure: the caller does the waiting (each
// on what it can be woken by).
#include <algorithm>
#include <chrono>

namespace bidding {

class backoff {
public:
    using duration = std::chrono::milliseconds;

    constexpr backoff(duration initial, duration cap) : initial_(initial), cap_(cap), next_(initial) {}

    // The wait before the next attempt; the one after it is twice as long, up to the cap.
    duration next() {
        const auto now = next_;
        next_ = std::min(next_ * 2, cap_);
        return now;
    }
    // A connection worked: the next outage starts from the initial wait.
    void reset() { next_ = initial_; }
    // No attempt has failed since the last reset: the moment to log an outage once.
    bool fresh() const { return next_ == initial_; }

private:
    duration initial_;
    duration cap_;
    duration next_;
};

}  // namespace bidding
