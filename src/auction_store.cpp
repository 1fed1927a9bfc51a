#include <bidding/auction_store.hpp>

namespace bidding {

std::vector<placement> auction_store::place_bids_many(std::span<const auction_bids> groups,
                                                      clock::time_point resolve_until) {
    std::vector<placement> results;
    results.reserve(groups.size());
    for (const auto& g : groups) {
        try {
            results.push_back(place_bids(g.id, g.bids, resolve_until));
        } catch (const store_unavailable& e) {
            placement failed;
            failed.outcome = placement::result::unavailable;
            failed.failure = e.what();
            results.push_back(std::move(failed));
        }
    }
    return results;
}

}  // namespace bidding
