#include <bidding/commit_resolver.hpp>

#include <spdlog/spdlog.h>

namespace bidding {

commit_resolver::commit_resolver(std::unique_ptr<auction_store> store, settings s, committed_fn committed)
    : store_(std::move(store)), settings_(s), committed_(std::move(committed)), thread_([this] { run(); }) {}

commit_resolver::~commit_resolver() { stop(); }

void commit_resolver::add(auction_id id, std::int64_t txid, std::vector<fanout_message> accepted) {
    {
        std::lock_guard lock(mutex_);
        if (pending_.size() >= settings_.max_pending) {
            spdlog::warn("too many transactions in doubt: no longer following transaction {}", pending_.front().txid);
            pending_.pop_front();
        }
        pending_.push_back(pending{id, txid, std::move(accepted), clock::now()});
    }
    wake_.notify_one();
}

void commit_resolver::stop() {
    {
        std::lock_guard lock(mutex_);
        if (stopping_) {
            return;
        }
        stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) {
        thread_.join();
    }
}

void commit_resolver::run() {
    auto& store = *store_;
    std::unique_lock lock(mutex_);
    while (!stopping_) {
        if (pending_.empty()) {
            wake_.wait(lock, [this] { return stopping_ || !pending_.empty(); });
            continue;
        }
        auto round = std::move(pending_);
        pending_.clear();
        lock.unlock();
        std::deque<pending> unresolved;
        for (auto& p : round) {
            commit_status status = commit_status::unknown;
            try {
                store.set_deadline(clock::now() + settings_.query_timeout);
                status = store.transaction_status(p.txid);
            } catch (const store_unavailable& e) {
                spdlog::debug("cannot ask about transaction {} yet: {}", p.txid, e.what());
            }
            if (status == commit_status::committed) {
                spdlog::warn("transaction {} (auction {}) was in doubt and did commit: publishing its {} bid(s)", p.txid,
                             p.id, p.accepted.size());
                committed_(p.id, std::move(p.accepted));
            } else if (status == commit_status::aborted) {
                spdlog::warn("transaction {} (auction {}) was in doubt and did not commit: nothing was stored", p.txid,
                             p.id);
            } else if (clock::now() - p.since > settings_.give_up) {
                spdlog::error("transaction {} (auction {}): outcome still unknown, giving up", p.txid, p.id);
            } else {
                unresolved.push_back(std::move(p));
            }
        }
        lock.lock();
        for (auto it = unresolved.rbegin(); it != unresolved.rend(); ++it) {
            pending_.push_front(std::move(*it));
        }
        if (!pending_.empty()) {
            wake_.wait_for(lock, settings_.interval, [this] { return stopping_; });
        }
    }
}

}  // namespace bidding
