#pragma once
// What travels from the bid path to every session of an auction: messages serialized once,
// shared by all recipients, tagged with their seq so each session can drop what it already has.
#include <bidding/auction.hpp>

#include <memory>
#include <string>
#include <vector>

namespace bidding {

using shared_text = std::shared_ptr<const std::string>;

struct fanout_message {
    seq_t prev{0};  // seq of the auction's accepted bid before this one (0: none): a gap shows
    seq_t seq{0};
    shared_text text;  // the serialized new_bid
};

// Consecutive accepted bids of one auction, in increasing seq.
using fanout_batch = std::shared_ptr<const std::vector<fanout_message>>;

inline shared_text make_shared_text(std::string s) { return std::make_shared<const std::string>(std::move(s)); }

}  // namespace bidding
