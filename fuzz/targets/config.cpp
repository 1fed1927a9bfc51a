// The .env parser and load_config: an input is read both as a .env file and as raw KEY=VALUE
// lines (what a process environment holds: no quotes, no comments, nothing trimmed).
// config_error is an expected answer; any other exception escapes and is a bug. load_config
// reads only the names of config_variables(), so no input can reach its logic_error.
#include <fuzz_targets.hpp>

#include <bidding/config.hpp>
#include <bidding/dotenv.hpp>

#include <algorithm>
#include <optional>
#include <string>
#include <string_view>

namespace bidding::fuzz {

namespace {

bool lowercase(std::string_view s) {
    return std::none_of(s.begin(), s.end(), [](char c) { return c >= 'A' && c <= 'Z'; });
}

// The map as a .env file again, every value double-quoted: it must read back the same.
std::string as_dotenv(const env_map& env) {
    std::string out;
    for (const auto& [key, value] : env) {
        out += key;
        out += "=\"";
        for (const char c : value) {
            if (c == '"' || c == '\\') out += '\\';
            out += c;
        }
        out += "\"\n";
    }
    return out;
}

void check_error(const config_error& e) {
    const std::string_view message = e.what();
    const auto& names = config_variables();
    const bool known = e.variable() == ".env" || std::find(names.begin(), names.end(), e.variable()) != names.end();
    fuzz_check(known, "config_error blames no variable", e.variable());
    fuzz_check(message.find(e.variable()) != std::string_view::npos, "config_error does not name its variable", message);
    // The process prints it on one line: values are quoted with their control characters escaped.
    fuzz_check(std::none_of(message.begin(), message.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20; }),
               "config_error is not one printable line", message);
}

void check_config(const config& c) {
    fuzz_check(c.port >= 1, "port 0");
    fuzz_check(!c.allowed_hosts.empty(), "no allowed host");
    for (const auto& host : c.allowed_hosts) {
        fuzz_check(!host.empty() && lowercase(host), "an allowed host that is empty or not lowercase", host);
    }
    fuzz_check(c.db_lock_timeout < c.db_timeout && c.db_timeout <= c.bid_timeout && c.fanout_max_lag < c.bid_timeout,
               "timeouts out of order");
    for (const auto t : {c.heartbeat_interval, c.idle_timeout, c.drain_timeout, c.send_timeout, c.bid_timeout,
                         c.db_timeout, c.db_lock_timeout, c.redis_timeout, c.fanout_max_lag, c.http_header_timeout,
                         c.ws_handshake_timeout}) {
        fuzz_check(t.count() >= 1 && t.count() <= 1'000'000'000, "a duration out of range");
    }
    fuzz_check(c.max_message_bytes >= 64 && c.db_pool_size >= 1 && c.history_limit >= 1, "a count out of range");
    fuzz_check(!c.redis_channel_prefix.empty(), "an empty channel prefix");
    if (c.redis) {
        fuzz_check(!c.redis->host.empty() && c.redis->port >= 1 && c.redis->db >= 0, "a Redis endpoint out of range",
                   c.redis->host);
    }
    if (c.auth_required) {
        fuzz_check(!c.secret_key.empty(), "tokens required without a key");
    }
    if (c.env == environment::production) {
        fuzz_check(c.secret_key.size() >= 32 && !c.debug, "production with a weak key or DEBUG");
    }
}

// What load_config made of `env`: the config's loggable parts, or the error message.
std::string outcome(const env_map& env) {
    try {
        const config c = load_config(env);
        return "ok " + c.database_display + " " + (c.redis ? c.redis->host : "-");
    } catch (const config_error& e) {
        return std::string("error ") + e.what();
    }
}

// The passwords are never validated, so what is logged (the database display, an error
// message) must not depend on them: the same environment with another password of the same
// length gives the same outcome. Catches a password printed in a message or the display.
void check_passwords_unseen(const env_map& env) {
    const std::string before = outcome(env);
    for (const std::string_view secret : {"POSTGRES_PASSWORD", "POSTGRESS_PASSWORD", "REDIS_PASSWORD"}) {
        const auto it = env.find(secret);
        if (it == env.end()) continue;
        env_map other = env;
        for (char& c : other.find(secret)->second) c = c == 'x' ? 'y' : 'x';
        fuzz_check(outcome(other) == before, "what is logged depends on a password", secret);
    }
}

void load(const env_map& env) {
    try {
        check_config(load_config(env));
    } catch (const config_error& e) {
        check_error(e);
    }
    check_passwords_unseen(env);
}

}  // namespace

void config_one(std::string_view input) {
    // As a .env file; one written back with every value quoted must read the same.
    std::optional<env_map> dotenv;
    try {
        dotenv = parse_dotenv(input);
    } catch (const config_error& e) {
        fuzz_check(e.variable() == ".env", "parse_dotenv blamed a variable", e.what());
        const std::string_view message = e.what();
        fuzz_check(message.find('\n') == std::string_view::npos, "a .env error of several lines", message);
    }
    if (dotenv) {
        const std::string written = as_dotenv(*dotenv);
        fuzz_check(parse_dotenv(written) == *dotenv, "a .env written back with quotes reads differently", written);
        load(*dotenv);
    }
    // As a process environment: KEY=VALUE lines, the value as it is.
    env_map raw;
    std::string_view rest = input;
    while (!rest.empty()) {
        const auto nl = rest.find('\n');
        const auto line = rest.substr(0, nl);
        rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
        const auto eq = line.find('=');
        if (eq == std::string_view::npos || eq == 0) continue;
        raw.insert_or_assign(std::string(line.substr(0, eq)), std::string(line.substr(eq + 1)));
    }
    load(raw);
}

}  // namespace bidding::fuzz
