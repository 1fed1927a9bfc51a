#include <bidding/history_reader.hpp>
#include <bidding/protocol.hpp>

#include <boost/asio/steady_timer.hpp>
#include <spdlog/spdlog.h>

#include <memory>

namespace bidding {

namespace {

std::vector<fanout_message> as_messages(auction_id id, seq_t after, const std::vector<history_entry>& entries) {
    std::vector<fanout_message> out;
    out.reserve(entries.size());
    seq_t prev = after;
    for (const auto& e : entries) {
        out.push_back(fanout_message{prev, e.seq, make_shared_text(serialize_new_bid(id, e))});
        prev = e.seq;
    }
    return out;
}

}  // namespace

void history_reader::post(std::function<void(auction_store&)> run, std::function<void()> refused) {
    // A tenth of the deadline is kept for the answer to travel.
    const auto deadline = std::chrono::steady_clock::now() + timeout_ - timeout_ / 10;
    auto on_refusal = [refused](db_pool::refusal) { refused(); };
    if (!db_.post(db_pool::job{std::move(run), std::move(on_refusal), deadline})) {
        refused();
    }
}

std::vector<std::function<void(history_reader::snapshot_result)>> history_reader::take(
    const snapshot_key& key, const std::shared_ptr<shared_snapshot>& read) {
    std::lock_guard lock(mutex_);
    if (const auto it = waiting_reads_.find(key); it != waiting_reads_.end() && it->second == read) {
        waiting_reads_.erase(it);  // from now on a new client needs a read of its own
    }
    return std::move(read->waiting);
}

void history_reader::load_snapshot(auction_id id, std::size_t history_limit, std::optional<seq_t> since,
                                   std::function<void(snapshot_result)> done) {
    const snapshot_key key{id, history_limit, since};
    auto read = std::make_shared<shared_snapshot>();
    {
        std::lock_guard lock(mutex_);
        auto& slot = waiting_reads_[key];
        if (slot) {
            slot->waiting.push_back(std::move(done));  // that read has not started: it is ours too
            return;
        }
        slot = read;
        read->waiting.push_back(std::move(done));
    }
    post(
        [this, key, read](auction_store& store) {
            const auto waiting = take(key, read);
            snapshot_result result;
            try {
                result.snapshot = store.load_snapshot(key.id, key.limit, key.since);
                if (result.snapshot) {
                    // Where this pod's delivery of the auction starts, if it has not started yet.
                    registry_.baseline(key.id, result.snapshot->info.last_seq);
                }
            } catch (const std::exception& e) {
                spdlog::debug("cannot load auction {}: {}", key.id, e.what());
                result.unavailable = true;
            }
            for (const auto& done : waiting) {
                done(result);
            }
        },
        [this, key, read] {
            for (const auto& done : take(key, read)) {
                done(snapshot_result{std::nullopt, true});
            }
        });
}

void history_reader::read_after(auction_id id, seq_t after, std::size_t limit, std::function<void(rows_result)> done) {
    post(
        [id, after, limit, done](auction_store& store) {
            rows_result result;
            try {
                const auto entries = store.history_after(id, after, limit);
                result.complete = entries.size() < limit;
                result.rows = as_messages(id, after, entries);
            } catch (const std::exception& e) {
                spdlog::debug("cannot read auction {} after seq {}: {}", id, after, e.what());
            }
            done(std::move(result));
        },
        [done] { done(rows_result{}); });
}

void history_reader::fill_registry(auction_id id, seq_t after, std::size_t limit) {
    read_after(id, after, limit, [this, id](rows_result result) {
        if (result.rows) {
            registry_.fill_done(id, *result.rows, result.complete);
        } else {
            retry_later(id);
        }
    });
}

void history_reader::retry_later(auction_id id) {
    registry_.fill_failed(id);
    auto timer = std::make_shared<boost::asio::steady_timer>(timers_, retry_after);
    timer->async_wait([timer, this, id](const boost::system::error_code& ec) {
        if (!ec) {
            registry_.resync(id);
        }
    });
}

}  // namespace bidding
