#include <bidding/feed_reader.hpp>
#include <bidding/protocol.hpp>

#include <boost/asio/steady_timer.hpp>
#include <spdlog/spdlog.h>

#include <memory>

namespace bidding {

void feed_reader::read_after(auction_id id, seq_t after, std::size_t limit) {
    const bool queued = db_.post(db_pool::job{
        [this, id, after, limit](auction_store& store) {
            try {
                const auto rows = store.history_after(id, after, limit);
                std::vector<feed_event> events;
                events.reserve(rows.size());
                seq_t prev = after;
                for (const auto& row : rows) {
                    events.push_back(feed_event{prev, row.seq, make_shared_text(serialize_new_bid(id, row))});
                    prev = row.seq;
                }
                registry_.fill_done(id, events, rows.size() < limit);
            } catch (const std::exception& e) {
                spdlog::debug("cannot read auction {} after seq {}: {}; retrying", id, after, e.what());
                retry_later(id);
            }
        },
        [this, id](db_pool::refusal) { retry_later(id); }, std::chrono::steady_clock::now() + timeout_});
    if (!queued) {
        retry_later(id);
    }
}

void feed_reader::retry_later(auction_id id) {
    registry_.fill_failed(id);
    auto timer = std::make_shared<boost::asio::steady_timer>(timers_, retry_after);
    timer->async_wait([timer, this, id](const boost::system::error_code& ec) {
        if (!ec) {
            registry_.resync(id);
        }
    });
}

}  // namespace bidding
