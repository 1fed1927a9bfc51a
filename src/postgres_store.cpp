#include <bidding/postgres_store.hpp>

#include <pqxx/pqxx>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <limits>
#include <chrono>
#include <thread>

namespace bidding {

namespace {

// Timestamps cross the wire as ISO 8601 UTC with milliseconds.
#define BIDDING_ISO(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

auction_status parse_status(const std::string& text) {
    // Anything but 'open' takes no bids: an unknown status must never accept money.
    return text == "open" ? auction_status::open : auction_status::closed;
}

history_entry history_from(const pqxx::row& r) {
    // columns: id, bidder_name, price_cents, added_at
    return history_entry{r[0].as<seq_t>(), r[1].as<std::string>(), r[2].as<cents>(), r[3].as<std::string>()};
}

const std::string select_auction_sql =
    "SELECT id, name, status, (initial_price * 100)::bigint, " BIDDING_ISO("created_at") " FROM bids_bid WHERE id = $1";
const std::string select_history_sql =
    "SELECT id, bidder_name, (price * 100)::bigint, " BIDDING_ISO("added_at")
    " FROM bids_bidhistory WHERE bid_id = $1 ORDER BY id DESC LIMIT $2";
const std::string insert_history_sql =
    "INSERT INTO bids_bidhistory (bid_id, bidder_name, price, added_at, name) VALUES ($1, $2, $3::numeric, now(), '') "
    "RETURNING id, bidder_name, (price * 100)::bigint, " BIDDING_ISO("added_at");
const std::string find_history_sql =
    "SELECT id, bidder_name, (price * 100)::bigint, " BIDDING_ISO("added_at")
    " FROM bids_bidhistory WHERE bid_id = $1 AND price = $2::numeric AND bidder_name = $3 ORDER BY id DESC LIMIT 1";

auction auction_from(const pqxx::row& r, const std::vector<history_entry>& newest_first) {
    auction a;
    a.id = r[0].as<auction_id>();
    a.name = r[1].as<std::string>();
    a.status = parse_status(r[2].as<std::string>());
    a.initial_price = r[3].as<cents>();
    a.created_at = r[4].as<std::string>();
    a.current_price = a.initial_price;
    if (!newest_first.empty()) {
        a.current_price = newest_first.front().price;
        a.last_seq = newest_first.front().seq;
        a.leader = newest_first.front().bidder;
    }
    return a;
}

}  // namespace

struct postgres_store::connection_holder {
    explicit connection_holder(const std::string& conninfo) : conn(conninfo) {}
    pqxx::connection conn;
};

postgres_store::postgres_store(std::string conninfo, std::atomic<std::uint64_t>* reconnects)
    : conninfo_(std::move(conninfo)), reconnects_(reconnects) {}

postgres_store::~postgres_store() = default;

void postgres_store::drop_connection() noexcept { conn_.reset(); }

pqxx::connection_base& postgres_store::conn() {
    if (conn_ && !conn_->conn.is_open()) {
        conn_.reset();
    }
    if (!conn_) {
        try {
            conn_ = std::make_unique<connection_holder>(conninfo_);
            if (ever_connected_ && reconnects_ != nullptr) {
                reconnects_->fetch_add(1, std::memory_order_relaxed);
            }
            ever_connected_ = true;
        } catch (const std::exception& e) {
            // libpq's message names host and port, never the password; logs want it on one line.
            std::string message = e.what();
            std::replace_if(message.begin(), message.end(), [](char ch) { return ch == '\n' || ch == '\t'; }, ' ');
            while (!message.empty() && message.back() == ' ') {
                message.pop_back();
            }
            throw store_unavailable("cannot connect to Postgres: " + message);
        }
    }
    return conn_->conn;
}

void postgres_store::connect() { (void)conn(); }

// Any libpqxx failure leaves the connection in an unknown state: drop it (the next call
// reconnects) and report the database as unavailable. Nothing was committed in that case.
template <class F>
auto postgres_store::with_connection(F&& body) {
    try {
        return body(conn());
    } catch (const store_unavailable&) {
        throw;
    } catch (const pqxx::in_doubt_error&) {
        drop_connection();
        throw;
    } catch (const pqxx::failure& e) {
        drop_connection();
        throw store_unavailable(e.what());
    }
}

std::optional<auction_snapshot> postgres_store::load_snapshot(auction_id id, std::size_t history_limit,
                                                              std::optional<seq_t> since) {
    return with_connection([&](pqxx::connection_base& c) -> std::optional<auction_snapshot> {
        pqxx::read_transaction tx(c);
        const auto head = tx.exec_params(select_auction_sql, id);
        if (head.empty()) {
            return std::nullopt;
        }
        auction_snapshot snap;
        const auto limit = static_cast<std::int64_t>(history_limit);
        if (!since) {
            for (const auto& r : tx.exec_params(select_history_sql, id, limit)) {
                snap.entries.push_back(history_from(r));
            }
            snap.info = auction_from(head[0], snap.entries);
        } else {
            // One row more than the limit tells whether the client missed more than it gets.
            const auto rows = tx.exec_params(
                "SELECT id, bidder_name, (price * 100)::bigint, " BIDDING_ISO("added_at")
                " FROM bids_bidhistory WHERE bid_id = $1 AND id > $2 ORDER BY id DESC LIMIT $3",
                id, *since, limit + 1);
            snap.truncated = rows.size() > history_limit;
            for (const auto& r : rows) {
                if (snap.entries.size() == history_limit) {
                    break;
                }
                snap.entries.push_back(history_from(r));
            }
            std::vector<history_entry> newest;
            if (!snap.entries.empty()) {
                newest.push_back(snap.entries.front());
            } else {
                for (const auto& r : tx.exec_params(select_history_sql, id, std::int64_t{1})) {
                    newest.push_back(history_from(r));
                }
            }
            snap.info = auction_from(head[0], newest);
            std::reverse(snap.entries.begin(), snap.entries.end());
        }
        tx.commit();
        return snap;
    });
}

std::vector<history_entry> postgres_store::history_after(auction_id id, seq_t after_seq, std::size_t limit) {
    return with_connection([&](pqxx::connection_base& c) {
        pqxx::read_transaction tx(c);
        std::vector<history_entry> out;
        for (const auto& r : tx.exec_params("SELECT id, bidder_name, (price * 100)::bigint, " BIDDING_ISO("added_at")
                                            " FROM bids_bidhistory WHERE bid_id = $1 AND id > $2 ORDER BY id LIMIT $3",
                                            id, after_seq, static_cast<std::int64_t>(limit))) {
            out.push_back(history_from(r));
        }
        tx.commit();
        return out;
    });
}

std::optional<std::vector<bid_outcome>> postgres_store::place_bids(auction_id id, std::span<const bid_request> bids) {
    std::vector<bid_outcome> outcomes;
    try {
        return with_connection([&](pqxx::connection_base& c) -> std::optional<std::vector<bid_outcome>> {
            outcomes.clear();
            pqxx::work tx(c);
            // The row lock serializes every decision on this auction, across all processes.
            const auto head = tx.exec_params("SELECT status, (initial_price * 100)::bigint FROM bids_bid "
                                             "WHERE id = $1 FOR UPDATE",
                                             id);
            if (head.empty()) {
                return std::nullopt;
            }
            const auto status = parse_status(head[0][0].as<std::string>());
            cents current = head[0][1].as<cents>();
            const auto last = tx.exec_params(
                "SELECT (price * 100)::bigint, id FROM bids_bidhistory WHERE bid_id = $1 ORDER BY id DESC LIMIT 1", id);
            seq_t prev = 0;
            if (!last.empty()) {
                current = last[0][0].as<cents>();
                prev = last[0][1].as<seq_t>();
            }
            for (const auto& bid : bids) {
                bid_outcome out;
                out.verdict = judge_bid(status, current, bid.price);
                out.current_price = current;
                if (out.verdict == bid_verdict::accepted) {
                    out.entry = history_from(tx.exec_params1(insert_history_sql, id, bid.name, format_cents(bid.price)));
                    out.prev_seq = prev;
                    prev = out.entry.seq;
                    current = bid.price;
                }
                outcomes.push_back(std::move(out));
            }
            tx.commit();
            return outcomes;
        });
    } catch (const pqxx::in_doubt_error& e) {
        // The connection broke during COMMIT: read back rather than guess. Accepted prices are
        // strictly increasing, so (auction, price, bidder) finds the row if the commit happened.
        spdlog::warn("commit outcome unknown for auction {} ({}); reading back", id, e.what());
        if (std::none_of(outcomes.begin(), outcomes.end(),
                         [](const bid_outcome& o) { return o.verdict == bid_verdict::accepted; })) {
            return outcomes;  // nothing was written: the verdicts stand
        }
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
        bool committed = false;
        for (;;) {
            try {
                committed = with_connection([&](pqxx::connection_base& c) {
                    pqxx::read_transaction tx(c);
                    for (std::size_t i = 0; i < outcomes.size(); ++i) {
                        auto& o = outcomes[i];
                        if (o.verdict != bid_verdict::accepted) {
                            continue;
                        }
                        const auto r = tx.exec_params(find_history_sql, id, format_cents(bids[i].price), bids[i].name);
                        if (r.empty()) {
                            return false;  // the transaction did not commit: nothing of it was stored
                        }
                        o.entry = history_from(r[0]);
                    }
                    return true;
                });
                break;
            } catch (const store_unavailable&) {
                if (std::chrono::steady_clock::now() >= deadline) {
                    throw;
                }
                std::this_thread::sleep_for(std::chrono::milliseconds(100));
            }
        }
        if (!committed) {
            throw store_unavailable("the commit did not happen; nothing was stored");
        }
        return outcomes;
    }
}

auction postgres_store::create_auction(const std::string& name, cents initial_price) {
    return with_connection([&](pqxx::connection_base& c) {
        pqxx::work tx(c);
        const auto id = tx.exec_params1("INSERT INTO bids_bid (name, initial_price, created_at, status) "
                                        "VALUES ($1, $2::numeric, now(), 'open') RETURNING id",
                                        name, format_cents(initial_price))[0]
                            .as<auction_id>();
        const auto head = tx.exec_params(select_auction_sql, id);
        auto a = auction_from(head[0], {});
        tx.commit();
        return a;
    });
}

close_result postgres_store::close_auction(auction_id id) {
    return with_connection([&](pqxx::connection_base& c) {
        pqxx::work tx(c);
        close_result result;
        const auto head =
            tx.exec_params("SELECT status, (initial_price * 100)::bigint FROM bids_bid WHERE id = $1 FOR UPDATE", id);
        if (head.empty()) {
            return result;
        }
        result.found = true;
        result.was_open = parse_status(head[0][0].as<std::string>()) == auction_status::open;
        result.final_price = head[0][1].as<cents>();
        const auto last = tx.exec_params(
            "SELECT (price * 100)::bigint, bidder_name FROM bids_bidhistory WHERE bid_id = $1 ORDER BY id DESC LIMIT 1",
            id);
        if (!last.empty()) {
            result.final_price = last[0][0].as<cents>();
            result.winner = last[0][1].as<std::string>();
        }
        tx.exec_params0("UPDATE bids_bid SET status = 'closed' WHERE id = $1", id);
        // Delivered to every listening server when (and only when) the close commits. Sent again
        // for an already closed auction: harmless, and it reaches a server that missed the first.
        tx.exec_params("SELECT pg_notify($1, $2)", std::string(auction_closed_channel),
                       serialize_bid_closed(id, result.final_price, result.winner));
        tx.commit();
        return result;
    });
}

namespace {

const std::string list_sql_head =
    "SELECT b.id, b.name, b.status, (b.initial_price * 100)::bigint, " BIDDING_ISO("b.created_at") ", "
    "h.id, h.bidder_name, (h.price * 100)::bigint, " BIDDING_ISO("h.added_at") " FROM bids_bid b "
    "LEFT JOIN LATERAL (SELECT id, bidder_name, price, added_at FROM bids_bidhistory "
    "  WHERE bid_id = b.id ORDER BY id DESC LIMIT 1) h ON true ";

auction auction_with_newest(const pqxx::row& r) {
    std::vector<history_entry> newest;
    if (!r[5].is_null()) {
        newest.push_back(
            history_entry{r[5].as<seq_t>(), r[6].as<std::string>(), r[7].as<cents>(), r[8].as<std::string>()});
    }
    return auction_from(r, newest);
}

}  // namespace

std::vector<auction> postgres_store::list_auctions() {
    return list_auctions(std::nullopt, std::numeric_limits<std::int32_t>::max(), 0).items;
}

postgres_store::auction_page postgres_store::list_auctions(std::optional<auction_status> status, std::size_t limit,
                                                           std::size_t offset) {
    return with_connection([&](pqxx::connection_base& c) {
        pqxx::read_transaction tx(c);
        // Anything but 'open' counts as closed, as everywhere else.
        const std::string param = !status ? "all" : status == auction_status::open ? "open" : "closed";
        const std::string filter = "WHERE ($1 = 'all' OR ($1 = 'open') = (b.status = 'open')) ";
        auction_page page;
        page.total = tx.exec_params1("SELECT count(*) FROM bids_bid b " + filter, param)[0].as<std::int64_t>();
        for (const auto& r : tx.exec_params(list_sql_head + filter + "ORDER BY b.id LIMIT $2 OFFSET $3", param,
                                            static_cast<std::int64_t>(limit), static_cast<std::int64_t>(offset))) {
            page.items.push_back(auction_with_newest(r));
        }
        tx.commit();
        return page;
    });
}

std::optional<auction> postgres_store::find_auction(auction_id id) {
    return with_connection([&](pqxx::connection_base& c) -> std::optional<auction> {
        pqxx::read_transaction tx(c);
        const auto rows = tx.exec_params(list_sql_head + "WHERE b.id = $1", id);
        tx.commit();
        if (rows.empty()) {
            return std::nullopt;
        }
        return auction_with_newest(rows[0]);
    });
}

void postgres_store::seed() {
    with_connection([&](pqxx::connection_base& c) {
        pqxx::work tx(c);
        // Explicit ids, as the Django app's fixtures have them; existing rows are left alone.
        tx.exec(
            "INSERT INTO bids_bid (id, name, initial_price, created_at, status) OVERRIDING SYSTEM VALUE VALUES "
            "(1, 'Vintage Camera', 100.00, now(), 'open'), "
            "(2, 'Antique Vase', 200.00, now(), 'open'), "
            "(3, 'Rare Book', 150.00, now(), 'closed') "
            "ON CONFLICT (id) DO NOTHING");
        // Never move the sequence backwards: only ahead of every id in use.
        tx.exec(
            "SELECT setval(s.seq, GREATEST(COALESCE(pg_sequence_last_value(s.seq), 0), "
            "  (SELECT COALESCE(max(id), 0) FROM bids_bid), 1)) "
            "FROM (SELECT pg_get_serial_sequence('bids_bid', 'id')::regclass AS seq) s");
        tx.commit();
        return 0;
    });
}

}  // namespace bidding
