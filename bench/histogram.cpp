#include "histogram.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdio>

namespace bench {

Histogram::Histogram() : counts_(kBuckets, 0) {}

int Histogram::bucket_of(uint64_t v) {
    if (v < static_cast<uint64_t>(kLinear)) return static_cast<int>(v);
    int msb = 63 - std::countl_zero(v);
    int shift = msb - 7;  // (v >> shift) is in [128, 256)
    if (shift > kMaxShift) return kBuckets - 1;
    return kLinear + (shift - 1) * kHalf + static_cast<int>((v >> shift) - kHalf);
}

uint64_t Histogram::lowest_in_bucket(int b) {
    if (b < kLinear) return static_cast<uint64_t>(b);
    int k = b - kLinear;
    int shift = k / kHalf + 1;
    uint64_t sub = static_cast<uint64_t>(k % kHalf + kHalf);
    return sub << shift;
}

uint64_t Histogram::highest_in_bucket(int b) {
    if (b < kLinear) return static_cast<uint64_t>(b);
    int k = b - kLinear;
    int shift = k / kHalf + 1;
    uint64_t sub = static_cast<uint64_t>(k % kHalf + kHalf);
    return ((sub + 1) << shift) - 1;
}

void Histogram::record(uint64_t v) {
    ++counts_[static_cast<size_t>(bucket_of(v))];
    ++count_;
    sum_ += v;
    if (v < min_) min_ = v;
    if (v > max_) max_ = v;
}

void Histogram::merge(const Histogram& o) {
    for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += o.counts_[i];
    count_ += o.count_;
    sum_ += o.sum_;
    min_ = std::min(min_, o.min_);
    max_ = std::max(max_, o.max_);
}

void Histogram::clear() {
    std::fill(counts_.begin(), counts_.end(), 0);
    count_ = sum_ = max_ = 0;
    min_ = UINT64_MAX;
}

uint64_t Histogram::percentile(double percent) const {
    if (count_ == 0) return 0;
    double want = std::ceil(percent / 100.0 * static_cast<double>(count_));
    uint64_t rank = static_cast<uint64_t>(std::clamp(want, 1.0, static_cast<double>(count_)));
    uint64_t seen = 0;
    for (int b = 0; b < kBuckets; ++b) {
        seen += counts_[static_cast<size_t>(b)];
        if (seen >= rank) return std::min(highest_in_bucket(b), max_);
    }
    return max_;
}

int histogram_self_test() {
    int failures = 0;
    auto check = [&](bool ok, const char* what) {
        if (!ok) {
            ++failures;
            std::fprintf(stderr, "self-test FAILED: %s\n", what);
        }
    };
    // Buckets tile the range without gaps and stay within 1% of their values.
    uint64_t expect_low = 0;
    bool tiled = true, precise = true;
    for (int b = 0; b < Histogram::kBuckets; ++b) {
        if (Histogram::lowest_in_bucket(b) != expect_low) tiled = false;
        uint64_t lo = Histogram::lowest_in_bucket(b), hi = Histogram::highest_in_bucket(b);
        if (lo >= Histogram::kLinear && static_cast<double>(hi - lo + 1) / static_cast<double>(lo) > 0.0079) precise = false;
        expect_low = hi + 1;
    }
    check(tiled, "histogram buckets tile the range");
    check(precise, "histogram buckets are within 0.8%");
    check(Histogram::highest_in_bucket(Histogram::kBuckets - 1) >= 60'000'000ull, "histogram reaches 60 s in us");
    for (uint64_t v : {0ull, 1ull, 255ull, 256ull, 257ull, 1000ull, 65535ull, 123456789ull, (1ull << 40) - 1}) {
        int b = Histogram::bucket_of(v);
        if (!(Histogram::lowest_in_bucket(b) <= v && v <= Histogram::highest_in_bucket(b))) {
            ++failures;
            std::fprintf(stderr, "self-test FAILED: %llu not inside its bucket\n", static_cast<unsigned long long>(v));
        }
    }
    Histogram h;
    for (uint64_t v = 1; v <= 10000; ++v) h.record(v);
    check(h.count() == 10000 && h.min() == 1 && h.max() == 10000, "histogram count/min/max");
    auto near = [](uint64_t got, double want) { return std::fabs(static_cast<double>(got) - want) <= want * 0.01 + 1; };
    check(near(h.percentile(50), 5000), "histogram p50");
    check(near(h.percentile(99), 9900), "histogram p99");
    check(near(h.percentile(99.9), 9990), "histogram p99.9");
    check(h.percentile(100) == 10000, "histogram p100 is max");
    Histogram g;
    g.record(50'000'000);
    h.merge(g);
    check(h.count() == 10001 && h.max() == 50'000'000, "histogram merge");
    check(near(Histogram().percentile(50), 0), "empty histogram");
    return failures;
}

}  // namespace bench
