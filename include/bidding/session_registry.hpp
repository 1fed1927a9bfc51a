#pragma once
// Which sessions follow which auction. Holds non-owning pointers: a session joins once its
// handshake is done and leaves in its destructor. Sending happens outside the lock.
#include <bidding/fanout.hpp>

#include <cstddef>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace bidding {

class websocket_session;

class session_registry {
public:
    void join(auction_id id, const std::shared_ptr<websocket_session>& session);
    void leave(auction_id id, const websocket_session* session);

    // new_bid messages to every session of the auction.
    void broadcast(auction_id id, const fanout_batch& batch);
    // bid_closed to every session of the auction, which then closes with 4003.
    void close_auction(auction_id id, const shared_text& message);
    // server_shutdown to every session, which then closes with 1012.
    void shutdown_all(const shared_text& message);

    std::vector<auction_id> auctions() const;
    std::size_t size() const;

private:
    using room = std::unordered_map<const websocket_session*, std::weak_ptr<websocket_session>>;

    std::vector<std::shared_ptr<websocket_session>> sessions_of(auction_id id) const;

    mutable std::mutex mutex_;
    std::unordered_map<auction_id, room> rooms_;
    std::size_t count_{0};
};

}  // namespace bidding
