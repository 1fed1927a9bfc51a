#include <bidding/cli.hpp>
#include <bidding/auction_closing.hpp>
#include <bidding/backoff.hpp>
#include <bidding/config.hpp>
#include <bidding/dotenv.hpp>
#include <bidding/integer_text.hpp>
#include <bidding/jwt.hpp>
#include <bidding/logging.hpp>
#include <bidding/migrations.hpp>
#include <bidding/postgres_store.hpp>
#include <bidding/protocol.hpp>
#include <bidding/bus_codec.hpp>
#include <bidding/redis_bus.hpp>
#include <bidding/server.hpp>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <limits>
#include <chrono>
#include <thread>
#include <fstream>
#include <csignal>
#include <iostream>
#include <sstream>
#include <vector>

namespace bidding {

namespace {

constexpr const char* usage_text = R"(Usage: bidding-server [COMMAND]

A real-time auction server: WebSocket clients follow an auction's price live and bid.

Commands:
  serve                                   run the server (the default)
  migrate [--wait SECONDS] [--seed]       create or upgrade the database tables; --wait retries
                                          until Postgres answers (at most SECONDS); --seed then seeds
  seed [--wait SECONDS]                   insert the demo auctions (idempotent) and restart the
                                          timed one, Pocket Watch (ends 10 minutes after the seed)
  bid create --name NAME [--initial-price P] [--ends-in DURATION | --ends-at TIME]
             [--extend WINDOW/BY] [--min-increment P]
                                          create an auction; prints it as one JSON line.
                                          --ends-in 10m: ends 10 minutes from now (the database's
                                          clock); --ends-at 2026-12-24T18:00:00Z; --extend 2m/2m:
                                          a bid in the last 2 minutes moves the end to 2 minutes
                                          after it; --min-increment 1.00: the smallest raise
                                          DURATION, WINDOW, BY: 90, 90s, 10m, 1h30m, 2d
  bid close ID                            close an auction; its clients get bid_closed
  bid list                                list the auctions
  token --admin [--ttl DURATION]          print an admin token for the HTTP API (HS256, SECRET_KEY)
  token --bidder NAME [--ttl DURATION]    print a bidder token for /ws/bid/{id}?token=...
                                          DURATION: 30s, 15m, 1h (default), 7d
  healthcheck                             exit 0 when this host's server answers /healthz on APP_PORT
  config-vars                             print every environment variable the server reads
  --help                                  show this text
  --version                               show APP_NAME and APP_VERSION

Configuration comes from the environment and from a .env file in the working directory
(real environment variables win). See README.md for the variables.

Exit codes: 0 success, 1 failure (e.g. database unreachable), 2 bad usage or configuration.
)";

struct usage_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

env_map effective_environment() {
    env_map dotenv;
    std::ifstream in(".env");
    if (in) {
        std::stringstream ss;
        ss << in.rdbuf();
        dotenv = parse_dotenv(ss.str());
    }
    return merge_env(dotenv, process_environment());
}

std::string value_or(const env_map& env, std::string_view key, std::string fallback) {
    const auto it = env.find(key);
    return it == env.end() || it->second.empty() ? fallback : it->second;
}

auction_id auction_id_argument(std::string_view text) {
    const auto id = parse_id<auction_id>(text, 1);
    if (!id) {
        throw usage_error(fmt::format("ID must be a positive integer (got \"{}\")", text));
    }
    return *id;
}


// --wait SECONDS, for the database commands (a container may start before its database).
std::chrono::seconds parse_wait(std::vector<std::string_view>& args) {
    std::chrono::seconds wait{0};
    for (auto it = args.begin(); it != args.end(); ++it) {
        if (*it != "--wait") {
            continue;
        }
        if (std::next(it) == args.end()) {
            throw usage_error("--wait needs a number of seconds");
        }
        const auto text = *std::next(it);
        const auto value = parse_integer<unsigned>(text, 0, 86'400);
        if (!value) {
            throw usage_error(fmt::format("--wait must be a number of seconds from 0 to 86400 (got \"{}\")", text));
        }
        wait = std::chrono::seconds(*value);
        args.erase(it, std::next(it, 2));
        break;
    }
    return wait;
}

// Runs `body`, retrying while Postgres is unreachable until `wait` has passed.
template <class F>
auto with_database_wait(std::chrono::seconds wait, F&& body) {
    const auto deadline = std::chrono::steady_clock::now() + wait;
    backoff retry(std::chrono::milliseconds(250), std::chrono::milliseconds(2000));
    auto next_note = std::chrono::steady_clock::now();
    for (;;) {
        try {
            return body();
        } catch (const store_unavailable& e) {
            const auto now = std::chrono::steady_clock::now();
            const auto delay = retry.next();
            if (now + delay >= deadline) {
                throw;
            }
            if (now >= next_note) {
                spdlog::info("waiting for Postgres ({})", e.what());
                next_note = now + std::chrono::seconds(10);
            }
            std::this_thread::sleep_for(delay);
        }
    }
}

int cmd_seed(const config& cfg, std::chrono::seconds wait);

int cmd_migrate(const config& cfg, std::vector<std::string_view> args) {
    const auto wait = parse_wait(args);
    bool seed = false;
    for (const auto arg : args) {
        if (arg != "--seed") {
            throw usage_error(fmt::format("unexpected argument \"{}\" for migrate", arg));
        }
        seed = true;
    }
    const auto report = with_database_wait(wait, [&] { return run_migrations(cfg.database_conninfo); });
    if (report.applied == 0) {
        std::cout << "database is up to date (schema version " << report.version << ")\n";
    } else {
        std::cout << "applied " << report.applied << " migration(s); schema version " << report.version << "\n";
    }
    return seed ? cmd_seed(cfg, wait) : 0;
}

int cmd_seed(const config& cfg, std::chrono::seconds wait) {
    postgres_store store(cfg.database_conninfo);
    with_database_wait(wait, [&] {
        store.seed();
        return 0;
    });
    std::cout << "seeded: 1 Vintage Camera, 2 Antique Vase, 3 Rare Book (closed), " << demo_auction_name
              << " (timed: ends in " << demo_duration.count() / 60 << " minutes, restarted by every seed)\n";
    return 0;
}

int cmd_token(const config& cfg, const std::vector<std::string_view>& args) {
    std::optional<std::string> subject;
    bool admin = false;
    std::int64_t ttl = 3600;
    for (std::size_t i = 0; i < args.size(); ++i) {
        const bool has_value = i + 1 < args.size();
        if (args[i] == "--admin") {
            admin = true;
        } else if (args[i] == "--bidder" && has_value) {
            std::string error;
            subject = normalize_name(args[++i], &error);
            if (!subject) {
                throw usage_error("--bidder: " + error);
            }
        } else if (args[i] == "--ttl" && has_value) {
            const auto d = parse_duration(args[++i]);
            if (!d || *d > std::chrono::days{366}) {
                throw usage_error(fmt::format("--ttl must look like 30s, 15m, 1h or 7d, at most 366d (got \"{}\")",
                                              args[i]));
            }
            ttl = d->count();
        } else {
            throw usage_error(fmt::format("unexpected argument \"{}\" for token", args[i]));
        }
    }
    if (admin == subject.has_value()) {
        throw usage_error("token needs exactly one of --admin or --bidder NAME");
    }
    if (cfg.secret_key.empty()) {
        throw config_error("SECRET_KEY", "SECRET_KEY must be set to sign tokens");
    }
    const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    const nlohmann::json claims = {{"sub", admin ? std::string("admin") : *subject},
                                   {"role", admin ? "admin" : "bidder"},
                                   {"iat", now},
                                   {"exp", now + ttl}};
    std::cout << sign_jwt(claims, cfg.secret_key) << "\n";
    return 0;
}

// GET /healthz on this host, with plain sockets: the container's HEALTHCHECK needs no curl.
bool healthcheck(std::uint16_t port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return false;
    }
    const timeval timeout{2, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = false;
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0) {
        const std::string request = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
        char buf[64] = {};
        if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size())) {
            const auto n = ::recv(fd, buf, sizeof buf - 1, 0);
            ok = n > 12 && std::string_view(buf, static_cast<std::size_t>(n)).starts_with("HTTP/1.1 200");
        }
    }
    ::close(fd);
    return ok;
}

