#pragma once
// Postgres, the truth. Blocking (libpqxx): used only on the database pool's threads and by the CLI.
// Every method is one short transaction; the connection is opened lazily and reopened after a failure.
#include <bidding/auction.hpp>
#include <bidding/bid_rule.hpp>
#include <bidding/protocol.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace pqxx {
class connection_base;
}

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

class connection_watchdog;

// How every connection of a store is set up (see config: DB_TIMEOUT, DB_LOCK_TIMEOUT).
struct store_options {
    std::chrono::milliseconds statement_timeout{0};  // 0: the server's default
    std::chrono::milliseconds lock_timeout{0};
    std::chrono::milliseconds idle_in_transaction_timeout{0};
    connection_watchdog* watchdog{nullptr};  // cuts calls at their deadline (set_deadline)
    std::atomic<std::uint64_t>* reconnects{nullptr};  // counts connections opened after the first
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
};

// What place_bids learned. A transaction whose COMMIT was cut is "in doubt" until the server
// says what became of it (txid_status); then it is decided or known not stored.
struct placement {
    enum class result { decided, not_found, in_doubt };
    result outcome{result::decided};
    std::vector<bid_outcome> bids;  // verdicts in order (decided, in_doubt)
    std::int64_t txid{0};           // in_doubt: the transaction to ask about later
};

enum class commit_status { committed, aborted, in_progress, unknown };

struct close_result {
    bool found{false};
    bool was_open{false};
    cents final_price{0};
    std::optional<std::string> winner;
};

// The NOTIFY channel on which a closed auction is announced, committed with the close itself.
inline constexpr const char* auction_closed_channel = "bidding_auction_closed";

class postgres_store {
public:
    using clock = std::chrono::steady_clock;

    explicit postgres_store(std::string conninfo, store_options options = {});
    ~postgres_store();
    postgres_store(const postgres_store&) = delete;
    postgres_store& operator=(const postgres_store&) = delete;

    // Every call until the next set_deadline() ends by `deadline`: the watchdog cuts the
    // connection then (store_failure::timed_out). clock::time_point::max() for none.
    void set_deadline(clock::time_point deadline) { deadline_ = deadline; }

    // nullopt when the auction does not exist.
    std::optional<auction_snapshot> load_snapshot(auction_id id, std::size_t history_limit,
                                                  std::optional<seq_t> since = std::nullopt);

    // The auction's history after `after_seq`, oldest first, at most `limit` rows.
    std::vector<history_entry> history_after(auction_id id, seq_t after_seq, std::size_t limit);

    // Decides the bids in order inside one transaction holding the auction's row lock: each is
    // judged against the price left by the one before it. When the connection breaks during
    // COMMIT, asks the server what became of the transaction until `resolve_until`: committed
    // bids are decided, an aborted transaction throws store_unavailable (nothing stored), and an
    // outcome still unknown then comes back as result::in_doubt.
    placement place_bids(auction_id id, std::span<const bid_request> bids,
                         clock::time_point resolve_until = clock::time_point::min());

    // What became of a transaction (txid_status), asked on a connection of its own.
    commit_status transaction_status(std::int64_t txid);

    auction create_auction(const std::string& name, cents initial_price);
    close_result close_auction(auction_id id);
    std::vector<auction> list_auctions();

    struct auction_page {
        std::vector<auction> items;
        std::int64_t total{0};
    };
    // Ordered by id; `status` filters when given.
    auction_page list_auctions(std::optional<auction_status> status, std::size_t limit, std::size_t offset);
    std::optional<auction> find_auction(auction_id id);

    // The Django app's seed rows, idempotent; moves the identity sequence past them.
    void seed();

    // Opens the connection now (startup checks); throws store_unavailable.
    void connect();

    // How many calls failed because the database seemed unreachable (not an SQL error):
    // the pool's cue to stop sending work to it for a moment.
    std::uint64_t connection_failures() const { return failures_; }

private:
    pqxx::connection_base& conn();
    void drop_connection() noexcept;
    enum class retry { reads, none };
    template <class F>
    auto with_connection(retry policy, F&& body);

    std::string conninfo_;
    store_options options_;
    clock::time_point deadline_{clock::time_point::max()};
    bool ever_connected_{false};
    bool fresh_{false};          // the connection was opened by the current call
    bool write_started_{false};  // the current call's transaction got past BEGIN
    std::uint64_t failures_{0};
    struct connection_holder;    // owns the concrete pqxx connection (its base has no virtual destructor)
    std::unique_ptr<connection_holder> conn_;
};

}  // namespace bidding
