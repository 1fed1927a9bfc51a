#pragma once
// In-memory stand-ins for the I/O boundaries, for the services' unit tests: a database that can
// freeze, vanish or lose the outcome of a COMMIT, and a feed subscriber that records what it got.
#include <bidding/auction_store.hpp>
#include <bidding/db_pool.hpp>
#include <bidding/feed_subscriber.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace bidding::testing {

// The shared state of every fake_store: the "server". Its mutex doubles as the row lock.
class fake_database {
public:
    enum class fault {
        none,
        unreachable,  // every call fails to connect
        freeze,       // calls block until their deadline (as if the watchdog cut them)
        in_doubt,     // place_bids stores the bids but the COMMIT's outcome stays unknown
        lost_commit,  // place_bids stores nothing and the COMMIT's outcome stays unknown
    };

    auction add_auction(std::string name, cents initial_price, auction_status status = auction_status::open) {
        std::lock_guard lock(mutex_);
        auction a;
        a.id = next_id_;
        next_id_ = auction_id{next_id_.value() + 1};
        a.name = std::move(name);
        a.status = status;
        a.initial_price = a.current_price = initial_price;
        auctions_[a.id] = row{a, {}};
        return a;
    }

    // A timed auction (docs/timed-auctions.md), judged by this database's clock (set_now).
    auction add_timed_auction(std::string name, cents initial_price, auction_terms terms) {
        auto a = add_auction(std::move(name), initial_price);
        std::lock_guard lock(mutex_);
        auctions_.at(a.id).info.terms = terms;
        return auctions_.at(a.id).info;
    }
    // The database's clock: what decides bids and ends.
    void set_now(timestamp now) {
        std::lock_guard lock(mutex_);
        now_ = now;
    }
    auction info(auction_id id) {
        std::lock_guard lock(mutex_);
        return auctions_.at(id).info;
    }
    // How many times each auction was closed while open (a second close would be a defect).
    int closes(auction_id id) {
        std::lock_guard lock(mutex_);
        return closes_[id];
    }

    void set_fault(fault f) {
        {
            std::lock_guard lock(mutex_);
            fault_ = f;
        }
        changed_.notify_all();
    }
    // What transaction_status says of a transaction left in doubt.
    void resolve(std::int64_t txid, commit_status status) {
        std::lock_guard lock(mutex_);
        txids_[txid] = status;
    }

    std::vector<history_entry> history(auction_id id) {
        std::lock_guard lock(mutex_);
        return auctions_.at(id).history;
    }
    int place_calls() const { return place_calls_.load(); }
    int snapshot_calls() const { return snapshot_calls_.load(); }
    // True once `n` calls are blocked in a freeze (within the timeout).
    bool wait_blocked(int n, std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
        std::unique_lock lock(mutex_);
        return changed_.wait_for(lock, timeout, [&] { return blocked_ >= n; });
    }
    // The largest number of bids decided in one place_bids call.
    std::size_t largest_batch() const { return largest_batch_.load(); }
    // place_bids_many calls (rounds of the bid service), and the most auctions in one.
    int round_calls() const { return round_calls_.load(); }
    std::size_t largest_round() const { return largest_round_.load(); }

private:
    friend class fake_store;
    struct row {
        auction info;
        std::vector<history_entry> history;
    };

    // Throws what a call meets under the current fault; `deadline` bounds a freeze.
    void check(std::unique_lock<std::mutex>& lock, std::chrono::steady_clock::time_point deadline) {
        if (fault_ == fault::unreachable) {
            throw store_unavailable(store_failure::cannot_connect, "fake: connection refused");
        }
        if (fault_ == fault::freeze) {
            ++blocked_;
            changed_.notify_all();
            changed_.wait_until(lock, deadline, [this] { return fault_ != fault::freeze; });
            --blocked_;
            if (fault_ == fault::freeze) {
                throw store_unavailable(store_failure::timed_out, "fake: deadline passed");
            }
        }
    }

    std::mutex mutex_;
    std::condition_variable changed_;
    fault fault_{fault::none};
    int blocked_{0};
    std::map<auction_id, row> auctions_;
    std::map<std::int64_t, commit_status> txids_;
    auction_id next_id_{1};
    seq_t next_seq_{1};
    std::int64_t next_txid_{1000};
    timestamp now_{std::chrono::milliseconds{1'796'000'000'000}};
    std::map<auction_id, int> closes_;
    std::atomic<int> place_calls_{0};
    std::atomic<int> snapshot_calls_{0};
    std::atomic<std::size_t> largest_batch_{0};
    std::atomic<int> round_calls_{0};
    std::atomic<std::size_t> largest_round_{0};
};

class fake_store final : public auction_store {
public:
    explicit fake_store(std::shared_ptr<fake_database> db) : db_(std::move(db)) {}

