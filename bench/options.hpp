#pragma once
// The command line of bidding-bench: parsing, validation and --help.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace bench {

enum class Scenario { idle, fanout, hot, many, overload };

const char* scenario_name(Scenario s);

struct Options {
    Scenario scenario = Scenario::fanout;
    std::vector<std::string> urls;        // ws://HOST:PORT[/PATH]
    int64_t auction = 1;
    int64_t first_auction = 1, last_auction = 1;  // many
    std::vector<std::string> sources;     // local addresses to bind before connecting
    int threads = 1;
    int64_t rcvbuf = 0;                   // SO_RCVBUF of client sockets; 0: the kernel's
    double duration = 5, settle = 5, connect_timeout = 30, hold = 5, reply_timeout = 5;
    int concurrency = 500;
    int64_t connections = 1000;           // idle
    int64_t observers = -1;               // fanout 100, hot 10, overload 10 when not given
    int64_t bidders = -1;                 // hot 2, overload 4
    int64_t bidders_per_auction = 1, observers_per_auction = 0;
    double rate = 0;                      // fanout: bids/s of the bidder; overload: bids/s of each bidder
    bool pipelined = false;
    int window = 64;
    std::optional<int64_t> start_price_cents;
    int64_t step_cents = 1;
    std::vector<int> pids;
    std::string observer_report, bid_report;
    std::string name = "bench";           // bidder names: NAME-b0, NAME-b1, ...
    bool quiet = false;
};

enum class ParseResult { run, help, self_test, version, usage_error };

ParseResult parse_options(int argc, char** argv, Options& out, std::string& error);
std::string help_text();

}  // namespace bench
