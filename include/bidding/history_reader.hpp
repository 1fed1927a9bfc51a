#pragma once
// Reads of an auction's history from the store, on the database pool, for the sessions (the
// snapshot a client starts from, and what its feed found missing) and for the registry (what an
// auction's feed on this pod missed). Every read has a deadline (DB_TIMEOUT); its answer comes
// on a pool thread, and the caller posts it where it belongs.
#include <bidding/auction.hpp>
#include <bidding/auction_store.hpp>
#include <bidding/db_pool.hpp>
#include <bidding/fanout.hpp>
#include <bidding/session_registry.hpp>

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

namespace bidding {

class history_reader {
public:
    // A registry read that failed is asked for again this long after.
    static constexpr std::chrono::milliseconds retry_after{500};

    struct snapshot_result {
        std::optional<auction_snapshot> snapshot;  // nullopt: no such auction (or unavailable)
        bool unavailable{false};                   // the store could not be read in time
    };
    // Rows after a seq as fan-out messages (each with its `prev`), and whether that was all.
    struct rows_result {
        std::optional<std::vector<fanout_message>> rows;  // nullopt: the store could not be read
        bool complete{false};
    };

    // `timers`: where a registry retry waits; `timeout`: each read's deadline.
    history_reader(db_pool& db, session_registry& registry, boost::asio::io_context& timers,
                   std::chrono::milliseconds timeout)
        : db_(db), registry_(registry), timers_(timers), timeout_(timeout) {}

    // A client's snapshot; on success the registry learns where this pod's delivery of the
    // auction starts (session_registry::baseline), before `done` is called. Clients asking for
    // the same snapshot (auction, limit, since) while one such read waits for a pool thread
    // share it: a reconnect storm of thousands of clients costs a few queries, not thousands.
    // Only a read that has not started is shared: each client joined the registry before asking,
    // so the read still starts after every one of them joined, and no bid falls between.
    void load_snapshot(auction_id id, std::size_t history_limit, std::optional<seq_t> since,
                       std::function<void(snapshot_result)> done);

    // At most `limit` rows after `after`, oldest first.
    void read_after(auction_id id, seq_t after, std::size_t limit, std::function<void(rows_result)> done);

    // session_registry::hooks::read_after: the rows go to the registry's feed; a failure is
    // retried after retry_after.
    void fill_registry(auction_id id, seq_t after, std::size_t limit);

private:
    void post(std::function<void(auction_store&)> run, std::function<void()> refused);
    void retry_later(auction_id id);

    struct snapshot_key {
        auction_id id;
        std::size_t limit;
        std::optional<seq_t> since;
        friend auto operator<=>(const snapshot_key&, const snapshot_key&) = default;
    };
    struct shared_snapshot {
        std::vector<std::function<void(snapshot_result)>> waiting;
    };
    // The taker of a read that starts (or is refused): the clients waiting for it.
    std::vector<std::function<void(snapshot_result)>> take(const snapshot_key& key,
                                                            const std::shared_ptr<shared_snapshot>& read);

    db_pool& db_;
    session_registry& registry_;
    boost::asio::io_context& timers_;
    const std::chrono::milliseconds timeout_;
    std::mutex mutex_;
    std::map<snapshot_key, std::shared_ptr<shared_snapshot>> waiting_reads_;  // queued, not started
};

}  // namespace bidding
