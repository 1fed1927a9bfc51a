#include <bidding/outbound_queue.hpp>

#include <cassert>

namespace bidding {

bool outbound_queue::push(shared_text m, clock::time_point since) {
    if (bytes_ + m->size() > max_bytes_) {
        return false;
    }
    bytes_ += m->size();
    waiting_.push_back(entry{std::move(m), since});
    return true;
}

const std::string& outbound_queue::start_write() {
    assert(!writing() && has_waiting());
    in_flight_ = std::move(waiting_.front());
    waiting_.pop_front();
    return *in_flight_.text;
}

void outbound_queue::finish_write() {
    if (in_flight_.text) {
        bytes_ -= in_flight_.text->size();
        in_flight_.text.reset();
    }
}

void outbound_queue::drop_waiting() {
    waiting_.clear();
    bytes_ = in_flight_.text ? in_flight_.text->size() : 0;
}

std::optional<outbound_queue::clock::time_point> outbound_queue::oldest() const {
    if (writing()) {
        return in_flight_.since;
    }
    if (!waiting_.empty()) {
        return waiting_.front().since;
    }
    return std::nullopt;
}

}  // namespace bidding
