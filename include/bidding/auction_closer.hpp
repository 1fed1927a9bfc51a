#pragma once
// Ends the timed auctions on time: every CLOSE_CHECK_INTERVAL it asks Postgres, through a store
// of its own, which open auctions have passed their end by the database's clock, and closes them
// (auction_closing: one close per auction however many pods sweep at once, announced with
// NOTIFY to every pod's close_listener). Each sweep also measures this process's clock offset to
// the database's, which server_clock applies to the server_time clients get. Runs on its own
// thread: the store is blocking and never touches the socket threads.
#include <bidding/auction_store.hpp>
#include <bidding/server_clock.hpp>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace bidding {

class connection_watchdog;

class auction_closer {
public:
    // Told of each close this process committed (the pod publishes it on Redis, as the API does).
    using closed_fn = std::function<void(auction_id, const std::string& bid_closed)>;

    // `deadline`: how long one sweep may take (DB_TIMEOUT) before its connection is cut.
    auction_closer(const store_factory& make_store, connection_watchdog* watchdog, std::chrono::milliseconds interval,
                   std::chrono::milliseconds deadline, server_clock& clock, closed_fn on_closed);
    ~auction_closer();
    auction_closer(const auction_closer&) = delete;
    auction_closer& operator=(const auction_closer&) = delete;

    void start();
    void stop();

    // One sweep now, on the calling thread (the thread's loop; the unit tests).
    void sweep();

private:
    void run();

    std::unique_ptr<auction_store> store_;
    std::chrono::milliseconds interval_;
    std::chrono::milliseconds deadline_;
    server_clock& clock_;
    closed_fn on_closed_;
    bool failing_{false};  // the last sweep failed: log the outage once
    std::mutex mutex_;
    std::condition_variable wake_;
    bool stopping_{false};
    std::thread thread_;
};

}  // namespace bidding
