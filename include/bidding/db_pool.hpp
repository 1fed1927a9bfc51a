#pragma once
// A small pool of threads, each with its own store (a Postgres connection), that runs the
// blocking database work so that the socket threads never block. Jobs report back by posting to
// the caller's strand.
//
// Bounded and deadline-bound: at most `queue_limit` jobs wait; every job carries a deadline,
// by which it has run (the watchdog cuts a call still blocked then) or has been refused. While
// Postgres is known to be unreachable (a call failed at the connection level) jobs are refused
// at once, but for one probe every `probe_interval` that finds out whether it is back; this is
// how a frozen or vanished database gives fast answers instead of a queue of 2-second waits.
#include <bidding/connection_watchdog.hpp>
#include <bidding/auction_store.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <optional>
#include <mutex>
#include <thread>
#include <vector>

namespace bidding {

class db_pool {
public:
    using clock = std::chrono::steady_clock;

    // Why a job did not run.
    enum class refusal {
        expired,      // its deadline passed while it waited
        unavailable,  // Postgres is known to be unreachable right now
        stopping,     // the pool is shutting down
    };

    // Bids are the service: their jobs start before waiting reads (snapshots, gap fills, the
    // API), so a burst of new connections does not delay every bid on the pod. Reads are not
    // starved: one starts after every `bids_per_read` bid jobs while reads wait.
    enum class priority { read, bid };
    static constexpr int bids_per_read = 8;

    struct job {
        std::function<void(auction_store&)> run;
        std::function<void(refusal)> refused;  // optional; called on a pool thread
        clock::time_point deadline;
        // Optional; called on the pool thread after `run`, once the pool has counted what the
        // job learned of the database's health (so work it starts sees the new view).
        std::function<void()> then{};
        priority kind{priority::read};
    };

    struct settings {
        std::size_t threads{4};
        std::size_t queue_limit{4096};
        std::chrono::milliseconds probe_interval{250};
    };

    // Each thread makes its store with `make_store`, given the pool's watchdog.
    db_pool(store_factory make_store, settings s);
    ~db_pool();
    db_pool(const db_pool&) = delete;
    db_pool& operator=(const db_pool&) = delete;

    // Queues `j` by its priority; jobs of one priority start in FIFO order. False, and nothing
    // is called, when `queue_limit` jobs of its priority wait or the pool is stopping: the caller answers
    // "overloaded" or "unavailable" itself.
    bool post(job j);

    // Finishes the queued jobs (each within its deadline), then joins the threads.
    void stop();

    std::size_t queued() const;  // of both priorities
    // False while Postgres is known to be unreachable.
    bool healthy() const { return healthy_.load(std::memory_order_relaxed); }
    connection_watchdog& watchdog() { return watchdog_; }

private:
    void run(std::size_t index);

    store_factory make_store_;
    settings settings_;
    connection_watchdog watchdog_;
    std::atomic<bool> healthy_{true};
    mutable std::mutex mutex_;
    std::condition_variable ready_;
    std::deque<job> reads_;
    std::deque<job> bids_;
    int bids_in_a_row_{0};
    bool stopping_{false};
    bool probing_{false};
    clock::time_point retry_at_{};
    std::vector<std::thread> threads_;
};

}  // namespace bidding
