#pragma once
// Finds out, in the background, what became of bid transactions whose COMMIT was cut and whose
// outcome was still unknown when their bidders had to be answered ("in_doubt"). It asks the
// server (txid_status) until it knows; a committed transaction's bids are then fanned out as if
// just accepted, so they appear in every feed; an aborted one is only logged.
#include <bidding/fanout.hpp>
#include <bidding/auction_store.hpp>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace bidding {

class commit_resolver {
public:
    using clock = std::chrono::steady_clock;
    using committed_fn = std::function<void(auction_id, std::vector<fanout_message>)>;

    struct settings {
        std::chrono::milliseconds interval{200};     // between rounds of questions
        std::chrono::milliseconds query_timeout{2000};
        std::chrono::minutes give_up{10};
        std::size_t max_pending{1024};  // beyond it the oldest are dropped (the feeds still find them)
    };

    // `store` is used on the resolver's own thread only.
    commit_resolver(std::unique_ptr<auction_store> store, settings s, committed_fn committed);
    ~commit_resolver();
    commit_resolver(const commit_resolver&) = delete;
    commit_resolver& operator=(const commit_resolver&) = delete;

    void add(auction_id id, std::int64_t txid, std::vector<fanout_message> accepted);
    void stop();

private:
    struct pending {
        auction_id id;
        std::int64_t txid;
        std::vector<fanout_message> accepted;
        clock::time_point since;
    };
    void run();

    std::unique_ptr<auction_store> store_;
    settings settings_;
    committed_fn committed_;
    std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<pending> pending_;
    bool stopping_{false};
    std::thread thread_;
};

}  // namespace bidding
