#pragma once
// The frames waiting to go out on one socket, bounded in bytes. Pure: the session owns one and
// runs it on its strand. The frames being written are held apart from the waiting ones, so that
// dropping what waits (a slow consumer, a close) never frees a buffer of the write in flight:
// clearing one shared deque while its front was being written, then popping the empty deque when
// that write completed, is what crashed pods under load.
//
// Writes are gathered: start_write() takes every waiting frame (up to a limit) into one write.
// Each frame carries when it started to wait (for a new_bid: when the pod handed it to its
// sessions), so the session knows how late its client is: the age of the oldest frame not yet
// written.
#include <bidding/fanout.hpp>
#include <bidding/ws_frames.hpp>

#include <chrono>
#include <cstddef>
#include <deque>
#include <optional>
#include <vector>

namespace bidding {

class outbound_queue {
public:
    using clock = std::chrono::steady_clock;

    struct frame {
        shared_text payload;
        frame_header header;
        clock::time_point since;
    };

    explicit outbound_queue(std::size_t max_bytes) : max_bytes_(max_bytes) {}

    // Queues a frame after the waiting ones, waiting since `since`; false (nothing queued) when
    // the waiting and in-flight bytes would exceed the bound, unless `beyond_bound` (a close).
    bool push(shared_text payload, clock::time_point since, ws_opcode opcode = ws_opcode::text,
              bool beyond_bound = false);
    // A control frame (pong, close) goes ahead of the waiting data frames (after the write in
    // flight); bounded the same way.
    bool push_control(shared_text payload, ws_opcode opcode, clock::time_point since);

    bool writing() const { return !in_flight_.empty(); }
    bool has_waiting() const { return !waiting_.empty(); }

    // Moves the oldest waiting frames into flight, at most `max_frames` of them and (beyond the
    // first) at most `max_bytes` in all, and returns them; they stay alive until finish_write().
    // Requires !writing() && has_waiting().
    const std::vector<frame>& start_write(std::size_t max_frames, std::size_t max_bytes);
    // The write in flight completed or failed: releases its frames.
    void finish_write();

    // Forgets the waiting frames; those in flight stay until finish_write().
    void drop_waiting();

    std::size_t bytes() const { return bytes_; }
    std::size_t max_bytes() const { return max_bytes_; }
    // Since when the oldest frame not yet written has waited; nullopt when nothing waits.
    std::optional<clock::time_point> oldest() const;

private:
    static std::size_t size_of(const frame& f) { return f.payload->size() + f.header.size; }

    std::size_t max_bytes_;
    std::size_t bytes_{0};  // waiting + in flight
    std::size_t controls_{0};  // control frames at the front of waiting_
    std::deque<frame> waiting_;
    std::vector<frame> in_flight_;
};

}  // namespace bidding