int cmd_bid(const config& cfg, const std::vector<std::string_view>& args) {
    if (args.empty()) {
        throw usage_error("bid needs a subcommand: create, close or list");
    }
    postgres_store store(cfg.database_conninfo);
    const auto sub = args[0];
    if (sub == "create") {
        std::optional<std::string> name;
        new_auction spec;
        const auto duration_of = [](std::string_view option, std::string_view text, std::chrono::seconds most) {
            const auto d = parse_duration(text);
            if (!d || *d > most) {
                throw usage_error(fmt::format("{}: a duration such as 90, 90s, 10m, 1h30m or 2d, at most {} s; got "
                                              "\"{}\"",
                                              option, most.count(), text));
            }
            return *d;
        };
        for (std::size_t i = 1; i < args.size(); ++i) {
            const auto arg = args[i];
            const bool has_value = i + 1 < args.size();
            if (arg == "--name" && has_value) {
                std::string error;
                name = normalize_name(args[++i], &error);
                if (!name) {
                    throw usage_error("--name: " + error);
                }
            } else if (arg == "--initial-price" && has_value) {
                const auto p = parse_price(args[++i]);
                if (!p.value) {
                    throw usage_error("--initial-price: " + std::string(describe(p.error)));
                }
                spec.initial_price = *p.value;
            } else if (arg == "--ends-in" && has_value) {
                spec.duration = duration_of("--ends-in", args[++i], max_auction_duration);
            } else if (arg == "--ends-at" && has_value) {
                spec.ends_at = parse_timestamp(args[++i]);
                if (!spec.ends_at) {
                    throw usage_error("--ends-at: an ISO 8601 time with a zone, e.g. 2026-12-24T18:00:00Z");
                }
            } else if (arg == "--extend" && has_value) {
                const auto text = args[++i];
                const auto slash = text.find('/');
                if (slash == std::string_view::npos) {
                    throw usage_error("--extend: WINDOW/BY, e.g. 2m/2m");
                }
                spec.extend_window = duration_of("--extend", text.substr(0, slash), max_extension);
                spec.extend_by = duration_of("--extend", text.substr(slash + 1), max_extension);
            } else if (arg == "--min-increment" && has_value) {
                const auto p = parse_price(args[++i]);
                if (!p.value) {
                    throw usage_error("--min-increment: " + std::string(describe(p.error)));
                }
                spec.min_increment = *p.value;
            } else {
                throw usage_error(fmt::format("unexpected argument \"{}\" for bid create", arg));
            }
        }
        if (!name) {
            throw usage_error("bid create needs --name NAME");
        }
        if (spec.duration && spec.ends_at) {
            throw usage_error("bid create takes --ends-in or --ends-at, not both");
        }
        if (spec.extend_window && !spec.duration && !spec.ends_at) {
            throw usage_error("--extend needs an end: --ends-in or --ends-at");
        }
        spec.name = std::move(*name);
        const auto a = store.create_auction(spec);
        std::cout << auction_object(a).dump() << "\n";
        return 0;
    }
    if (sub == "close") {
        if (args.size() != 2) {
            throw usage_error("usage: bid close ID");
        }
        const auto id = auction_id_argument(args[1]);
        const auto [r, bid_closed] = close_auction(store, id);
        if (!r.found) {
            std::cerr << "auction " << id << " not found\n";
            return 1;
        }
        // Postgres NOTIFY (sent with the commit) reaches every server; Redis is the pods' usual
        // channel, so the close goes there too.
        if (cfg.redis) {
            const bus_codec codec(cfg.redis_channel_prefix, derive_bus_key(cfg.secret_key, cfg.database_conninfo));
            publish_once(*cfg.redis, codec.channel(id),
                         codec.encode_close(id, bid_closed));
        }
        std::cout << (r.was_open ? "closed" : "already closed") << " auction " << id << ": final price "
                  << format_cents(r.final_price) << ", winner " << r.winner.value_or("(none)") << "\n";
        return 0;
    }
    if (sub == "list") {
        if (args.size() != 1) {
            throw usage_error("usage: bid list");
        }
        std::cout << fmt::format("{:>6}  {:<8}  {:>14}  {:>14}  {:>8}  {}\n", "ID", "STATUS", "INITIAL", "CURRENT",
                                 "LAST_SEQ", "NAME");
        for (const auto& a : store.list_auctions()) {
            std::cout << fmt::format("{:>6}  {:<8}  {:>14}  {:>14}  {:>8}  {}\n", a.id, to_string(a.status),
                                     format_cents(a.initial_price), format_cents(a.current_price), a.last_seq, a.name);
        }
        return 0;
    }
    throw usage_error(fmt::format("unknown bid subcommand \"{}\"", sub));
}

}  // namespace

