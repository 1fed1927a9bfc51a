#pragma once
// A log-linear (HDR-style) histogram of non-negative integers, used for latencies in microseconds.
// Values below 256 have their own bucket; above, each power-of-two range is split into 128
// buckets, so a bucket is at most 1/128 (0.8%) of its value wide. Values up to 2^40 (12 days in
// microseconds) are kept; larger ones are clamped into the last bucket (max() stays exact).
// Not thread-safe: one histogram per thread, merged at the end.

#include <cstdint>
#include <vector>

namespace bench {

class Histogram {
public:
    Histogram();
    void record(uint64_t value);
    void merge(const Histogram& other);
    void clear();

    uint64_t count() const { return count_; }
    uint64_t min() const { return count_ ? min_ : 0; }
    uint64_t max() const { return max_; }
    double mean() const { return count_ ? static_cast<double>(sum_) / static_cast<double>(count_) : 0.0; }
    // The smallest bucket value at or below which `percent`% of the values fall (the bucket's
    // highest value, never above max()); 0 when empty.
    uint64_t percentile(double percent) const;

    static int bucket_of(uint64_t value);
    static uint64_t highest_in_bucket(int bucket);
    static uint64_t lowest_in_bucket(int bucket);
    static constexpr int kLinear = 256;       // values 0..255: exact
    static constexpr int kHalf = 128;         // buckets per power of two above
    static constexpr int kMaxShift = 33;      // 2^40 is the top of the range
    static constexpr int kBuckets = kLinear + kMaxShift * kHalf;

private:
    std::vector<uint64_t> counts_;
    uint64_t count_ = 0;
    uint64_t min_ = UINT64_MAX;
    uint64_t max_ = 0;
    uint64_t sum_ = 0;
};

int histogram_self_test();

}  // namespace bench
