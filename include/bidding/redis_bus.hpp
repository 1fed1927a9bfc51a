#pragma once
// Fan-out between pods through Redis pub/sub: one connection that publishes and one that
// subscribes, per process, each on its own thread (hiredis is blocking), so the socket threads
// only ever enqueue. Channel per auction: "bidding:auction:{id}". Both connections reconnect
// with capped exponential backoff; what was published while Redis was away is recovered by
// the pods from Postgres (see auction_feed), so a failed publish is dropped, not retried.
#include <bidding/auction_feed.hpp>
#include <bidding/config.hpp>
#include <bidding/metrics.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <variant>
#include <vector>

struct redisContext;  // hiredis

namespace bidding {

std::string auction_channel(auction_id id);

// What travels on a channel: a header line, then the client message unchanged, so receivers
// forward the bytes without re-serializing them.
//   "bid PREV SEQ COMMITTED_US\n{new_bid json}"      "close\n{bid_closed json}"
// COMMITTED_US (commit time, microseconds since the Unix epoch) measures fan-out latency.
struct bus_bid {
    feed_event event;
    std::int64_t committed_us{0};
};
struct bus_close {
    shared_text text;
};
using bus_message = std::variant<bus_bid, bus_close>;

std::string encode_bid(const feed_event& event, std::int64_t committed_us);
std::string encode_close(std::string_view bid_closed_json);
// nullopt for a payload of another form (ignored, logged).
std::optional<bus_message> decode_bus_message(std::string_view payload);
// "bidding:auction:42" -> 42
std::optional<auction_id> parse_auction_channel(std::string_view channel);

class redis_bus {
public:
    struct handlers {
        // Accepted bids of one auction, in the order they arrived (a burst is passed at once).
        std::function<void(auction_id, std::vector<feed_event>)> on_bids;
        std::function<void(auction_id, shared_text)> on_close;
        // The subscription to this auction's channel is in effect (again): anything published
        // before that may have been missed.
        std::function<void(auction_id)> on_subscribed;
    };

    // At most this many messages wait to be published; beyond it they are dropped (and
    // recovered from Postgres by the other pods).
    static constexpr std::size_t max_queued = 100'000;

    // `fanout_latency`, when given, observes commit -> arrival for every bid received.
    redis_bus(redis_endpoint endpoint, handlers h, histogram* fanout_latency = nullptr);
    ~redis_bus();
    redis_bus(const redis_bus&) = delete;
    redis_bus& operator=(const redis_bus&) = delete;

    void start();
    // Publishes what is queued (for at most `flush_timeout`), then closes both connections.
    void stop(std::chrono::milliseconds flush_timeout = std::chrono::milliseconds(2000));

    void publish(auction_id id, std::string payload);
    void subscribe(auction_id id);
    void unsubscribe(auction_id id);

    bool connected() const { return publisher_up_ && subscriber_up_; }
    std::uint64_t reconnects() const { return reconnects_; }

private:
    void run_publisher();
    void run_subscriber();
    void subscriber_session(::redisContext* c);
    void wake_subscriber();
    void backoff_wait(std::chrono::milliseconds& delay, std::mutex& m, std::condition_variable& cv);

    redis_endpoint endpoint_;
    handlers handlers_;
    histogram* fanout_latency_;
    std::atomic<bool> stopping_{false};
    std::atomic<bool> publisher_up_{false};
    std::atomic<bool> subscriber_up_{false};
    std::atomic<std::uint64_t> reconnects_{0};

    std::mutex pub_mutex_;
    std::condition_variable pub_ready_;
    std::deque<std::pair<std::string, std::string>> pub_queue_;  // channel, payload
    std::chrono::steady_clock::time_point flush_deadline_{};
    std::thread publisher_;

    std::mutex sub_mutex_;
    std::condition_variable sub_cv_;  // only for backoff waits
    std::set<auction_id> wanted_;
    std::deque<std::pair<bool, auction_id>> sub_ops_;  // true: subscribe
    int wake_fd_{-1};
    std::thread subscriber_;
};

// One PUBLISH on a short-lived connection, for the command line (`bid close`). Returns false
// (and logs) when Redis cannot be reached.
bool publish_once(const redis_endpoint& endpoint, const std::string& channel, const std::string& payload);

}  // namespace bidding
