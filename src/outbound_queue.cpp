#include <bidding/outbound_queue.hpp>

#include <cassert>

namespace bidding {

bool outbound_queue::push(shared_text m) {
    if (bytes_ + m->size() > max_bytes_) {
        return false;
    }
    bytes_ += m->size();
    waiting_.push_back(std::move(m));
    return true;
}

const std::string& outbound_queue::start_write() {
    assert(!writing() && has_waiting());
    in_flight_ = std::move(waiting_.front());
    waiting_.pop_front();
    return *in_flight_;
}

void outbound_queue::finish_write() {
    if (in_flight_) {
        bytes_ -= in_flight_->size();
        in_flight_.reset();
    }
}

void outbound_queue::drop_waiting() {
    waiting_.clear();
    bytes_ = in_flight_ ? in_flight_->size() : 0;
}

}  // namespace bidding
