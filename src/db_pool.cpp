#include <bidding/db_pool.hpp>

#include <spdlog/spdlog.h>

namespace bidding {

db_pool::db_pool(std::string conninfo, std::size_t threads, std::atomic<std::uint64_t>* reconnects)
    : conninfo_(std::move(conninfo)), reconnects_(reconnects) {
    threads_.reserve(threads);
    for (std::size_t i = 0; i < threads; ++i) {
        threads_.emplace_back([this, i] { run(i); });
    }
}

db_pool::~db_pool() { stop(); }

void db_pool::post(job j) {
    {
        std::lock_guard lock(mutex_);
        if (stopping_) {
            return;
        }
        jobs_.push_back(std::move(j));
    }
    ready_.notify_one();
}

void db_pool::stop() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    ready_.notify_all();
    for (auto& t : threads_) {
        if (t.joinable()) {
            t.join();
        }
    }
    threads_.clear();
}

std::size_t db_pool::queued() const {
    std::lock_guard lock(mutex_);
    return jobs_.size();
}

void db_pool::run(std::size_t index) {
    postgres_store store(conninfo_, reconnects_);
    for (;;) {
        job j;
        {
            std::unique_lock lock(mutex_);
            ready_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
            if (jobs_.empty()) {
                return;  // stopping, and every queued job has run
            }
            j = std::move(jobs_.front());
            jobs_.pop_front();
        }
        try {
            j(store);
        } catch (const std::exception& e) {
            // Jobs handle their own expected failures; anything here is a bug worth seeing.
            spdlog::error("database job failed on worker {}: {}", index, e.what());
        }
    }
}

}  // namespace bidding
