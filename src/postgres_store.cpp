#include <bidding/postgres_store.hpp>

#include <bidding/connection_watchdog.hpp>
#include <bidding/server_messages.hpp>

#include <pqxx/pqxx>

#include "pqxx_conversions.hpp"
#include <spdlog/spdlog.h>

#include <algorithm>
#include <limits>
#include <chrono>
#include <thread>
#include <unordered_map>

#include <poll.h>

namespace bidding {

namespace {

// Timestamps cross the wire as ISO 8601 UTC with milliseconds.
#define BIDDING_ISO(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

auction_status parse_status(const std::string& text) {
    // Anything but 'open' takes no bids: an unknown status must never accept money.
    return text == "open" ? auction_status::open : auction_status::closed;
}

// A timestamp as milliseconds since the epoch (NULL stays NULL); times are kept to the
// millisecond, the wire's precision.
#define BIDDING_MS(col) "(floor(extract(epoch FROM " col ") * 1000))::bigint"
// ...and back: NULL for -1, the "no time" of the statements' parameters.
#define BIDDING_FROM_MS(param) "('epoch'::timestamptz + NULLIF(" param "::bigint, -1) * interval '1 millisecond')"
#define BIDDING_CLOCK_MS BIDDING_MS("clock_timestamp()")

// The columns history_from reads, in its order; `t` qualifies them ("" or "h.").
#define BIDDING_HISTORY_COLUMNS(t) \
    t "id, " t "bidder_name, (" t "price * 100)::bigint, " BIDDING_ISO(t "added_at") ", " BIDDING_MS(t "ends_at")
constexpr int history_column_count = 5;

// The columns auction_from reads, in its order.
#define BIDDING_AUCTION_COLUMNS(t)                                                                          \
    t "id, " t "name, " t "status, (" t "initial_price * 100)::bigint, " BIDDING_ISO(t "created_at") ", " \
        BIDDING_MS(t "ends_at") ", " t "extend_window, " t "extend_by, (" t "min_increment * 100)::bigint"
constexpr int auction_column_count = 9;

// What a bid round reads of each auction after its locks (b: bids_bid, h: its newest bid, if any),
// in this order: id, status, initial price, the transaction's id, the terms (terms_from), the
// clock, the newest bid's price and id.
#define BIDDING_ROUND_STATE                                                                              \
    "b.id, b.status, (b.initial_price * 100)::bigint, txid_current(), " BIDDING_MS("b.ends_at") ", "      \
    "b.extend_window, b.extend_by, (b.min_increment * 100)::bigint, " BIDDING_CLOCK_MS ", (h.price * 100)::bigint, h.id"

std::optional<timestamp> timestamp_from(const pqxx::field& f) {
    if (f.is_null()) {
        return std::nullopt;
    }
    return timestamp{std::chrono::milliseconds{f.as<std::int64_t>()}};
}

std::optional<std::chrono::seconds> seconds_from(const pqxx::field& f) {
    if (f.is_null()) {
        return std::nullopt;
    }
    return std::chrono::seconds{f.as<std::int64_t>()};
}

// A statement parameter for BIDDING_FROM_MS.
std::string ms_param(const std::optional<timestamp>& t) {
    return t ? std::to_string(t->time_since_epoch().count()) : std::string("-1");
}

history_entry history_from(const pqxx::row& r, int first = 0) {
    // columns: BIDDING_HISTORY_COLUMNS; the increment is the auction's, set by the caller
    history_entry e;
    e.seq = r[first].as<seq_t>();
    e.bidder = r[first + 1].as<std::string>();
    e.price = r[first + 2].as<cents>();
    e.added_at = r[first + 3].as<std::string>();
    e.ends_at = timestamp_from(r[first + 4]);
    return e;
}

auction_terms terms_from(const pqxx::row& r, int first) {
    // columns: ends_at (ms), extend_window, extend_by, min_increment (cents)
    auction_terms t;
    t.ends_at = timestamp_from(r[first]);
    t.extend_window = seconds_from(r[first + 1]);
    t.extend_by = seconds_from(r[first + 2]);
    t.min_increment = r[first + 3].as<cents>();
    return t;
}

const std::string select_auction_sql = "SELECT " BIDDING_AUCTION_COLUMNS("") " FROM bids_bid WHERE id = $1";
const std::string select_history_sql =
    "SELECT " BIDDING_HISTORY_COLUMNS("")
    " FROM bids_bidhistory WHERE bid_id = $1 ORDER BY id DESC LIMIT $2";

auction auction_from(const pqxx::row& r, const std::vector<history_entry>& newest_first) {
    auction a;
    a.id = r[0].as<auction_id>();
    a.name = r[1].as<std::string>();
    a.status = parse_status(r[2].as<std::string>());
    a.initial_price = r[3].as<cents>();
    a.created_at = r[4].as<std::string>();
    a.terms = terms_from(r, 5);
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
    // Asynchronous: the socket exists before the connection completes, so the watchdog can
    // bound the connect by the call's deadline too.
    explicit connection_holder(const std::string& conninfo) : conn(conninfo) {}
    pqxx::asyncconnection conn;
};

namespace {

// One line for the logs: libpq's messages name host and port, never the password.
std::string one_line(std::string message) {
    std::replace_if(message.begin(), message.end(), [](char ch) { return ch == '\n' || ch == '\t'; }, ' ');
    while (!message.empty() && message.back() == ' ') {
        message.pop_back();
    }
    return message;
}

// An idle connection the server has written to has been closed by it (a restart sends a FATAL
// message, then EOF): using it would fail. Nothing is expected on an idle pool connection.
bool closed_by_server(int fd) {
    if (fd < 0) {
        return true;
    }
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, 0) != 0;
}

}  // namespace

postgres_store::postgres_store(std::string conninfo, store_options options)
    : conninfo_(std::move(conninfo)), options_(options) {}

postgres_store::~postgres_store() = default;

store_factory postgres_store::factory(std::string conninfo, store_options options) {
    return [conninfo = std::move(conninfo), options](connection_watchdog* watchdog) -> std::unique_ptr<auction_store> {
        auto o = options;
        o.watchdog = watchdog;
        return std::make_unique<postgres_store>(conninfo, o);
    };
}

void postgres_store::drop_connection() noexcept { conn_.reset(); }

pqxx::connection_base& postgres_store::conn() {
    if (conn_ && (!conn_->conn.is_open() || closed_by_server(conn_->conn.sock()))) {
        conn_.reset();
    }
    if (conn_) {
        fresh_ = false;
        return conn_->conn;
    }
    if (clock::now() >= deadline_) {
        ++failures_;
        throw store_unavailable(store_failure::timed_out, "no time left to connect to Postgres");
    }
    bool cut = false;
    try {
        auto holder = std::make_unique<connection_holder>(conninfo_);
        {
            watchdog_guard guard(options_.watchdog, holder->conn.sock(), deadline_, &cut);
            // The first statement completes the connection (under the watchdog); a broken one is
            // never reused: the holder is dropped and a new one made, deadline-bound.
            std::string settings;
            const auto set = [&](const char* name, std::chrono::milliseconds value) {
                if (value.count() > 0) {
                    settings += "SET " + std::string(name) + " = " + std::to_string(value.count()) + "; ";
                }
            };
            set("statement_timeout", options_.statement_timeout);
            set("lock_timeout", options_.lock_timeout);
            set("idle_in_transaction_session_timeout", options_.idle_in_transaction_timeout);
            pqxx::nontransaction(holder->conn).exec(settings.empty() ? std::string("SELECT 1") : settings);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
            // Never reconnected behind the store's back: a new connection would have neither the
            // settings above nor, in a bid round, the round's transaction block.
            holder->conn.inhibit_reactivation(true);
#pragma GCC diagnostic pop
        }
        conn_ = std::move(holder);
    } catch (const std::exception& e) {
        ++failures_;
        if (cut) {
            throw store_unavailable(store_failure::timed_out, "connecting to Postgres timed out");
        }
        throw store_unavailable(store_failure::cannot_connect, "cannot connect to Postgres: " + one_line(e.what()));
    }
    if (ever_connected_ && options_.reconnects != nullptr) {
        options_.reconnects->fetch_add(1, std::memory_order_relaxed);
    }
    ever_connected_ = true;
    fresh_ = true;
    return conn_->conn;
}

void postgres_store::connect() { (void)conn(); }

// Any libpqxx failure leaves the connection in an unknown state: drop it (the next call
// reconnects) and report why. A reused connection that broke before the call could have
// changed anything is retried once on a fresh one: reads always, a transaction only when it
// did not get past BEGIN.
template <class F>
auto postgres_store::with_connection(retry policy, F&& body) {
    for (int attempt = 0;; ++attempt) {
        bool cut = false;
        bool was_fresh = false;
        try {
            auto& c = conn();
            was_fresh = fresh_;
            write_started_ = false;
            watchdog_guard guard(options_.watchdog, c.sock(), deadline_, &cut);
            return body(c);
        } catch (const store_unavailable&) {
            throw;
        } catch (const pqxx::in_doubt_error&) {
            drop_connection();
            ++failures_;
            throw;
        } catch (const pqxx::broken_connection& e) {
            drop_connection();
            if (!cut && attempt == 0 && !was_fresh && (policy == retry::reads || !write_started_) &&
                clock::now() < deadline_) {
                continue;  // a stale pooled connection (e.g. Postgres restarted meanwhile)
            }
            ++failures_;
            if (cut) {
                throw store_unavailable(store_failure::timed_out, "Postgres did not answer in time");
            }
            throw store_unavailable(store_failure::connection_lost, one_line(e.what()));
        } catch (const pqxx::failure& e) {
            drop_connection();
            if (cut) {
                ++failures_;
                throw store_unavailable(store_failure::timed_out, "Postgres did not answer in time");
            }
            // statement_timeout and lock_timeout end here too: the server answered, it is up.
            throw store_unavailable(store_failure::query_failed, one_line(e.what()));
        } catch (...) {
            // Whatever else went wrong, the connection may be inside a transaction block.
            drop_connection();
            throw;
        }
    }
}

std::optional<auction_snapshot> postgres_store::load_snapshot(auction_id id, std::size_t history_limit,
                                                              std::optional<seq_t> since) {
    return with_connection(retry::reads, [&](pqxx::connection_base& c) -> std::optional<auction_snapshot> {
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
                "SELECT " BIDDING_HISTORY_COLUMNS("")
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
        for (auto& e : snap.entries) {
            e.min_increment = snap.info.terms.min_increment;
        }
        return snap;
    });
}

std::vector<history_entry> postgres_store::history_after(auction_id id, seq_t after_seq, std::size_t limit) {
    return with_connection(retry::reads, [&](pqxx::connection_base& c) {
        pqxx::read_transaction tx(c);
        std::vector<history_entry> out;
        for (const auto& r : tx.exec_params("SELECT " BIDDING_HISTORY_COLUMNS("h.") ", (b.min_increment * 100)::bigint "
                                            "FROM bids_bidhistory h JOIN bids_bid b ON b.id = h.bid_id "
                                            "WHERE h.bid_id = $1 AND h.id > $2 ORDER BY h.id LIMIT $3",
                                            id, after_seq, static_cast<std::int64_t>(limit))) {
            out.push_back(history_from(r));
            out.back().min_increment = r[history_column_count].as<cents>();
        }
        tx.commit();
        return out;
    });
}

placement postgres_store::place_bids(auction_id id, std::span<const bid_request> bids,
                                     clock::time_point resolve_until) {
    const auction_bids group{id, bids};
    return std::move(decide_groups(std::span<const auction_bids>(&group, 1), resolve_until).front());
}

std::vector<placement> postgres_store::place_bids_many(std::span<const auction_bids> groups,
                                                       clock::time_point resolve_until) {
    try {
        return decide_groups(groups, resolve_until);
    } catch (const store_unavailable& e) {
        // One transaction: nothing of any group was stored.
        return std::vector<placement>(groups.size(), placement::unavailable_because(e.what()));
    }
}

namespace {

// "{1,2,3}": an array parameter of ids (digits only, nothing to escape).
std::string id_array(std::span<const auction_bids> groups) {
    std::vector<auction_id> ids;
    ids.reserve(groups.size());
    for (const auto& g : groups) {
        ids.push_back(g.id);
    }
    // Ascending: every process takes the row locks in the same order, so batches never deadlock.
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    std::string text = "{";
    for (const auto id : ids) {
        text += (text.size() > 1 ? "," : "") + std::to_string(id.value());
    }
    return text + "}";
}

}  // namespace

std::vector<placement> postgres_store::decide_groups(std::span<const auction_bids> groups,
                                                     clock::time_point resolve_until) {
    std::vector<placement> results;
    std::int64_t txid = 0;
    bool wrote = false;
    const auto failures_before = failures_;
    try {
        with_connection(retry::none, [&](pqxx::connection_base& c) {
            results.assign(groups.size(), placement{});
            txid = 0;
            wrote = false;
            // The round keeps its own transaction block, so that it takes three round trips, not
            // five: "BEGIN; lock; read", the INSERT, and COMMIT (or ROLLBACK). On a hot auction
            // the lock is held for the last two only. Any failure drops the connection
            // (with_connection), which ends the block and releases the locks.
            pqxx::nontransaction tx(c);
            // One auction (a hot one, or a quiet pod): the plain statements, which Postgres
            // plans faster than the array forms. The ids are digits only.
            const bool one = groups.size() == 1;
            const auto ids = one ? std::to_string(groups.front().id.value()) + "::bigint"
                                 : "ANY(" + tx.quote(id_array(groups)) + "::bigint[])";
            // The row locks serialize every decision on these auctions, across all processes
            // (ORDER BY is applied before the locks are taken). The last statement has a snapshot
            // of its own, taken after the locks (each statement of a message has one): it sees
            // every bid committed by whoever held them before, which one statement with the lock
            // would not. It also reads the database's clock, by which every bid here is decided
            // (a bid that waited for a lock is judged by when it is decided, not when it began
            // waiting), and the transaction's id, which tells later what became of it if its
            // COMMIT is cut.
            const auto rows = tx.exec(
                "BEGIN; SELECT 1 FROM bids_bid WHERE id = " + ids + (one ? "" : " ORDER BY id") +
                " FOR UPDATE; SELECT " BIDDING_ROUND_STATE " FROM bids_bid b LEFT JOIN LATERAL (SELECT price, id "
                "FROM bids_bidhistory WHERE bid_id = b.id ORDER BY id DESC LIMIT 1) h ON true WHERE b.id = " + ids);
            struct state {
                auction_status status;
                auction_terms terms;
                cents current;
                seq_t last;
                bool extended;
            };
            std::unordered_map<auction_id, state> states;
            timestamp now{};
            for (const auto& r : rows) {
                // One clock for the whole round (the rows' readings differ by microseconds).
                if (states.empty()) {
                    now = timestamp{std::chrono::milliseconds{r[8].as<std::int64_t>()}};
                    txid = r[3].as<std::int64_t>();
                }
                state st{parse_status(r[1].as<std::string>()), terms_from(r, 4), r[2].as<cents>(), seq_t{0}, false};
                if (!r[9].is_null()) {
                    st.current = r[9].as<cents>();
                    st.last = r[10].as<seq_t>();
                }
                states.emplace(r[0].as<auction_id>(), st);
            }
            // The verdicts, each bid against the price (and end) the one before it left.
            struct slot {
                std::size_t group, bid;
            };
            std::vector<slot> accepted;
            std::unordered_map<auction_id, seq_t> prev;
            for (std::size_t g = 0; g < groups.size(); ++g) {
                const auto it = states.find(groups[g].id);
                if (it == states.end()) {
                    results[g].outcome = placement::result::not_found;
                    continue;
                }
                auto& st = it->second;
                prev.emplace(groups[g].id, st.last);
                for (std::size_t b = 0; b < groups[g].bids.size(); ++b) {
                    const auto& bid = groups[g].bids[b];
                    bid_outcome out;
                    const auto decision = judge_bid(st.status, st.terms, st.current, bid.price, now);
                    out.verdict = decision.verdict;
                    out.current_price = st.current;
                    out.min_price = min_price(st.current, st.terms.min_increment);
                    if (out.verdict == bid_verdict::accepted) {
                        st.current = bid.price;
                        st.extended = st.extended || decision.ends_at != st.terms.ends_at;
                        st.terms.ends_at = decision.ends_at;
                        out.entry.ends_at = decision.ends_at;
                        out.entry.min_increment = st.terms.min_increment;
                        accepted.push_back({g, b});
                    }
                    results[g].bids.push_back(std::move(out));
                }
            }
            if (accepted.empty()) {
                // Nothing to keep: ROLLBACK ends the block without the durable flush a COMMIT of
                // the row locks' transaction would wait for.
                tx.exec("ROLLBACK");
                return 0;
            }
            write_started_ = true;
            // Every accepted bid of every auction in one INSERT, stamped with the decision's time,
            // each with the auction's end after it; the soft close's new ends in the same
            // statement. Postgres parses and plans it anew each time, at a cost that grows with its
            // text: the rows are bare literals (typed by the first), the times converted once.
            std::string sql;
            std::string moved;
            for (const auto& [id, st] : states) {
                if (st.extended) {
                    moved += (moved.empty() ? "(" : ", (") + std::to_string(id.value()) + ", " +
                             ms_param(st.terms.ends_at) + ")";
                }
            }
            if (!moved.empty()) {
                sql += "WITH moved AS (UPDATE bids_bid b SET ends_at = " BIDDING_FROM_MS("m.e") " FROM (VALUES " +
                       moved + ") AS m(id, e) WHERE b.id = m.id) ";
            }
            sql += "INSERT INTO bids_bidhistory (bid_id, bidder_name, price, added_at, name, ends_at) "
                   "SELECT v.b, v.n, v.p, ('epoch'::timestamptz + " +
                   std::to_string(now.time_since_epoch().count()) +
                   "::bigint * interval '1 millisecond'), '', " BIDDING_FROM_MS("v.e") " FROM (VALUES ";
            for (std::size_t k = 0; k < accepted.size(); ++k) {
                const auto& a = accepted[k];
                const auto& bid = groups[a.group].bids[a.bid];
                sql += k == 0 ? "(" : ", (";
                sql += std::to_string(groups[a.group].id.value()) + (k == 0 ? "::bigint, " : ", ");
                sql += tx.quote(bid.name) + (k == 0 ? "::text, " : ", ");
                sql += tx.quote(format_cents(bid.price)) + (k == 0 ? "::numeric, " : ", ");
                sql += ms_param(results[a.group].bids[a.bid].entry.ends_at) + (k == 0 ? "::bigint)" : ")");
            }
            sql += ") AS v(b, n, p, e) RETURNING " BIDDING_HISTORY_COLUMNS("") ", bid_id";
            const auto inserted = tx.exec(sql);
            // The ids are drawn in VALUES order; each row is checked to be the bid it is paired
            // with, so that a bid is never told another's seq.
            std::vector<pqxx::row> sorted(inserted.begin(), inserted.end());
            std::sort(sorted.begin(), sorted.end(),
                      [](const pqxx::row& x, const pqxx::row& y) { return x[0].as<seq_t>() < y[0].as<seq_t>(); });
            if (sorted.size() != accepted.size()) {
                throw std::runtime_error("the INSERT returned " + std::to_string(sorted.size()) + " rows for " +
                                         std::to_string(accepted.size()) + " bids");
            }
            for (std::size_t k = 0; k < accepted.size(); ++k) {
                const auto& a = accepted[k];
                const auto& bid = groups[a.group].bids[a.bid];
                auto& out = results[a.group].bids[a.bid];
                auto entry = history_from(sorted[k]);
                if (sorted[k][history_column_count].as<auction_id>() != groups[a.group].id ||
                    entry.bidder != bid.name || entry.price != bid.price || entry.ends_at != out.entry.ends_at) {
                    throw std::runtime_error("the INSERT's rows came back in an unexpected order");
                }
                entry.min_increment = out.entry.min_increment;
                auto& p = prev.at(groups[a.group].id);
                out.prev_seq = p;
                p = entry.seq;
                out.entry = std::move(entry);
            }
            wrote = true;
            try {
                tx.exec("COMMIT");
            } catch (const pqxx::sql_error& e) {
                if (e.sqlstate().empty()) {
                    // Not an answer from the server: the COMMIT may have been carried out.
                    throw pqxx::in_doubt_error(e.what());
                }
                throw;  // the server refused it: nothing was kept
            } catch (const pqxx::broken_connection& e) {
                throw pqxx::in_doubt_error(e.what());
            }
            return 0;
        });
        return results;
    } catch (const pqxx::in_doubt_error& e) {
        // The connection broke during COMMIT: ask the server, never guess.
        spdlog::warn("commit outcome unknown for {} auction(s) (transaction {}): {}", groups.size(), txid,
                     one_line(e.what()));
    }
    if (!wrote) {
        return results;  // nothing was written: the verdicts stand whatever became of the transaction
    }
    const auto saved_deadline = deadline_;
    deadline_ = resolve_until;
    for (;;) {
        commit_status status = commit_status::unknown;
        try {
            status = transaction_status(txid);
        } catch (const store_unavailable& e) {
            spdlog::debug("cannot ask about transaction {} yet: {}", txid, e.what());
        }
        if (status == commit_status::committed || status == commit_status::aborted) {
            // The server answered: the database is up, whatever the broken connection suggested.
            deadline_ = saved_deadline;
            failures_ = failures_before;
        }
        if (status == commit_status::committed) {
            return results;
        }
        if (status == commit_status::aborted) {
            throw store_unavailable(store_failure::query_failed,
                                    "the connection broke during COMMIT and the transaction did not commit");
        }
        if (clock::now() + std::chrono::milliseconds(50) >= resolve_until) {
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(status == commit_status::in_progress ? 10 : 50));
    }
    deadline_ = saved_deadline;
    for (auto& r : results) {
        const bool has_accepted = std::any_of(r.bids.begin(), r.bids.end(),
                                              [](const bid_outcome& o) { return o.verdict == bid_verdict::accepted; });
        if (has_accepted) {
            // Only an auction with a bid written is in doubt: the others' verdicts stand.
            r.outcome = placement::result::in_doubt;
            r.txid = txid;
        }
    }
    return results;
}

commit_status postgres_store::transaction_status(std::int64_t txid) {
    return with_connection(retry::reads, [&](pqxx::connection_base& c) {
        pqxx::nontransaction tx(c);
        const auto r = tx.exec_params("SELECT txid_status($1)", txid);
        if (r.empty() || r[0][0].is_null()) {
            return commit_status::unknown;  // too old to know: cannot happen within seconds
        }
        const auto text = r[0][0].as<std::string>();
        return text == "committed" ? commit_status::committed
               : text == "aborted" ? commit_status::aborted
                                   : commit_status::in_progress;
    });
}

auction postgres_store::create_auction(const new_auction& spec) {
    return with_connection(retry::none, [&](pqxx::connection_base& c) {
        pqxx::work tx(c);
        write_started_ = true;
        // The end is judged by the database's clock, as every bid will be.
        const timestamp now{std::chrono::milliseconds{tx.exec1("SELECT " BIDDING_CLOCK_MS)[0].as<std::int64_t>()}};
        std::optional<timestamp> ends_at = spec.ends_at;
        if (spec.duration) {
            ends_at = now + *spec.duration;
        }
        if (ends_at && *ends_at <= now) {
            throw end_time_refused("ends_at must be after the server's current time, " + format_timestamp(now));
        }
        if (ends_at && *ends_at > now + max_auction_duration) {
            throw end_time_refused("ends_at must be at most 365 days after the server's current time, " +
                                   format_timestamp(now));
        }
        const auto seconds_param = [](const std::optional<std::chrono::seconds>& s) {
            return s ? std::to_string(s->count()) : std::string("0");
        };
        const auto id = tx.exec_params1("INSERT INTO bids_bid (name, initial_price, created_at, status, ends_at, "
                                        "extend_window, extend_by, min_increment) "
                                        "VALUES ($1, $2::numeric, now(), 'open', " BIDDING_FROM_MS("$3") ", "
                                        "NULLIF($4::integer, 0), NULLIF($5::integer, 0), $6::numeric) RETURNING id",
                                        spec.name, format_cents(spec.initial_price), ms_param(ends_at),
                                        seconds_param(spec.extend_window), seconds_param(spec.extend_by),
                                        format_cents(spec.min_increment))[0]
                            .as<auction_id>();
        const auto head = tx.exec_params(select_auction_sql, id);
        auto a = auction_from(head[0], {});
        tx.commit();
        return a;
    });
}

namespace {

// The one close, inside the caller's transaction: locks the row, closes it if it is open (and
// records the close, once), and announces the result in any case (a NOTIFY, delivered when the
// transaction commits). Not found: result.found is false and nothing is announced.
close_result close_in(pqxx::work& tx, auction_id id, const std::string& reason,
                      const auction_store::close_announcement& announcement) {
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
        "SELECT (price * 100)::bigint, bidder_name FROM bids_bidhistory WHERE bid_id = $1 ORDER BY id DESC LIMIT 1", id);
    if (!last.empty()) {
        result.final_price = last[0][0].as<cents>();
        result.winner = last[0][1].as<std::string>();
    }
    if (result.was_open) {
        tx.exec_params0("UPDATE bids_bid SET status = 'closed' WHERE id = $1", id);
        // The primary key makes a second close of one auction an error, never a second row.
        tx.exec_params0("INSERT INTO bidding_auction_closes (bid_id, closed_at, final_price, winner, reason) "
                        "VALUES ($1, clock_timestamp(), $2::numeric, NULLIF($3, ''), $4)",
                        id, format_cents(result.final_price), result.winner.value_or(""), reason);
    }
    // Delivered to every listening server when (and only when) the close commits. Sent again
    // for an already closed auction: harmless, and it reaches a server that missed the first.
    tx.exec_params("SELECT pg_notify($1, $2)", std::string(auction_closed_channel), announcement(id, result));
    return result;
}

}  // namespace

