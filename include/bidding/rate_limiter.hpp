#pragma once
// A token bucket per connection: at most `rate` bids per second on average, `burst` at once.
// Pure (time is passed in), so it is tested without clocks.
#include <chrono>

namespace bidding {

class rate_limiter {
public:
    using clock = std::chrono::steady_clock;

    // rate <= 0 disables the limit.
    rate_limiter(double rate, double burst) : rate_(rate), burst_(burst), tokens_(burst) {}

    // True when one more bid may go through at `now` (and takes its token).
    bool allow(clock::time_point now) {
        if (rate_ <= 0) {
            return true;
        }
        if (started_) {
            const std::chrono::duration<double> elapsed = now - last_;
            tokens_ = std::min(burst_, tokens_ + elapsed.count() * rate_);
        }
        started_ = true;
        last_ = now;
        if (tokens_ < 1.0) {
            return false;
        }
        tokens_ -= 1.0;
        return true;
    }

private:
    double rate_;
    double burst_;
    double tokens_;
    bool started_{false};
    clock::time_point last_{};
};

}  // namespace bidding
