// bidding-bench: load generation and benchmarks for bidding-server (docs/bench-tool.md).

#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <string>

#include "histogram.hpp"
#include "options.hpp"
#include "report.hpp"
#include "scanner.hpp"
#include "scenarios.hpp"
#include "ws_frame.hpp"

#ifndef BIDDING_BENCH_VERSION
#define BIDDING_BENCH_VERSION "dev"
#endif

namespace {

void on_signal(int) { bench::g_interrupted.store(true); }

// How fast the per-message work of an observer goes (scan + price + histogram), without the network.
void hot_path_speed() {
    const std::string msg =
        R"({"type":"new_bid","bid_id":1,"seq":123456,"bidder":"bench-b0","price":"1234.56","added_at":"2026-11-25T14:00:01.456Z"})";
    bench::Histogram h;
    bench::Scan s;
    const int n = 2'000'000;
    int64_t sum = 0;
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < n; ++i) {
        bench::scan(msg, s);
        int64_t cents = 0;
        bench::parse_cents(s.price, cents);
        sum += s.seq + cents;
        h.record(static_cast<uint64_t>(i & 4095));
    }
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("self-test: hot path (scan + price + histogram) %.1f million messages/s on one thread%s\n",
                n / secs / 1e6, sum == 0 ? " (?)" : "");
}

int self_test() {
    int failures = bench::scanner_self_test() + bench::histogram_self_test() + bench::report_self_test() +
                   bench::scenarios_self_test() + bench::wsframe_self_test();
    hot_path_speed();
    bench::wsframe_speed();
    if (failures == 0) std::printf("self-test: all checks passed\n");
    else std::printf("self-test: %d checks failed\n", failures);
    return failures == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    bench::Options options;
    std::string error;
    switch (bench::parse_options(argc, argv, options, error)) {
        case bench::ParseResult::help:
            std::fputs(bench::help_text().c_str(), stdout);
            return 0;
        case bench::ParseResult::version:
            std::printf("bidding-bench %s\n", BIDDING_BENCH_VERSION);
            return 0;
        case bench::ParseResult::self_test: return self_test();
        case bench::ParseResult::usage_error:
            std::fprintf(stderr, "bidding-bench: %s\n", error.c_str());
            return 2;
        case bench::ParseResult::run: break;
    }
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    std::signal(SIGPIPE, SIG_IGN);
    return bench::run_scenario(options);
}
