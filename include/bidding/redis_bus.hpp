#pragma once
// Fan-out between pods through Redis pub/sub: one connection that publishes and one that
// subscribes, per process, each on its own thread (hiredis is blocking), so the socket threads
// only ever enqueue. What travels, and how it is signed, is bus_codec's.
//
// Both connections reconnect with capped exponential backoff, and every reply has a deadline
// (REDIS_TIMEOUT): the subscriber pings twice a second, and a ping unanswered in time counts as a
// lost connection, so a frozen Redis is noticed as fast as a dead one. What was published while
// Redis was away is recovered by the pods from Postgres (see auction_feed): after reconnecting,
// the subscriber resubscribes (and the registry re-reads every served auction), and the
// publisher sends again the newest bid it had to drop per auction, which reveals the gap to
// pods that were subscribed all along.
#include <bidding/auction_feed.hpp>
#include <bidding/bus_codec.hpp>
#include <bidding/config.hpp>
#include <bidding/metrics.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

struct redisContext;  // hiredis

namespace bidding {

class redis_bus {
public:
    struct handlers {
        // Accepted bids of one auction, in the order they arrived (a burst is passed at once).
        std::function<void(auction_id, std::vector<feed_event>)> on_bids;
        std::function<void(auction_id, shared_text)> on_close;
        // The subscription to this auction's channel is in effect (again): anything published
        // before that may have been missed.
        std::function<void(auction_id)> on_subscribed;
        // Another pod asks for a pause of the auction's bids.
        std::function<void(auction_id, std::chrono::milliseconds)> on_hold;
    };

    struct settings {
        redis_endpoint endpoint;
        std::chrono::milliseconds timeout{2000};        // connect, and every reply
        std::chrono::milliseconds ping_interval{500};  // the subscriber's liveness check: a frozen Redis is noticed within this + timeout
    };

    // At most this many messages wait to be published; beyond it they are dropped (and
    // recovered from Postgres by the other pods).
    static constexpr std::size_t max_queued = 100'000;

    // `fanout_latency`, when given, observes commit -> arrival for every bid received.
    redis_bus(settings s, bus_codec codec, handlers h, histogram* fanout_latency = nullptr);
    ~redis_bus();
    redis_bus(const redis_bus&) = delete;
    redis_bus& operator=(const redis_bus&) = delete;

    void start();
    // Publishes what is queued (for at most `flush_timeout`), then closes both connections.
    void stop(std::chrono::milliseconds flush_timeout = std::chrono::milliseconds(2000));

    void publish_bid(auction_id id, const feed_event& event, std::int64_t committed_us);
    void publish_close(auction_id id, const std::string& bid_closed_json);
    void publish_hold(auction_id id, std::chrono::milliseconds duration);
    void subscribe(auction_id id);
    void unsubscribe(auction_id id);

    bool connected() const { return publisher_up_ && subscriber_up_; }
    std::uint64_t reconnects() const { return reconnects_; }
    // Messages on our channels that failed the signature (another program, or another deployment).
    std::uint64_t rejected() const { return rejected_; }

private:
    struct outgoing {
        auction_id id;
        std::string payload;
        bool bid;  // the newest dropped bid of an auction is sent again after a reconnect
    };

    void enqueue(outgoing m);
    void run_publisher();
    void run_subscriber();
    void subscriber_session(::redisContext* c);
    void handle_reply(void* reply, std::vector<std::pair<auction_id, std::vector<feed_event>>>& bids, bool& pong);
    void wake_subscriber();
    void backoff_wait(std::chrono::milliseconds& delay, std::mutex& m, std::condition_variable& cv);
    void remember_dropped(std::deque<outgoing>& messages);

    settings settings_;
    bus_codec codec_;
    handlers handlers_;
    histogram* fanout_latency_;
    std::atomic<bool> stopping_{false};
    std::atomic<bool> publisher_up_{false};
    std::atomic<bool> subscriber_up_{false};
    std::atomic<std::uint64_t> reconnects_{0};
    std::atomic<std::uint64_t> rejected_{0};

    std::mutex pub_mutex_;
    std::condition_variable pub_ready_;
    std::deque<outgoing> pub_queue_;
    std::map<auction_id, outgoing> dropped_;  // the newest bid per auction that could not be published
    std::chrono::steady_clock::time_point flush_deadline_{};
    std::thread publisher_;

    std::mutex sub_mutex_;
    std::condition_variable sub_cv_;  // only for backoff waits
    std::set<auction_id> wanted_;
    std::deque<std::pair<bool, auction_id>> sub_ops_;  // true: subscribe
    int wake_fd_{-1};
    std::chrono::steady_clock::time_point last_rejection_log_{};
    std::thread subscriber_;
};

// One PUBLISH on a short-lived connection, for the command line (`bid close`). Returns false
// (and logs) when Redis cannot be reached.
bool publish_once(const redis_endpoint& endpoint, const std::string& channel, const std::string& payload);

}  // namespace bidding
