#pragma once
// The auctions and their bids, as the services see them: an abstract store. Postgres is the one
// real implementation (postgres_store); the unit tests use an in-memory one, faults included.
// Every call is blocking and runs on a database pool thread (db_pool) or in the CLI, never on a
// socket thread. A call that cannot complete throws store_unavailable.
#include <bidding/auction.hpp>
#include <bidding/bid_rule.hpp>
#include <bidding/protocol.hpp>
#include <bidding/timestamp.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace bidding {

// Why a store call failed. Everything but query_failed says the database itself may be away.
enum class store_failure {
    cannot_connect,   // no connection could be opened
    connection_lost,  // the connection broke during the call
    timed_out,        // the call's deadline passed (the connection was cut)
    query_failed,     // the server refused the statement (an SQL error): the server is up
};

// The database could not do what was asked, and nothing of it was stored.
class store_unavailable : public std::runtime_error {
public:
    store_unavailable(store_failure kind, const std::string& what) : std::runtime_error(what), kind_(kind) {}
    store_failure kind() const noexcept { return kind_; }
    // True when the database itself seems unreachable (not just this one statement).
    bool connection_level() const noexcept { return kind_ != store_failure::query_failed; }

private:
    store_failure kind_;
};

struct auction_snapshot {
    auction info;
    // Without `since`: the newest entries, newest first. With it: the entries after `since`,
    // oldest first; when more than the limit are, the newest `limit` of them and truncated.
    std::vector<history_entry> entries;
    bool truncated{false};
};

struct bid_outcome {
    bid_verdict verdict{bid_verdict::closed};
    history_entry entry;        // the stored row, when accepted
    seq_t prev_seq{0};          // the auction's accepted bid before it, when accepted
    cents current_price{0};     // the price the bid had to beat, when too low
    cents min_price{0};         // the smallest price it would have taken, when too low
};

// What place_bids learned. A transaction whose COMMIT was cut is "in doubt" until the server
// says what became of it; then it is decided or known not stored.
struct placement {
    // unavailable: only from place_bids_many, where one auction's failure is reported beside the
    // others' results (nothing of that auction was stored; `failure` says why).
    enum class result { decided, not_found, in_doubt, unavailable };
    result outcome{result::decided};
    std::vector<bid_outcome> bids;  // verdicts in order (decided, in_doubt)
    std::int64_t txid{0};           // in_doubt: the transaction to ask about later
    std::string failure;            // unavailable: why

    static placement unavailable_because(std::string why) {
        placement p;
        p.outcome = result::unavailable;
        p.failure = std::move(why);
        return p;
    }
};

// One auction's bids, in arrival order, for place_bids_many.
struct auction_bids {
    auction_id id;
    std::span<const bid_request> bids;
};

enum class commit_status { committed, aborted, in_progress, unknown };

struct close_result {
    bool found{false};
    bool was_open{false};
    cents final_price{0};
    std::optional<std::string> winner;
};

// create_auction refused the end time: not after the database's now, or past
// max_auction_duration from it. Nothing was stored.
class end_time_refused : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// One auction the closer found ended and closed (close_ended_auctions).
struct ended_auction {
    auction_id id;
    close_result result;
    std::string announcement;  // the text announced with the close
};

struct ended_sweep {
    std::vector<ended_auction> closed;
    // The database's clock minus this process's system clock, measured around one round trip.
    std::chrono::milliseconds clock_offset{0};
};

class auction_store {
public:
    using clock = std::chrono::steady_clock;

    struct auction_page {
        std::vector<auction> items;
        std::int64_t total{0};
    };

    virtual ~auction_store() = default;

    // Every call until the next set_deadline() ends by `deadline` (store_failure::timed_out
    // past it). clock::time_point::max() for none.
    virtual void set_deadline(clock::time_point deadline) = 0;

    // nullopt when the auction does not exist.
    virtual std::optional<auction_snapshot> load_snapshot(auction_id id, std::size_t history_limit,
                                                          std::optional<seq_t> since) = 0;
    std::optional<auction_snapshot> load_snapshot(auction_id id, std::size_t history_limit) {
        return load_snapshot(id, history_limit, std::nullopt);
    }

    // The auction's history after `after_seq`, oldest first, at most `limit` rows.
    virtual std::vector<history_entry> history_after(auction_id id, seq_t after_seq, std::size_t limit) = 0;

    // Decides the bids in order inside one transaction holding the auction's row lock: each is
    // judged against the price left by the one before it (judge_bid). When the outcome of the
    // COMMIT is unknown, keeps asking until `resolve_until`: committed bids are decided, an
    // aborted transaction throws store_unavailable (nothing stored), and an outcome still
    // unknown then comes back as result::in_doubt.
    virtual placement place_bids(auction_id id, std::span<const bid_request> bids,
                                 clock::time_point resolve_until) = 0;
    placement place_bids(auction_id id, std::span<const bid_request> bids) {
        return place_bids(id, bids, clock::time_point::min());
    }
    // The bids of several auctions, each auction decided as by place_bids; one placement per
    // group, in order. Postgres decides them all in one transaction (one COMMIT for all: what a
    // busy pod with many auctions saves), so they are stored or not together. This default
    // decides each group on its own with place_bids (the stores of the unit tests).
    virtual std::vector<placement> place_bids_many(std::span<const auction_bids> groups,
                                                   clock::time_point resolve_until);

    // What became of a transaction whose COMMIT was in doubt.
    virtual commit_status transaction_status(std::int64_t txid) = 0;

    // Throws end_time_refused when the end is not in the future by the database's clock.
    virtual auction create_auction(const new_auction& spec) = 0;
    // Closes it and, in the same transaction, announces it to every pod with the text that
    // `announcement` makes of the result (see auction_closing: the one caller).
    using close_announcement = std::function<std::string(auction_id, const close_result&)>;
    virtual close_result close_auction(auction_id id, const close_announcement& announcement) = 0;
    // Closes, each once and announced as close_auction does, at most `limit` open auctions whose
    // end has passed by the database's clock. Two processes sweeping at once never close one
    // auction twice.
    virtual ended_sweep close_ended_auctions(const close_announcement& announcement, std::size_t limit) = 0;
    virtual std::vector<auction> list_auctions() = 0;
    // Ordered by id; `status` filters when given.
    virtual auction_page list_auctions(std::optional<auction_status> status, std::size_t limit,
                                       std::size_t offset) = 0;
    virtual std::optional<auction> find_auction(auction_id id) = 0;
    // The Django app's seed rows (idempotent), and the timed demo auction, restarted each time.
    virtual void seed() = 0;
    // Opens the connection now (startup checks); throws store_unavailable.
    virtual void connect() = 0;
    // How many calls failed because the database seemed unreachable (not an SQL error):
    // the pool's cue to stop sending work to it for a moment.
    virtual std::uint64_t connection_failures() const = 0;
};

class connection_watchdog;

// Makes the store of one database pool thread; `watchdog` (may be null) cuts its blocked calls
// at their deadlines.
using store_factory = std::function<std::unique_ptr<auction_store>(connection_watchdog* watchdog)>;

}  // namespace bidding
