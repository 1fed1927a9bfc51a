#pragma once
// Listens for auction closes committed by any process (the CLI, another pod) through Postgres
// LISTEN/NOTIFY, and closes the local sessions of that auction. Runs on its own thread with its
// own connection; reconnects with capped backoff, and after each (re)connect re-checks the
// auctions it serves in case a close was announced while it was away.
#include <bidding/session_registry.hpp>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

namespace bidding {

class connection_watchdog;

class close_listener {
public:
    // `watchdog` bounds each of its queries by `query_timeout` (a frozen Postgres is "down").
    close_listener(std::string conninfo, session_registry& registry, connection_watchdog* watchdog = nullptr,
                   std::chrono::milliseconds query_timeout = std::chrono::milliseconds(2000));
    ~close_listener();
    void start();
    void stop();
    // True while its Postgres connection is up: the pod's view of whether Postgres answers.
    bool connected() const { return connected_; }

private:
    void run();
    void listen_once();

    std::string conninfo_;
    session_registry& registry_;
    connection_watchdog* watchdog_;
    std::chrono::milliseconds query_timeout_;
    std::atomic<bool> stopping_{false};
    std::atomic<bool> connected_{false};
    std::thread thread_;
};

}  // namespace bidding