    static store_factory factory(std::shared_ptr<fake_database> db) {
        return [db](connection_watchdog*) { return std::make_unique<fake_store>(db); };
    }

    void set_deadline(clock::time_point deadline) override { deadline_ = deadline; }

    using auction_store::load_snapshot;
    std::optional<auction_snapshot> load_snapshot(auction_id id, std::size_t history_limit,
                                                  std::optional<seq_t> since) override {
        ++db_->snapshot_calls_;
        auto lock = enter();
        const auto it = db_->auctions_.find(id);
        if (it == db_->auctions_.end()) {
            return std::nullopt;
        }
        auction_snapshot s{it->second.info, {}, false};
        for (auto h = it->second.history.rbegin(); h != it->second.history.rend(); ++h) {
            if ((since && h->seq <= *since) || s.entries.size() == history_limit) {
                s.truncated = since && h->seq > *since;
                break;
            }
            s.entries.push_back(*h);
        }
        if (since) {
            std::reverse(s.entries.begin(), s.entries.end());
        }
        return s;
    }

    std::vector<history_entry> history_after(auction_id id, seq_t after_seq, std::size_t limit) override {
        auto lock = enter();
        std::vector<history_entry> rows;
        for (const auto& h : db_->auctions_.at(id).history) {
            if (h.seq > after_seq && rows.size() < limit) {
                rows.push_back(h);
            }
        }
        return rows;
    }

    // Counted, then each group on its own (the default: the fake has no transactions).
    std::vector<placement> place_bids_many(std::span<const auction_bids> groups,
                                           clock::time_point resolve_until) override {
        ++db_->round_calls_;
        db_->largest_round_ = std::max(db_->largest_round_.load(), groups.size());
        return auction_store::place_bids_many(groups, resolve_until);
    }

    using auction_store::place_bids;
    placement place_bids(auction_id id, std::span<const bid_request> bids, clock::time_point) override {
        auto lock = enter();
        ++db_->place_calls_;
        db_->largest_batch_ = std::max(db_->largest_batch_.load(), bids.size());
        placement result;
        const auto it = db_->auctions_.find(id);
        if (it == db_->auctions_.end()) {
            result.outcome = placement::result::not_found;
            return result;
        }
        auto& a = it->second;
        const bool lost = db_->fault_ == fake_database::fault::lost_commit;
        auto info = a.info;
        auto history = a.history;
        auto next_seq = db_->next_seq_;
        for (const auto& b : bids) {
            bid_outcome o;
            const auto decision = judge_bid(info.status, info.terms, info.current_price, b.price, db_->now_);
            o.verdict = decision.verdict;
            o.current_price = info.current_price;
            o.min_price = min_price(info.current_price, info.terms.min_increment);
            if (o.verdict == bid_verdict::accepted) {
                o.prev_seq = info.last_seq;
                info.terms.ends_at = decision.ends_at;
                o.entry.seq = next_seq;
                o.entry.bidder = b.name;
                o.entry.price = b.price;
                o.entry.added_at = format_timestamp(db_->now_);
                o.entry.ends_at = decision.ends_at;
                o.entry.min_increment = info.terms.min_increment;
                next_seq = seq_t{next_seq.value() + 1};
                history.push_back(o.entry);
                info.current_price = b.price;
                info.last_seq = o.entry.seq;
                info.leader = b.name;
            }
            result.bids.push_back(o);
        }
        if (!lost) {
            a.info = info;
            a.history = std::move(history);
            db_->next_seq_ = next_seq;
        }
        if (db_->fault_ == fake_database::fault::in_doubt || lost) {
            result.outcome = placement::result::in_doubt;
            result.txid = db_->next_txid_++;
            db_->txids_[result.txid] = commit_status::in_progress;
        }
        return result;
    }

    commit_status transaction_status(std::int64_t txid) override {
        auto lock = enter();
        const auto it = db_->txids_.find(txid);
        return it == db_->txids_.end() ? commit_status::unknown : it->second;
    }

    auction create_auction(const new_auction& spec) override {
        timestamp now;
        {
            auto lock = enter();
            now = db_->now_;
        }
        auction_terms terms{spec.ends_at, spec.extend_window, spec.extend_by, spec.min_increment};
        if (spec.duration) {
            terms.ends_at = now + *spec.duration;
        }
        if (terms.ends_at && *terms.ends_at <= now) {
            throw end_time_refused("fake: the end has passed");
        }
        return db_->add_timed_auction(spec.name, spec.initial_price, terms);
    }

    close_result close_auction(auction_id id, const close_announcement& announcement) override {
        auto lock = enter();
        return close_locked(id, announcement);
    }

