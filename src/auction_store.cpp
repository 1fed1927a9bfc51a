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
            results.push_back(placement::unavailable_because(e.what()));
        }
    }
    return results;
}

}  // namespace bidding
