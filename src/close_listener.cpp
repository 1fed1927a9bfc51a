#include <bidding/close_listener.hpp>
#include <bidding/auction_closing.hpp>
#include <bidding/backoff.hpp>
#include <bidding/connection_watchdog.hpp>
#include <bidding/postgres_store.hpp>
#include <bidding/protocol.hpp>

#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "pqxx_conversions.hpp"
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <optional>

namespace bidding {

namespace {

class closed_receiver : public pqxx::notification_receiver {
public:
    closed_receiver(pqxx::connection_base& c, session_registry& registry)
        : pqxx::notification_receiver(c, auction_closed_channel), registry_(registry) {}

    void operator()(const std::string& payload, int) override {
        // The payload is the bid_closed message itself, built once by the closing process.
        try {
            const auto id = closed_auction_of(payload);
            if (!id) {
                spdlog::warn("ignoring a malformed close notification");
                return;
            }
            spdlog::info("auction {} closed", *id);
            registry_.close_auction(*id, make_shared_text(payload));
        } catch (const std::exception& e) {
            spdlog::warn("close notification not delivered: {}", e.what());
        }
    }

private:
    session_registry& registry_;
};

}  // namespace

close_listener::close_listener(std::string conninfo, session_registry& registry, connection_watchdog* watchdog,
                               std::chrono::milliseconds query_timeout)
    : conninfo_(std::move(conninfo)), registry_(registry), watchdog_(watchdog), query_timeout_(query_timeout) {}

close_listener::~close_listener() { stop(); }

void close_listener::start() {
    thread_ = std::thread([this] { run(); });
}

void close_listener::stop() {
    stopping_ = true;
    if (thread_.joinable()) {
        thread_.join();
    }
}

void close_listener::run() {
    backoff retry(std::chrono::milliseconds(100), std::chrono::milliseconds(2000));
    bool warned = false;
    while (!stopping_) {
        try {
            listen_once();
            retry.reset();
        } catch (const std::exception& e) {
            if (connected_.exchange(false) || !warned) {  // once per outage
                retry.reset();
                spdlog::warn("lost Postgres ({}); retrying with backoff", e.what());
            }
            warned = true;
            const auto until = std::chrono::steady_clock::now() + retry.next();
            while (!stopping_ && std::chrono::steady_clock::now() < until) {
                std::this_thread::sleep_for(std::chrono::milliseconds(50));
            }
        }
    }
}

void close_listener::listen_once() {
    pqxx::connection conn(conninfo_);
    // LISTEN is a query too (issued by the receiver's constructor): a Postgres frozen right after
    // accepting the connection must not hold this thread, and the pod's readiness, past the deadline.
    std::optional<watchdog_guard> listening(std::in_place, watchdog_, conn.sock(),
                                            std::chrono::steady_clock::now() + query_timeout_, nullptr);
    closed_receiver receiver(conn, registry_);
    conn.get_notifs();
    listening.reset();
    connected_ = true;
    // A close committed while we were not listening: find it by reading the status back.
    const auto ids = registry_.auctions();
    if (!ids.empty()) {
        watchdog_guard guard(watchdog_, conn.sock(), std::chrono::steady_clock::now() + query_timeout_, nullptr);
        pqxx::read_transaction tx(conn);
        for (const auto id : ids) {
            const auto r = tx.exec_params(
                "SELECT b.status, (COALESCE(h.price, b.initial_price) * 100)::bigint, h.bidder_name FROM bids_bid b "
                "LEFT JOIN LATERAL (SELECT price, bidder_name FROM bids_bidhistory WHERE bid_id = b.id "
                "ORDER BY id DESC LIMIT 1) h ON true WHERE b.id = $1",
                id);
            if (!r.empty() && r[0][0].as<std::string>() != "open") {
                std::optional<std::string> winner;
                if (!r[0][2].is_null()) {
                    winner = r[0][2].as<std::string>();
                }
                registry_.close_auction(id, make_shared_text(serialize_bid_closed(id, r[0][1].as<cents>(), winner)));
            }
        }
        tx.commit();
    }
    unsigned idle_rounds = 0;
    while (!stopping_) {
        // Short waits keep stop() prompt; a notification wakes the wait at once.
        conn.await_notification(0, 200'000);
        // A stopped or restarted server may leave the socket quiet: ask, about once a second.
        if (++idle_rounds % 5 == 0) {
            // A frozen server (SIGSTOP, a partition) would block here for as long as TCP
            // allows: the watchdog cuts the connection at the deadline, which counts as down.
            watchdog_guard guard(watchdog_, conn.sock(), std::chrono::steady_clock::now() + query_timeout_, nullptr);
            pqxx::nontransaction(conn).exec("SELECT 1");
        }
        if (!conn.is_open()) {
            throw std::runtime_error("connection closed");
        }
    }
}

}  // namespace bidding