    ended_sweep close_ended_auctions(const close_announcement& announcement, std::size_t limit) override {
        auto lock = enter();
        ended_sweep sweep;
        for (auto& [id, a] : db_->auctions_) {
            if (sweep.closed.size() < limit && a.info.status == auction_status::open && a.info.terms.ends_at &&
                *a.info.terms.ends_at <= db_->now_) {
                ended_auction e{id, {}, {}};
                e.result = close_locked(id, [&](auction_id i, const close_result& r) {
                    e.announcement = announcement(i, r);
                    return e.announcement;
                });
                sweep.closed.push_back(std::move(e));
            }
        }
        return sweep;
    }

    std::vector<auction> list_auctions() override { return list_auctions(std::nullopt, 1000, 0).items; }

    auction_page list_auctions(std::optional<auction_status> status, std::size_t limit, std::size_t offset) override {
        auto lock = enter();
        auction_page page;
        for (const auto& [id, a] : db_->auctions_) {
            if (!status || a.info.status == *status) {
                if (page.total >= static_cast<std::int64_t>(offset) && page.items.size() < limit) {
                    page.items.push_back(a.info);
                }
                ++page.total;
            }
        }
        return page;
    }

    std::optional<auction> find_auction(auction_id id) override {
        auto lock = enter();
        const auto it = db_->auctions_.find(id);
        return it == db_->auctions_.end() ? std::nullopt : std::optional<auction>(it->second.info);
    }

    void seed() override {}

private:
    close_result close_locked(auction_id id, const close_announcement& announcement) {
        close_result r;
        const auto it = db_->auctions_.find(id);
        if (it != db_->auctions_.end()) {
            r.found = true;
            r.was_open = it->second.info.status == auction_status::open;
            it->second.info.status = auction_status::closed;
            r.final_price = it->second.info.current_price;
            r.winner = it->second.info.leader;
            db_->closes_[id] += r.was_open ? 1 : 0;
            announcement(id, r);  // as postgres_store: the NOTIFY's text is made once the close is known
        }
        return r;
    }

public:
    void connect() override { auto lock = enter(); }
    std::uint64_t connection_failures() const override { return failures_; }

private:
    // Takes the database's lock and applies the current fault; a connection-level failure is
    // counted as postgres_store counts it.
    std::unique_lock<std::mutex> enter() {
        std::unique_lock lock(db_->mutex_);
        try {
            db_->check(lock, deadline_);
        } catch (const store_unavailable& e) {
            if (e.connection_level()) {
                ++failures_;
            }
            throw;
        }
        return lock;
    }

    std::shared_ptr<fake_database> db_;
    clock::time_point deadline_{clock::time_point::max()};
    std::uint64_t failures_{0};
};

// Records what the registry hands it; tests wait for it with a deadline.
class recording_subscriber final : public feed_subscriber {
public:
    void deliver(fanout_batch batch, std::int64_t, std::chrono::steady_clock::time_point) override {
        std::lock_guard lock(mutex_);
        for (const auto& m : *batch) {
            seqs_.push_back(m.seq);
        }
        changed_.notify_all();
    }
    void close_auction(shared_text message) override { last_word(std::move(message)); }
    void shutdown(shared_text message) override { last_word(std::move(message)); }

    std::vector<seq_t> seqs() {
        std::lock_guard lock(mutex_);
        return seqs_;
    }
    std::vector<std::string> last_words() {
        std::lock_guard lock(mutex_);
        return last_words_;
    }
    // True when `n` seqs arrived within the timeout.
    bool wait_for_seqs(std::size_t n, std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
        std::unique_lock lock(mutex_);
        return changed_.wait_for(lock, timeout, [&] { return seqs_.size() >= n; });
    }

private:
    void last_word(shared_text message) {
        std::lock_guard lock(mutex_);
        last_words_.push_back(*message);
        changed_.notify_all();
    }

    std::mutex mutex_;
    std::condition_variable changed_;
    std::vector<seq_t> seqs_;
    std::vector<std::string> last_words_;
};

inline std::string json_type_or_code(const std::string& text) {
    const auto j = nlohmann::json::parse(text);
    return j.value("code", j.value("type", std::string()));
}

// Occupies one of `pool`'s threads until `gate` is ready, so that what is posted meanwhile waits in
// its queues; returns once that thread has started the job (false if the pool refused it).
inline bool hold_pool_thread(db_pool& pool, std::shared_future<void> gate) {
    std::promise<void> started;
    auto running = started.get_future();
    const bool posted = pool.post(db_pool::job{[&started, gate](auction_store&) {
                                                   started.set_value();
                                                   gate.wait();
                                               },
                                               {}, db_pool::clock::now() + std::chrono::seconds(10)});
    if (posted) {
        running.wait();
    }
    return posted;
}

}  // namespace bidding::testing
