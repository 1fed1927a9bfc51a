#pragma once
// The registry's reads from the store: when an auction's feed on this pod sees a gap (a bid the
// bus lost, or the start of delivery), the missing rows are read on the database pool and handed
// back to the registry; a read that fails or is refused is asked for again half a second later.
#include <bidding/auction.hpp>
#include <bidding/db_pool.hpp>
#include <bidding/session_registry.hpp>

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstddef>

namespace bidding {

class feed_reader {
public:
    static constexpr std::chrono::milliseconds retry_after{500};

    // `timers`: where the retry waits; `timeout`: each read's deadline (DB_TIMEOUT).
    feed_reader(db_pool& db, session_registry& registry, boost::asio::io_context& timers,
                std::chrono::milliseconds timeout)
        : db_(db), registry_(registry), timers_(timers), timeout_(timeout) {}

    // session_registry::hooks::read_after
    void read_after(auction_id id, seq_t after, std::size_t limit);

private:
    void retry_later(auction_id id);

    db_pool& db_;
    session_registry& registry_;
    boost::asio::io_context& timers_;
    const std::chrono::milliseconds timeout_;
};

}  // namespace bidding
