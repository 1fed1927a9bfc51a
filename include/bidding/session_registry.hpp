#pragma once
// Which sessions follow which auction on this pod, and the order in which each auction's
// accepted bids reach them. One room per auction with at least one session: its sessions
// (non-owning: a session joins after its handshake and leaves in its destructor) and its
// auction_feed. Everything a room delivers is posted to the sessions under the room's lock,
// so every session receives an auction's messages in the feed's order.
#include <bidding/auction_feed.hpp>
#include <bidding/fanout.hpp>
#include <bidding/fanout_load.hpp>
#include <bidding/feed_subscriber.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace bidding {

class session_registry {
public:
    struct hooks {
        std::function<void(auction_id)> first_joined;  // subscribe to the auction's channel
        std::function<void(auction_id)> last_left;     // unsubscribe
        // Read the auction's history after `after_seq` from Postgres (at most `limit` rows,
        // ascending) and hand it to fill_done, or call fill_failed.
        std::function<void(auction_id, seq_t after_seq, std::size_t limit)> read_after;
        // This pod's fan-out of the auction is behind: ask the other pods to pause its bids
        // (called at most every `signal_every` while it lasts).
        std::function<void(auction_id)> behind;
    };

    static constexpr std::size_t fill_limit = 1000;
    static constexpr std::chrono::milliseconds signal_every{100};

    // `high_water`: bytes per session not yet taken by the sessions above which an auction's
    // fan-out is behind; `max_lag`: see fanout_load.
    explicit session_registry(std::int64_t high_water = 128 * 1024,
                              std::chrono::milliseconds max_lag = std::chrono::milliseconds(500))
        : high_water_(high_water), max_lag_(max_lag) {}

    void set_hooks(hooks h);

    // The session's share of the auction's fan-out backlog is counted in the returned load.
    std::shared_ptr<fanout_load> join(auction_id id, const std::shared_ptr<feed_subscriber>& session);
    void leave(auction_id id, const feed_subscriber* session);

    // A session's snapshot ended at `last_seq` (see auction_feed::baseline).
    void baseline(auction_id id, seq_t last_seq);
    // Accepted bids of one auction from the local bid path or from Redis.
    void publish(auction_id id, std::vector<feed_event> events);
    void fill_done(auction_id id, const std::vector<feed_event>& rows, bool complete);
    void fill_failed(auction_id id);
    // Check Postgres for what this pod may have missed of one auction, or of all of them.
    void resync(auction_id id);
    void resync_all();

    // Another pod is behind on this auction: refuse its bids here until `until`.
    void hold(auction_id id, fanout_load::clock::time_point until);

    // bid_closed to every session of the auction, which then closes with 4003.
    void close_auction(auction_id id, const shared_text& message);
    // server_shutdown to every session, which then closes with 1012.
    void shutdown_all(const shared_text& message);

    std::vector<auction_id> auctions() const;
    // Connections per served auction, for /metrics.
    std::vector<std::pair<auction_id, std::size_t>> room_sizes() const;
    std::size_t size() const;

private:
    struct room {
        std::mutex mutex;
        std::unordered_map<const feed_subscriber*, std::weak_ptr<feed_subscriber>> sessions;
        auction_feed feed;
        std::shared_ptr<fanout_load> load;
    };

    std::shared_ptr<room> find(auction_id id) const;
    // Runs `step` on the room's feed under its lock, delivers what it returns, and starts a
    // read from Postgres when the feed wants one.
    template <class Step>
    void advance(auction_id id, Step&& step);

    const std::int64_t high_water_;
    const std::chrono::milliseconds max_lag_;
    hooks hooks_;
    mutable std::mutex mutex_;
    std::unordered_map<auction_id, std::shared_ptr<room>> rooms_;
    std::size_t count_{0};
};

}  // namespace bidding
