#include <bidding/outbound_queue.hpp>

#include <algorithm>
#include <cassert>

namespace bidding {

bool outbound_queue::push(shared_text payload, clock::time_point since, ws_opcode opcode, bool beyond_bound) {
    frame f{std::move(payload), {}, since};
    f.header = make_frame_header(opcode, f.payload->size());
    if (!beyond_bound && bytes_ + size_of(f) > max_bytes_) {
        return false;
    }
    bytes_ += size_of(f);
    waiting_.push_back(std::move(f));
    return true;
}

bool outbound_queue::push_control(shared_text payload, ws_opcode opcode, clock::time_point since) {
    frame f{std::move(payload), {}, since};
    f.header = make_frame_header(opcode, f.payload->size());
    if (bytes_ + size_of(f) > max_bytes_) {
        return false;
    }
    bytes_ += size_of(f);
    // After the control frames already waiting, before any data frame.
    waiting_.insert(waiting_.begin() + static_cast<std::ptrdiff_t>(controls_), std::move(f));
    ++controls_;
    return true;
}

const std::vector<outbound_queue::frame>& outbound_queue::start_write(std::size_t max_frames, std::size_t max_bytes) {
    assert(!writing() && has_waiting());
    std::size_t taken_bytes = 0;
    while (!waiting_.empty() && in_flight_.size() < max_frames &&
           (in_flight_.empty() || taken_bytes + size_of(waiting_.front()) <= max_bytes)) {
        taken_bytes += size_of(waiting_.front());
        in_flight_.push_back(std::move(waiting_.front()));
        waiting_.pop_front();
        if (controls_ > 0) {
            --controls_;
        }
    }
    return in_flight_;
}

void outbound_queue::finish_write() {
    for (const auto& f : in_flight_) {
        bytes_ -= size_of(f);
    }
    in_flight_.clear();
}

void outbound_queue::drop_waiting() {
    waiting_.clear();
    controls_ = 0;
    bytes_ = 0;
    for (const auto& f : in_flight_) {
        bytes_ += size_of(f);
    }
}

std::optional<outbound_queue::clock::time_point> outbound_queue::oldest() const {
    std::optional<clock::time_point> out;
    for (const auto& f : in_flight_) {
        out = out ? std::min(*out, f.since) : f.since;
    }
    // Control frames jump the queue: the oldest data frame is the first one after them.
    for (std::size_t i = 0; i < waiting_.size() && i <= controls_; ++i) {
        out = out ? std::min(*out, waiting_[i].since) : waiting_[i].since;
    }
    return out;
}

}  // namespace bidding
