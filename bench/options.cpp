#include "options.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <string_view>

#include "scanner.hpp"

namespace bench {

const char* scenario_name(Scenario s) {
    switch (s) {
        case Scenario::idle: return "idle";
        case Scenario::fanout: return "fanout";
        case Scenario::hot: return "hot";
        case Scenario::many: return "many";
        case Scenario::overload: return "overload";
    }
    return "?";
}

std::string help_text() {
    return R"(bidding-bench: WebSocket load generator and benchmark for bidding-server (and the
broadcast_probe yardstick). Prints a table on stderr and ONE JSON line with every figure on stdout.

usage: bidding-bench SCENARIO [options]
       bidding-bench --self-test | --help | --version

scenarios:
  idle      open --connections N as fast as possible (--concurrency handshakes in flight), each
            waiting for its first message; report connects/s and failures by reason, hold them
            --hold seconds and report the RSS of each --pids process before and while held
  fanout    one bidder and --observers N on one auction; the bidder sends --rate bids/s
            open-loop, or --pipelined (default) keeps up to --window bids unanswered; report
            deliveries/s to observers, fan-out latency (bid sent -> observer read), anomalies
  hot       --bidders M closed-loop bidders (one bid at a time, each at the highest price seen
            + 0.01) and --observers N on one auction; report bids decided/s, replies by code,
            reply latency, deliveries/s, anomalies
  many      closed-loop bidding on every auction of --auctions FIRST-LAST at once,
            --bidders-per-auction B and --observers-per-auction O on each
  overload  --bidders M each sending --rate R bids/s open-loop (evenly paced), prices from one
            counter shared by all bidders; every bid must get exactly one reply: report
            unanswered (none within --reply-timeout) and duplicate replies, replies by code,
            observers still connected and those closed by the server (by close code)

connection options (all scenarios):
  --url URL                 ws://HOST:PORT[/PATH] (repeatable or comma-separated; clients are
                            spread round-robin over them). The request target is PATH with
                            "{id}" replaced by the auction id, or PATH + "/ws/bid/ID" when PATH
                            has no "{id}". Default ws://127.0.0.1:8000
  --auction ID              auction to use (default 1; many: see --auctions)
  --sources A,B,...         bind client sockets to these local addresses, round-robin (e.g.
                            127.0.0.1,127.0.0.2: more than ~28,000 connections to one port)
  --threads N               client threads, one io_context each (default 1)
  --rcvbuf BYTES            SO_RCVBUF of every client socket, set before connecting (default:
                            the kernel's, autotuned); Linux doubles the value and caps it at
                            net.core.rmem_max
  --concurrency N           connection handshakes in flight at once (default 500)
  --connect-timeout S       bound of the connect phase, seconds (default 30): a connection
                            without its first message by then counts as failed ("timeout")

load options:
  --duration S              seconds of load (default 5)
  --settle S                at most this many seconds after the load for replies and deliveries
                            to finish (default 5)
  --observers N             observers (fanout default 100, hot 10, overload 10)
  --bidders M               bidders (hot default 2, overload 4)
  --rate R                  fanout: bids/s sent by the bidder; overload: bids/s of each bidder
                            (default 100)
  --pipelined               fanout: keep up to --window bids unanswered (the default mode)
  --window K                unanswered bids allowed in --pipelined mode (default 64)
  --start-price P           first price, "d.dd" (fanout, overload; default: the initial_state's
                            current_price + 0.01; 1.00 when the server sends none)
  --price-step P            price increment of fanout and overload bids (default 0.01)
  --reply-timeout S         a bid without its reply after S seconds is unanswered (default 5)
  --auctions FIRST-LAST     many: the range of auction ids (default 1-2)
  --bidders-per-auction B   many: bidders on each auction (default 1)
  --observers-per-auction O many: observers on each auction (default 0)
  --connections N           idle: connections to open (default 1000)
  --hold S                  idle: seconds to hold them open (default 5)
  --name NAME               bidder names are NAME-b0, NAME-b1, ... (default bench)

reports:
  --pids PID,...            report each process's RSS (VmRSS) at start and end and its CPU use
                            (utime+stime) over the load as % of one core; idle: RSS before the
                            connects and while held, and KiB per connection
  --observer-report FILE    one JSON line per observer: url, auction, initial_last_seq, count,
                            first_seq, last_seq, digest (FNV-1a 64 over "SEQ," of each new_bid in
                            arrival order), anomalies, closed, close_code
  --bid-report FILE         one JSON line per bid sent: ref, price, bidder, reply, seq,
                            latency_ms
  --quiet                   no progress lines on stderr (the final table is still printed)

other:
  --self-test               run the unit checks of the scanner, histogram, report and WebSocket
                            frame parser, and print their speed; exit 0/1
  --help, --version

Exit code: 0 when the run completed (whatever its figures), 2 for bad usage, 1 when it could
not run at all (no URL resolved, nobody could connect, no bidder connected).
Servers: bidding-server's BID_RATE_LIMIT (default 50 bids/s per connection) answers faster
bidders with rate_limited; set BID_RATE_LIMIT=0 on the server for load runs.
See docs/bench-tool.md for the JSON output.
)";
}

