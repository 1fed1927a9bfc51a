#pragma once
// The messages waiting to go out on one socket, bounded in bytes. Pure: the session owns one
// and runs it on its strand. The message being written is held apart from the waiting ones, so
// that dropping what waits (a slow consumer, a close) never frees the buffer of the write in
// flight: clearing one shared deque while its front was being written, then popping the empty
// deque when that write completed, is what crashed pods under load.
//
// Each message carries when it started to wait (for a new_bid: when the pod handed it to its
// sessions), so the session knows how late its client is: the age of the oldest message still
// waiting or being written.
#include <bidding/fanout.hpp>

#include <chrono>
#include <cstddef>
#include <deque>
#include <optional>

namespace bidding {

class outbound_queue {
public:
    using clock = std::chrono::steady_clock;

    explicit outbound_queue(std::size_t max_bytes) : max_bytes_(max_bytes) {}

    // Queues `m`, waiting since `since`; false (nothing queued) when the waiting and in-flight
    // bytes would exceed the bound.
    bool push(shared_text m, clock::time_point since);

    bool writing() const { return in_flight_.text != nullptr; }
    bool has_waiting() const { return !waiting_.empty(); }

    // Moves the oldest waiting message into flight and returns it; it stays alive until
    // finish_write(). Requires !writing() && has_waiting().
    const std::string& start_write();
    // The write in flight completed or failed: releases its message.
    void finish_write();

    // Forgets the waiting messages; the one in flight (if any) stays until finish_write().
    void drop_waiting();

    std::size_t bytes() const { return bytes_; }
    std::size_t max_bytes() const { return max_bytes_; }
    // Since when the oldest message not yet written has waited; nullopt when nothing waits.
    std::optional<clock::time_point> oldest() const;

private:
    struct entry {
        shared_text text;
        clock::time_point since;
    };

    std::size_t max_bytes_;
    std::size_t bytes_{0};  // waiting + in flight
    std::deque<entry> waiting_;
    entry in_flight_;
};

}  // namespace bidding
