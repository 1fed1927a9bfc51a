#include <bidding/db_pool.hpp>

#include <spdlog/spdlog.h>

namespace bidding {

db_pool::db_pool(store_factory make_store, settings s) : make_store_(std::move(make_store)), settings_(s) {
    threads_.reserve(settings_.threads);
    for (std::size_t i = 0; i < settings_.threads; ++i) {
        threads_.emplace_back([this, i] { run(i); });
    }
}

db_pool::~db_pool() { stop(); }

bool db_pool::post(job j) {
    {
        std::lock_guard lock(mutex_);
        auto& queue = j.kind == priority::bid ? bids_ : reads_;
        if (stopping_ || queue.size() >= settings_.queue_limit) {
            return false;
        }
        queue.push_back(std::move(j));
    }
    ready_.notify_one();
    return true;
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
    return reads_.size() + bids_.size();
}

void db_pool::run(std::size_t index) {
    const auto owned = make_store_(&watchdog_);
    auto& store = *owned;
    for (;;) {
        job j;
        std::optional<refusal> refused;
        bool probe = false;
        {
            std::unique_lock lock(mutex_);
            ready_.wait(lock, [this] { return stopping_ || !reads_.empty() || !bids_.empty(); });
            if (reads_.empty() && bids_.empty()) {
                return;  // stopping, and every queued job has run
            }
            const bool bid = !bids_.empty() && (reads_.empty() || bids_in_a_row_ < bids_per_read);
            auto& queue = bid ? bids_ : reads_;
            bids_in_a_row_ = bid ? bids_in_a_row_ + 1 : 0;
            j = std::move(queue.front());
            queue.pop_front();
            const auto now = clock::now();
            if (now >= j.deadline) {
                refused = refusal::expired;
            } else if (!healthy_) {
                if (probing_ || now < retry_at_) {
                    refused = refusal::unavailable;
                } else {
                    probing_ = probe = true;  // this job finds out whether Postgres is back
                }
            }
        }
        if (refused) {
            if (j.refused) {
                try {
                    j.refused(*refused);
                } catch (const std::exception& e) {
                    spdlog::error("database job refusal failed on worker {}: {}", index, e.what());
                }
            }
            continue;
        }
        const auto failures = store.connection_failures();
        store.set_deadline(j.deadline);
        try {
            j.run(store);
        } catch (const std::exception& e) {
            // Jobs handle their own expected failures; anything here is a bug worth seeing.
            spdlog::error("database job failed on worker {}: {}", index, e.what());
        }
        store.set_deadline(clock::time_point::max());
        const bool failed = store.connection_failures() != failures;
        {
            std::lock_guard lock(mutex_);
            if (probe) {
                probing_ = false;
            }
            if (failed) {
                if (healthy_.exchange(false)) {
                    spdlog::warn("Postgres unreachable: database work is refused until it answers again");
                }
                retry_at_ = clock::now() + settings_.probe_interval;
            } else if (!healthy_.exchange(true)) {
                spdlog::info("Postgres answers again");
            }
        }
        if (j.then) {
            try {
                j.then();
            } catch (const std::exception& e) {
                spdlog::error("database job continuation failed on worker {}: {}", index, e.what());
            }
        }
    }
}

}  // namespace bidding