namespace {

bool parse_int(std::string_view s, int64_t& v) {
    auto r = std::from_chars(s.data(), s.data() + s.size(), v);
    return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

bool parse_double(const std::string& s, double& v) {
    try {
        size_t used = 0;
        v = std::stod(s, &used);
        return used == s.size() && std::isfinite(v);
    } catch (...) {
        return false;
    }
}

void split_commas(const std::string& s, std::vector<std::string>& out) {
    size_t start = 0;
    while (start <= s.size()) {
        size_t comma = s.find(',', start);
        if (comma == std::string::npos) comma = s.size();
        std::string part = s.substr(start, comma - start);
        if (!part.empty()) out.push_back(part);
        start = comma + 1;
    }
}

}  // namespace

ParseResult parse_options(int argc, char** argv, Options& o, std::string& error) {
    bool have_scenario = false;
    bool auctions_given = false, rate_given = false;
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        std::string value;
        bool inline_value = false;
        if (arg.rfind("--", 0) == 0) {
            size_t eq = arg.find('=');
            if (eq != std::string::npos) {
                value = arg.substr(eq + 1);
                arg = arg.substr(0, eq);
                inline_value = true;
            }
        }
        auto need = [&](std::string& v) -> bool {
            if (inline_value) {
                v = value;
                return true;
            }
            if (i + 1 >= argc) {
                error = arg + " needs a value";
                return false;
            }
            v = argv[++i];
            return true;
        };
        auto get_int = [&](int64_t& target, int64_t min, int64_t max) -> bool {
            std::string v;
            if (!need(v)) return false;
            int64_t x = 0;
            if (!parse_int(v, x) || x < min || x > max) {
                error = arg + ": expected an integer from " + std::to_string(min) + " to " + std::to_string(max) +
                        ", got \"" + v + "\"";
                return false;
            }
            target = x;
            return true;
        };
        auto get_seconds = [&](double& target, double min) -> bool {
            std::string v;
            if (!need(v)) return false;
            double x = 0;
            if (!parse_double(v, x) || x < min || x > 86400.0 * 7) {
                char low[32];
                std::snprintf(low, sizeof low, "%g", min);
                error = arg + ": expected seconds (a number >= " + low + "), got \"" + v + "\"";
                return false;
            }
            target = x;
            return true;
        };
        auto get_price = [&](int64_t& cents, bool allow_zero) -> bool {
            std::string v;
            if (!need(v)) return false;
            int64_t c = 0;
            if (!parse_cents(v, c) || c < (allow_zero ? 0 : 1) || c > 9'999'999'999) {
                error = arg + ": expected a price such as 12.34, got \"" + v + "\"";
                return false;
            }
            cents = c;
            return true;
        };
        int64_t n = 0;
        std::string v;
        if (arg == "--help" || arg == "-h") return ParseResult::help;
        if (arg == "--version") return ParseResult::version;
        if (arg == "--self-test") return ParseResult::self_test;
        if (arg == "--url") {
            if (!need(v)) return ParseResult::usage_error;
            split_commas(v, o.urls);
        } else if (arg == "--auction") {
            if (!get_int(o.auction, 1, INT64_MAX)) return ParseResult::usage_error;
        } else if (arg == "--auctions") {
            if (!need(v)) return ParseResult::usage_error;
            size_t dash = v.find('-');
            int64_t a = 0, b = 0;
            if (dash == std::string::npos || !parse_int(std::string_view(v).substr(0, dash), a) ||
                !parse_int(std::string_view(v).substr(dash + 1), b) || a < 1 || b < a || b - a >= 100000) {
                error = "--auctions: expected FIRST-LAST (1 <= FIRST <= LAST, at most 100000 auctions), got \"" + v + "\"";
                return ParseResult::usage_error;
            }
            o.first_auction = a;
            o.last_auction = b;
            auctions_given = true;
        } else if (arg == "--sources") {
            if (!need(v)) return ParseResult::usage_error;
            split_commas(v, o.sources);
        } else if (arg == "--threads") {
            if (!get_int(n, 1, 256)) return ParseResult::usage_error;
            o.threads = static_cast<int>(n);
        } else if (arg == "--rcvbuf") {
            if (!get_int(o.rcvbuf, 1024, 1 << 30)) return ParseResult::usage_error;
        } else if (arg == "--concurrency") {
            if (!get_int(n, 1, 1'000'000)) return ParseResult::usage_error;
            o.concurrency = static_cast<int>(n);
        } else if (arg == "--duration") {
            if (!get_seconds(o.duration, 0.1)) return ParseResult::usage_error;
        } else if (arg == "--settle") {
            if (!get_seconds(o.settle, 0)) return ParseResult::usage_error;
        } else if (arg == "--connect-timeout") {
            if (!get_seconds(o.connect_timeout, 0.1)) return ParseResult::usage_error;
        } else if (arg == "--hold") {
            if (!get_seconds(o.hold, 0)) return ParseResult::usage_error;
        } else if (arg == "--reply-timeout") {
            if (!get_seconds(o.reply_timeout, 0.001)) return ParseResult::usage_error;
        } else if (arg == "--connections") {
            if (!get_int(o.connections, 1, 10'000'000)) return ParseResult::usage_error;
        } else if (arg == "--observers") {
            if (!get_int(o.observers, 0, 10'000'000)) return ParseResult::usage_error;
        } else if (arg == "--bidders") {
            if (!get_int(o.bidders, 1, 1'000'000)) return ParseResult::usage_error;
        } else if (arg == "--bidders-per-auction") {
            if (!get_int(o.bidders_per_auction, 0, 100'000)) return ParseResult::usage_error;
        } else if (arg == "--observers-per-auction") {
            if (!get_int(o.observers_per_auction, 0, 1'000'000)) return ParseResult::usage_error;
        } else if (arg == "--rate") {
            if (!need(v)) return ParseResult::usage_error;
            if (!parse_double(v, o.rate) || o.rate <= 0 || o.rate > 1e8) {
                error = "--rate: expected bids per second (> 0), got \"" + v + "\"";
                return ParseResult::usage_error;
            }
            rate_given = true;
        } else if (arg == "--pipelined") {
            if (inline_value) {
                error = "--pipelined takes no value";
                return ParseResult::usage_error;
            }
            o.pipelined = true;
        } else if (arg == "--window") {
            if (!get_int(n, 1, 1'000'000)) return ParseResult::usage_error;
            o.window = static_cast<int>(n);
        } else if (arg == "--start-price") {
            int64_t c = 0;
            if (!get_price(c, false)) return ParseResult::usage_error;
            o.start_price_cents = c;
        } else if (arg == "--price-step") {
            if (!get_price(o.step_cents, false)) return ParseResult::usage_error;
        } else if (arg == "--pids") {
            if (!need(v)) return ParseResult::usage_error;
            std::vector<std::string> parts;
            split_commas(v, parts);
            for (const auto& p : parts) {
                int64_t pid = 0;
                if (!parse_int(p, pid) || pid < 1 || pid > INT32_MAX) {
                    error = "--pids: expected process ids separated by commas, got \"" + v + "\"";
                    return ParseResult::usage_error;
                }
                o.pids.push_back(static_cast<int>(pid));
            }
        } else if (arg == "--observer-report") {
            if (!need(o.observer_report)) return ParseResult::usage_error;
        } else if (arg == "--bid-report") {
            if (!need(o.bid_report)) return ParseResult::usage_error;
        } else if (arg == "--name") {
            if (!need(o.name)) return ParseResult::usage_error;
            if (o.name.empty() || o.name.size() > 200) {
                error = "--name: 1 to 200 characters";
                return ParseResult::usage_error;
            }
        } else if (arg == "--quiet") {
            o.quiet = true;
        } else if (arg.rfind("-", 0) == 0) {
            error = "unknown option " + arg + " (see --help)";
            return ParseResult::usage_error;
        } else if (!have_scenario) {
            if (arg == "idle") o.scenario = Scenario::idle;
            else if (arg == "fanout") o.scenario = Scenario::fanout;
            else if (arg == "hot") o.scenario = Scenario::hot;
            else if (arg == "many") o.scenario = Scenario::many;
            else if (arg == "overload") o.scenario = Scenario::overload;
            else {
                error = "unknown scenario \"" + arg + "\": idle, fanout, hot, many or overload";
                return ParseResult::usage_error;
            }
            have_scenario = true;
        } else {
            error = "unexpected argument \"" + arg + "\" (see --help)";
            return ParseResult::usage_error;
        }
    }
    if (!have_scenario) {
        error = "no scenario given: idle, fanout, hot, many or overload (see --help)";
        return ParseResult::usage_error;
    }
    if (o.urls.empty()) o.urls.push_back("ws://127.0.0.1:8000");
    for (const auto& u : o.urls) {
        // The full syntax is checked when the URL is resolved; the scheme and a host are usage errors.
        if (u.rfind("ws://", 0) != 0 || u.size() == 5 || u[5] == '/' || u[5] == ':') {
            error = "--url: expected ws://HOST[:PORT][/PATH], got \"" + u + "\" (wss:// is not supported)";
            return ParseResult::usage_error;
        }
    }
    switch (o.scenario) {
        case Scenario::fanout:
            if (rate_given && o.pipelined) {
                error = "fanout: --rate and --pipelined exclude each other";
                return ParseResult::usage_error;
            }
            if (!rate_given) o.pipelined = true;
            if (o.observers < 0) o.observers = 100;
            if (o.bidders > 1) {
                error = "fanout has exactly one bidder (use hot or overload for more)";
                return ParseResult::usage_error;
            }
            o.bidders = 1;
            break;
        case Scenario::hot:
            if (o.observers < 0) o.observers = 10;
            if (o.bidders < 0) o.bidders = 2;
            break;
        case Scenario::overload:
            if (o.observers < 0) o.observers = 10;
            if (o.bidders < 0) o.bidders = 4;
            if (!rate_given) o.rate = 100;
            break;
        case Scenario::many:
            if (!auctions_given) {
                o.first_auction = 1;
                o.last_auction = 2;
            }
            if (o.bidders_per_auction == 0 && o.observers_per_auction == 0) {
                error = "many: nobody to connect (--bidders-per-auction and --observers-per-auction are 0)";
                return ParseResult::usage_error;
            }
            break;
        case Scenario::idle:
            break;
    }
    if (o.scenario != Scenario::fanout && o.pipelined) {
        error = "--pipelined is a fanout option";
        return ParseResult::usage_error;
    }
    return ParseResult::run;
}

}  // namespace bench