int run_cli(int argc, char** argv) {
    // A peer that vanished must fail a write with EPIPE, not kill the process (hiredis writes
    // with plain write(); libpq and Asio already suppress the signal).
    std::signal(SIGPIPE, SIG_IGN);
    std::vector<std::string_view> args(argv + 1, argv + argc);
    const auto command = args.empty() ? std::string_view("serve") : args[0];
    if (command == "--help" || command == "-h" || command == "help") {
        std::cout << usage_text;
        return 0;
    }
    try {
        const auto env = effective_environment();
        if (command == "config-vars") {
            for (const auto name : config_variables()) {
                std::cout << name << "\n";
            }
            return 0;
        }
        if (command == "--version") {
            std::cout << value_or(env, "APP_NAME", "bidding-server") << " " << value_or(env, "APP_VERSION", BIDDING_VERSION)
                      << "\n";
            return 0;
        }
        const auto cfg = load_config(env);
        setup_logging(cfg.log_level);
        const std::vector<std::string_view> rest(args.empty() ? args.end() : args.begin() + 1, args.end());
        if (command == "serve") {
            if (!rest.empty()) {
                throw usage_error("serve takes no arguments");
            }
            return run_server(cfg);
        }
        if (command == "migrate") {
            return cmd_migrate(cfg, rest);
        }
        if (command == "seed") {
            auto args = rest;
            const auto wait = parse_wait(args);
            if (!args.empty()) {
                throw usage_error("usage: seed [--wait SECONDS]");
            }
            return cmd_seed(cfg, wait);
        }
        if (command == "token") {
            return cmd_token(cfg, rest);
        }
        if (command == "healthcheck" && rest.empty()) {
            return healthcheck(cfg.port) ? 0 : 1;
        }
        if (command == "bid") {
            return cmd_bid(cfg, rest);
        }
        throw usage_error(fmt::format("unknown command \"{}\" (see --help)", command));
    } catch (const config_error& e) {
        std::cerr << "configuration error: " << e.what() << "\n";
        return 2;
    } catch (const usage_error& e) {
        std::cerr << "usage error: " << e.what() << "\n";
        return 2;
    } catch (const store_unavailable& e) {
        std::cerr << "database unavailable: " << e.what() << "\n";
        return 1;
    } catch (const std::exception& e) {
        std::cerr << "error: " << e.what() << "\n";
        return 1;
    }
}

}  // namespace bidding
