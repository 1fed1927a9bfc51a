#pragma once
// The time the server tells its clients (initial_state and ping carry it as server_time): this
// process's clock corrected by its measured offset to the database's clock, the one every bid
// and every close is decided by. The auction closer keeps the offset current.
#include <bidding/timestamp.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>

namespace bidding {

class server_clock {
public:
    timestamp now() const {
        const auto local = std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now());
        return local + std::chrono::milliseconds{offset_ms_.load(std::memory_order_relaxed)};
    }
    // The database's clock minus this process's.
    void set_offset(std::chrono::milliseconds offset) { offset_ms_.store(offset.count(), std::memory_order_relaxed); }
    std::chrono::milliseconds offset() const { return std::chrono::milliseconds{offset_ms_.load(std::memory_order_relaxed)}; }

private:
    std::atomic<std::int64_t> offset_ms_{0};
};

}  // namespace bidding