close_result postgres_store::close_auction(auction_id id, const close_announcement& announcement) {
    return with_connection(retry::none, [&](pqxx::connection_base& c) {
        pqxx::work tx(c);
        write_started_ = true;
        auto result = close_in(tx, id, "closed", announcement);
        tx.commit();
        return result;
    });
}

ended_sweep postgres_store::close_ended_auctions(const close_announcement& announcement, std::size_t limit) {
    ended_sweep sweep;
    // A read first, every sweep: the clock (for the pods' offset, measured around this one round
    // trip) and whether anything is due at all, which it almost never is.
    bool due = false;
    with_connection(retry::reads, [&](pqxx::connection_base& c) {
        pqxx::nontransaction tx(c);
        const auto before = std::chrono::system_clock::now();
        const auto r = tx.exec1("SELECT " BIDDING_CLOCK_MS ", EXISTS (SELECT 1 FROM bids_bid WHERE status = 'open' "
                                "AND ends_at <= clock_timestamp())");
        const auto after = std::chrono::system_clock::now();
        const auto middle = before + (after - before) / 2;
        sweep.clock_offset = std::chrono::milliseconds{r[0].as<std::int64_t>()} -
                             std::chrono::duration_cast<std::chrono::milliseconds>(middle.time_since_epoch());
        due = r[1].as<bool>();
        return 0;
    });
    if (!due) {
        return sweep;
    }
    return with_connection(retry::none, [&](pqxx::connection_base& c) {
        sweep.closed.clear();
        pqxx::work tx(c);
        write_started_ = true;
        // FOR UPDATE waits behind the bids deciding on the row; when the row changed meanwhile
        // (closed by another pod, or its end moved by a bid) Postgres checks the condition again
        // on the new row, so an auction is closed once, and only once it has ended.
        const auto rows = tx.exec_params("SELECT id FROM bids_bid WHERE status = 'open' AND ends_at <= clock_timestamp() "
                                         "ORDER BY id LIMIT $1 FOR UPDATE",
                                         static_cast<std::int64_t>(limit));
        for (const auto& r : rows) {
            const auto id = r[0].as<auction_id>();
            ended_auction ended{id, {}, {}};
            ended.result = close_in(tx, id, "ended", [&](auction_id a, const close_result& cr) {
                ended.announcement = announcement(a, cr);
                return ended.announcement;
            });
            sweep.closed.push_back(std::move(ended));
        }
        tx.commit();
        return sweep;
    });
}

