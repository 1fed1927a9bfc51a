#pragma once
// Postgres, the truth: the auction_store of the server and the CLI. Blocking (libpqxx): used only
// on the database pool's threads and by the CLI. Every method is one short transaction; the
// connection is opened lazily and reopened after a failure. A COMMIT in doubt is resolved with
// txid_status.
#include <bidding/auction_store.hpp>

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

class connection_watchdog;

// How every connection of a store is set up (see config: DB_TIMEOUT, DB_LOCK_TIMEOUT).
struct store_options {
    std::chrono::milliseconds statement_timeout{0};  // 0: the server's default
    std::chrono::milliseconds lock_timeout{0};
    std::chrono::milliseconds idle_in_transaction_timeout{0};
    connection_watchdog* watchdog{nullptr};  // cuts calls at their deadline (set_deadline)
    std::atomic<std::uint64_t>* reconnects{nullptr};  // counts connections opened after the first
};

// The timed demo auction that every seed restarts: open for demo_duration from the seed.
inline constexpr const char* demo_auction_name = "Pocket Watch";
inline constexpr std::chrono::seconds demo_duration{600};

// The NOTIFY channel on which a closed auction is announced, committed with the close itself.
inline constexpr const char* auction_closed_channel = "bidding_auction_closed";

class postgres_store final : public auction_store {
public:
    explicit postgres_store(std::string conninfo, store_options options = {});
    ~postgres_store() override;
    postgres_store(const postgres_store&) = delete;
    postgres_store& operator=(const postgres_store&) = delete;

    // The pool's stores: each with these options and the pool's watchdog.
    static store_factory factory(std::string conninfo, store_options options);

    // Past the deadline the watchdog cuts the connection (store_failure::timed_out).
    void set_deadline(clock::time_point deadline) override { deadline_ = deadline; }
    using auction_store::load_snapshot;
    std::optional<auction_snapshot> load_snapshot(auction_id id, std::size_t history_limit,
                                                  std::optional<seq_t> since) override;
    std::vector<history_entry> history_after(auction_id id, seq_t after_seq, std::size_t limit) override;
    // A COMMIT whose connection broke is resolved with txid_status on a fresh connection.
    using auction_store::place_bids;
    placement place_bids(auction_id id, std::span<const bid_request> bids, clock::time_point resolve_until) override;
    // One transaction for every group: the rows locked in id order, one INSERT for all the
    // accepted bids, one COMMIT.
    std::vector<placement> place_bids_many(std::span<const auction_bids> groups,
                                           clock::time_point resolve_until) override;
    // txid_status, asked on a connection of its own.
    commit_status transaction_status(std::int64_t txid) override;
    auction create_auction(const new_auction& spec) override;
    // The announcement is a NOTIFY on auction_closed_channel, committed with the close.
    close_result close_auction(auction_id id, const close_announcement& announcement) override;
    // One read of the clock and of whether anything is due; a transaction only when something is.
    ended_sweep close_ended_auctions(const close_announcement& announcement, std::size_t limit) override;
    std::vector<auction> list_auctions() override;
    auction_page list_auctions(std::optional<auction_status> status, std::size_t limit, std::size_t offset) override;
    std::optional<auction> find_auction(auction_id id) override;
    // Also moves the identity sequence past the seed rows.
    void seed() override;
    void connect() override;
    std::uint64_t connection_failures() const override { return failures_; }

private:
    pqxx::connection_base& conn();
    void drop_connection() noexcept;
    // place_bids_many's work; throws store_unavailable when nothing was stored.
    std::vector<placement> decide_groups(std::span<const auction_bids> groups, clock::time_point resolve_until);
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
