#pragma once
// Postgres, the truth. Blocking (libpqxx): used only on the database pool's threads and by the CLI.
// Every method is one short transaction; the connection is opened lazily and reopened after a failure.
#include <bidding/auction.hpp>
#include <bidding/bid_rule.hpp>
#include <bidding/protocol.hpp>

#include <atomic>
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

// The database could not be reached, or the connection broke: nothing was stored.
class store_unavailable : public std::runtime_error {
    using std::runtime_error::runtime_error;
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
    // `reconnects`, when given, counts connections opened after the first (failures recovered).
    explicit postgres_store(std::string conninfo, std::atomic<std::uint64_t>* reconnects = nullptr);
    ~postgres_store();
    postgres_store(const postgres_store&) = delete;
    postgres_store& operator=(const postgres_store&) = delete;

    // nullopt when the auction does not exist.
    std::optional<auction_snapshot> load_snapshot(auction_id id, std::size_t history_limit,
                                                  std::optional<seq_t> since = std::nullopt);

    // The auction's history after `after_seq`, oldest first, at most `limit` rows.
    std::vector<history_entry> history_after(auction_id id, seq_t after_seq, std::size_t limit);

    // Decides the bids in order inside one transaction holding the auction's row lock: each is
    // judged against the price left by the one before it. Returns nullopt when the auction is gone.
    std::optional<std::vector<bid_outcome>> place_bids(auction_id id, std::span<const bid_request> bids);

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

private:
    pqxx::connection_base& conn();
    void drop_connection() noexcept;
    template <class F>
    auto with_connection(F&& body);

    std::string conninfo_;
    std::atomic<std::uint64_t>* reconnects_;
    bool ever_connected_{false};
    struct connection_holder;  // owns the concrete pqxx::connection (its base has no virtual destructor)
    std::unique_ptr<connection_holder> conn_;
};

}  // namespace bidding
