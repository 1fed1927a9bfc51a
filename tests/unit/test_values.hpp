#pragma once
// Small helpers for spelling the strong types' values in unit tests.
#include <bidding/auction.hpp>

#include <cstdint>
#include <initializer_list>
#include <vector>

namespace bidding::testing {

// seq_list({1, 2, 3}): the seqs 1, 2 and 3, in that order.
inline std::vector<seq_t> seq_list(std::initializer_list<std::int64_t> values) {
    std::vector<seq_t> out;
    out.reserve(values.size());
    for (const auto v : values) {
        out.emplace_back(v);
    }
    return out;
}

}  // namespace bidding::testing