namespace {

const std::string list_sql_head =
    "SELECT " BIDDING_AUCTION_COLUMNS("b.") ", " BIDDING_HISTORY_COLUMNS("h.") " FROM bids_bid b "
    "LEFT JOIN LATERAL (SELECT id, bidder_name, price, added_at, ends_at FROM bids_bidhistory "
    "  WHERE bid_id = b.id ORDER BY id DESC LIMIT 1) h ON true ";

auction auction_with_newest(const pqxx::row& r) {
    std::vector<history_entry> newest;
    if (!r[auction_column_count].is_null()) {
        newest.push_back(history_from(r, auction_column_count));
    }
    return auction_from(r, newest);
}

}  // namespace

std::vector<auction> postgres_store::list_auctions() {
    return list_auctions(std::nullopt, std::numeric_limits<std::int32_t>::max(), 0).items;
}

postgres_store::auction_page postgres_store::list_auctions(std::optional<auction_status> status, std::size_t limit,
                                                           std::size_t offset) {
    return with_connection(retry::reads, [&](pqxx::connection_base& c) {
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
    return with_connection(retry::reads, [&](pqxx::connection_base& c) -> std::optional<auction> {
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
    with_connection(retry::none, [&](pqxx::connection_base& c) {
        pqxx::work tx(c);
        write_started_ = true;
        // Explicit ids, as the Django app's fixtures have them; existing rows are left alone.
        tx.exec(
            "INSERT INTO bids_bid (id, name, initial_price, created_at, status) OVERRIDING SYSTEM VALUE VALUES "
            "(1, 'Vintage Camera', 100.00, now(), 'open'), "
            "(2, 'Antique Vase', 200.00, now(), 'open'), "
            "(3, 'Rare Book', 150.00, now(), 'closed') "
            "ON CONFLICT (id) DO NOTHING");
        // The timed demo, restarted by every seed: found by its name (id 4 when that is free), its
        // clients told it closed, its bids and close removed, open again for demo_duration.
        const auto demo = tx.exec_params("SELECT id FROM bids_bid WHERE name = $1 ORDER BY id LIMIT 1",
                                         std::string(demo_auction_name));
        std::optional<auction_id> demo_id;
        if (!demo.empty()) {
            demo_id = demo[0][0].as<auction_id>();
            close_in(tx, *demo_id, "closed", [](auction_id a, const close_result& r) {
                return serialize_bid_closed(a, r.final_price, r.winner);
            });
            tx.exec_params0("DELETE FROM bidding_auction_closes WHERE bid_id = $1", *demo_id);
            tx.exec_params0("DELETE FROM bids_bidhistory WHERE bid_id = $1", *demo_id);
        } else if (tx.exec("SELECT 1 FROM bids_bid WHERE id = 4").empty()) {
            tx.exec("INSERT INTO bids_bid (id, name, initial_price, created_at, status) OVERRIDING SYSTEM VALUE "
                    "VALUES (4, '" + std::string(demo_auction_name) + "', 50.00, now(), 'open')");
            demo_id = auction_id{4};
        } else {
            demo_id = tx.exec_params1("INSERT INTO bids_bid (name, initial_price, created_at, status) "
                                      "VALUES ($1, 50.00, now(), 'open') RETURNING id",
                                      std::string(demo_auction_name))[0]
                          .as<auction_id>();
        }
        tx.exec_params0("UPDATE bids_bid SET status = 'open', initial_price = 50.00, created_at = now(), "
                        "ends_at = date_trunc('milliseconds', clock_timestamp()) + $2::integer * interval '1 second', "
                        "extend_window = 120, extend_by = 120, min_increment = 1.00 WHERE id = $1",
                        *demo_id, static_cast<int>(demo_duration.count()));
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
