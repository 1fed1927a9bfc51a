#pragma once
// A small pool of threads, each with its own Postgres connection, that runs the blocking
// database work so that the socket threads never block. Jobs report back by posting to
// the caller's strand.
#include <bidding/postgres_store.hpp>

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace bidding {

class db_pool {
public:
    using job = std::function<void(postgres_store&)>;

    db_pool(std::string conninfo, std::size_t threads, std::atomic<std::uint64_t>* reconnects = nullptr);
    ~db_pool();
    db_pool(const db_pool&) = delete;
    db_pool& operator=(const db_pool&) = delete;

    // Runs `j` on a pool thread. Jobs start in FIFO order. Jobs posted after stop() are dropped.
    void post(job j);

    // Finishes the queued jobs, then joins the threads.
    void stop();

    std::size_t queued() const;

private:
    void run(std::size_t index);

    std::string conninfo_;
    std::atomic<std::uint64_t>* reconnects_;
    mutable std::mutex mutex_;
    std::condition_variable ready_;
    std::deque<job> jobs_;
    bool stopping_{false};
    std::vector<std::thread> threads_;
};

}  // namespace bidding
