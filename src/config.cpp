#include <bidding/config.hpp>
#include <bidding/text.hpp>
#include <bidding/integer_text.hpp>

#include <algorithm>
#include <charconv>
#include <limits>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

namespace bidding {

namespace {

constexpr auto is_digit = is_ascii_digit;

int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// The offending value for an error message: quoted, capped and printable so that the
// message stays on one line. Only for variables that hold no secret.
std::string quoted(std::string_view value) {
    constexpr std::size_t cap = 64;
    std::string out = "\"";
    std::size_t n = 0;
    for (char c : value) {
        if (n++ == cap) {
            out += "...";
            break;
        }
        const auto u = static_cast<unsigned char>(c);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (u < 0x20 || u == 0x7f) {
            constexpr char hex[] = "0123456789abcdef";
            out += "\\x";
            out += hex[u >> 4];
            out += hex[u & 0xf];
        } else {
            out += c;
        }
    }
    out += '"';
    return out;
}

// ENV=production: a key that anybody can read in this repository, or one a person typed by
// hand ("aaaa...", "1234..."), signs tokens and bus messages that anybody could forge.
void check_production_secret(const std::string& key) {
    const auto refuse = [](const std::string& why) {
        throw config_error("SECRET_KEY", "SECRET_KEY " + why +
                                             " when ENV=production; set a random value, e.g. the output of "
                                             "`openssl rand -hex 32`");
    };
    if (key.size() < 32) refuse("must be at least 32 characters");
    const auto& examples = example_secret_keys();
    if (std::find(examples.begin(), examples.end(), key) != examples.end()) {
        refuse("is the example value of the repository's example files");
    }
    bool seen[256] = {};
    std::size_t distinct = 0;
    for (const char ch : key) {
        auto& s = seen[static_cast<unsigned char>(ch)];
        distinct += s ? 0 : 1;
        s = true;
    }
    if (distinct < 10) refuse("has too little variety (fewer than 10 different characters)");
}

[[noreturn]] void fail(const std::string& variable, const std::string& accepted, std::string_view got) {
    throw config_error(variable, variable + " must be " + accepted + " (got " + quoted(got) + ")");
}

// Every read goes through here: a variable missing from config_variables() is a bug that
// would leave it out of .env.example and the deployment files.
void check_declared(std::string_view key) {
    const auto& names = config_variables();
    if (std::find(names.begin(), names.end(), key) == names.end()) {
        throw std::logic_error("configuration variable " + std::string(key) + " is not in config_variables()");
    }
}

// A set, non-empty variable.
std::optional<std::string_view> lookup(const env_map& env, std::string_view key) {
    check_declared(key);
    const auto it = env.find(key);
    if (it == env.end() || it->second.empty()) return std::nullopt;
    return std::string_view(it->second);
}

// Digits only: no sign, no spaces, no trailing junk.
std::optional<std::uint64_t> parse_unsigned(std::string_view text) {
    return parse_integer<std::uint64_t>(text, 0, std::numeric_limits<std::uint64_t>::max());
}

std::uint64_t integer_var(const env_map& env, const std::string& key, std::uint64_t fallback, std::uint64_t min,
                          std::uint64_t max) {
    const auto text = lookup(env, key);
    if (!text) return fallback;
    const auto value = parse_unsigned(*text);
    if (!value || *value < min || *value > max) {
        fail(key, "an integer from " + std::to_string(min) + " to " + std::to_string(max), *text);
    }
    return *value;
}

std::uint16_t port_var(const env_map& env, const std::string& key, std::uint16_t fallback) {
    return static_cast<std::uint16_t>(integer_var(env, key, fallback, 1, 65535));
}

// Seconds as a plain decimal ("30", "0.05"), converted to whole milliseconds rounded half
// up, at least 1 ms. The cap keeps later time-point arithmetic far from overflow.
std::chrono::milliseconds seconds_var(const env_map& env, const std::string& key, std::chrono::milliseconds fallback) {
    constexpr std::int64_t max_seconds = 1'000'000;
    const auto text = lookup(env, key);
    if (!text) return fallback;
    const auto bad = [&]() {
        fail(key, "a number of seconds greater than 0 and at most " + std::to_string(max_seconds) + ", e.g. 30 or 0.5",
             *text);
    };
    const std::string_view s = *text;
    const std::size_t dot = s.find('.');
    const std::string_view whole = s.substr(0, dot);
    const std::string_view frac = dot == std::string_view::npos ? std::string_view{} : s.substr(dot + 1);
    if (whole.empty() && frac.empty()) bad();
    if (!std::all_of(whole.begin(), whole.end(), is_digit) || !std::all_of(frac.begin(), frac.end(), is_digit)) bad();

    std::string_view whole_digits = whole;
    while (!whole_digits.empty() && whole_digits.front() == '0') whole_digits.remove_prefix(1);
    if (whole_digits.size() > 7) bad();  // > 9999999 s, beyond the cap anyway
    std::int64_t ms = 0;
    for (char c : whole_digits) ms = ms * 10 + (c - '0');
    ms *= 1000;
    for (std::size_t i = 0; i < 3; ++i) ms += (i < frac.size() ? frac[i] - '0' : 0) * (i == 0 ? 100 : i == 1 ? 10 : 1);
    if (frac.size() > 3 && frac[3] >= '5') ++ms;

    const bool positive = ms > 0 || std::any_of(frac.begin(), frac.end(), [](char c) { return c != '0'; });
    if (!positive || ms > max_seconds * 1000) bad();
    return std::chrono::milliseconds{std::max<std::int64_t>(ms, 1)};
}

std::optional<bool> parse_bool(std::string_view text) {
    const std::string v = to_lower(text);
    if (v == "true" || v == "1" || v == "yes" || v == "on") return true;
    if (v == "false" || v == "0" || v == "no" || v == "off") return false;
    return std::nullopt;
}

// libpq conninfo value: always single-quoted, with ' and \ escaped.
std::string conninfo_value(std::string_view value) {
    std::string out = "'";
    for (char c : value) {
        if (c == '\'' || c == '\\') out += '\\';
        out += c;
    }
    out += '\'';
    return out;
}

struct database_settings {
    std::string conninfo;
    std::string display;
    std::string name;  // the database name, when the settings give one
};

// libpq settings every connection gets unless the URL sets them: a bounded connect, and TCP
// keepalives plus tcp_user_timeout so that a peer that vanished (a network that drops packets)
// is noticed by the kernel even on an idle connection. A server that is frozen but whose kernel
// still acknowledges is caught by the queries' own deadlines (connection_watchdog).
constexpr std::pair<std::string_view, std::string_view> connection_defaults[] = {
    {"connect_timeout", "2"},    {"keepalives", "1"},      {"keepalives_idle", "5"},
    {"keepalives_interval", "2"}, {"keepalives_count", "3"}, {"tcp_user_timeout", "5000"},
};

// The path of a postgres:// URL without its leading slash, percent-decoded: the database name.
std::string database_name_of_url(std::string_view url) {
    const std::size_t authority = url.find("://") + 3;
    const std::size_t slash = url.find('/', authority);
    if (slash == std::string_view::npos) return {};
    std::string_view path = url.substr(slash + 1);
    path = path.substr(0, path.find_first_of("?#"));
    std::string out;
    for (std::size_t i = 0; i < path.size(); ++i) {
        if (path[i] == '%' && i + 2 < path.size()) {
            const int hi = hex_digit(path[i + 1]);
            const int lo = hex_digit(path[i + 2]);
            if (hi >= 0 && lo >= 0) {
                out += static_cast<char>(hi * 16 + lo);
                i += 2;
                continue;
            }
        }
        out += path[i];
    }
    return out;
}

const std::string database_url_form = "a URL starting with postgres:// or postgresql://";

database_settings database_from_url(std::string_view url) {
    const std::string scheme_lower = to_lower(url.substr(0, std::min<std::size_t>(url.size(), 13)));
    if (!scheme_lower.starts_with("postgres://") && !scheme_lower.starts_with("postgresql://")) {
        // No value in the message: the URL may carry a password.
        throw config_error("DATABASE_URL", "DATABASE_URL must be " + database_url_form);
    }
    std::string conninfo(url);
    const std::size_t query = conninfo.find('?');
    std::vector<std::string_view> given;  // the query's parameter names
    if (query != std::string::npos) {
        std::string_view q = std::string_view(url).substr(query + 1);
        while (!q.empty()) {
            const std::size_t amp = q.find('&');
            const std::string_view pair = q.substr(0, amp);
            given.push_back(pair.substr(0, pair.find('=')));
            if (amp == std::string_view::npos) break;
            q.remove_prefix(amp + 1);
        }
    }
    bool first = query == std::string::npos;
    for (const auto& [key, value] : connection_defaults) {
        if (std::find(given.begin(), given.end(), key) != given.end()) continue;  // the URL's own value wins
        conninfo += first ? '?' : '&';
        first = false;
        conninfo += key;
        conninfo += '=';
        conninfo += value;
    }

    // Display: the userinfo password and any password= query parameter become "***".
    std::string display = conninfo;
    const std::size_t authority_begin = display.find("://") + 3;
    const std::size_t authority_end = std::min(display.find_first_of("/?#", authority_begin), display.size());
    const std::size_t at = display.rfind('@', authority_end - 1);
    if (at != std::string::npos && at >= authority_begin) {
        const std::size_t colon = display.find(':', authority_begin);
        if (colon != std::string::npos && colon < at) display.replace(colon + 1, at - colon - 1, "***");
    }
    if (const std::size_t q = display.find('?'); q != std::string::npos) {
        std::size_t p = q + 1;
        while (p < display.size()) {
            std::size_t amp = display.find('&', p);
            if (amp == std::string::npos) amp = display.size();
            if (std::string_view(display).substr(p, amp - p).starts_with("password=")) {
                const std::size_t value_begin = p + 9;
                display.replace(value_begin, amp - value_begin, "***");
                amp = value_begin + 3;
            }
            p = amp + 1;
        }
    }
    return {std::move(conninfo), std::move(display), database_name_of_url(url)};
}

database_settings database_from_parts(const env_map& env) {
    const std::string host(lookup(env, "POSTGRES_HOST").value_or("localhost"));
    const std::uint16_t port = port_var(env, "POSTGRES_PORT", 5432);
    const std::string user(lookup(env, "POSTGRES_USER").value_or(""));
    // POSTGRESS_PASSWORD is a misspelling found in existing deployments' .env files.
    const std::string password(
        lookup(env, "POSTGRES_PASSWORD").value_or(lookup(env, "POSTGRESS_PASSWORD").value_or("")));
    const std::string dbname(lookup(env, "POSTGRES_DB").value_or(""));

    database_settings out;
    const auto add = [](std::string& s, std::string_view key, std::string_view value) {
        if (value.empty()) return;
        if (!s.empty()) s += ' ';
        s += key;
        s += '=';
        s += conninfo_value(value);
    };
    for (std::string* s : {&out.conninfo, &out.display}) {
        add(*s, "host", host);
        add(*s, "port", std::to_string(port));
        add(*s, "user", user);
        if (s == &out.conninfo) add(*s, "password", password);
        add(*s, "dbname", dbname);
        for (const auto& [key, value] : connection_defaults) {
            *s += ' ';
            *s += key;
            *s += '=';
            *s += value;
        }
    }
    out.name = dbname;
    return out;
}

std::vector<std::string> allowed_hosts_var(const env_map& env) {
    check_declared("ALLOWED_HOSTS");
    const auto it = env.find("ALLOWED_HOSTS");
    if (it == env.end()) return config{}.allowed_hosts;
    std::vector<std::string> hosts;
    std::string_view rest = it->second;
    while (true) {
        const std::size_t comma = rest.find(',');
        const std::string_view entry = trim(rest.substr(0, comma));
        if (!entry.empty()) hosts.push_back(to_lower(entry));
        if (comma == std::string_view::npos) break;
        rest.remove_prefix(comma + 1);
    }
    if (hosts.empty()) {
        // An empty list would refuse every connection: surely a mistake.
        fail("ALLOWED_HOSTS", "a comma-separated list of host patterns, e.g. example.com,.example.com or *",
             it->second);
    }
    return hosts;
}

}  // namespace

std::string_view to_string(environment env) {
    switch (env) {
        case environment::development: return "development";
        case environment::test: return "test";
        case environment::production: return "production";
    }
    return "development";
}

redis_endpoint parse_redis_url(std::string_view url) {
    const auto bad = []() -> redis_endpoint {
        // Never the value: it may hold a password.
        throw config_error("REDIS_URL", "REDIS_URL must look like redis://[:password@]host:port[/db]");
    };
    constexpr std::string_view scheme = "redis://";
    if (url.size() < scheme.size() || to_lower(url.substr(0, scheme.size())) != scheme) return bad();
    std::string_view rest = url.substr(scheme.size());

    const std::size_t slash = rest.find('/');
    std::string_view authority = rest.substr(0, slash);
    const std::string_view path = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash + 1);

    redis_endpoint out;
    if (const std::size_t at = authority.rfind('@'); at != std::string_view::npos) {
        const std::string_view userinfo = authority.substr(0, at);
        authority.remove_prefix(at + 1);
        const std::size_t colon = userinfo.find(':');
        if (colon == std::string_view::npos) return bad();  // a user without a password
        const std::string_view encoded = userinfo.substr(colon + 1);  // the user name is not used
        for (std::size_t i = 0; i < encoded.size(); ++i) {
            if (encoded[i] != '%') {
                out.password += encoded[i];
                continue;
            }
            if (i + 2 >= encoded.size()) return bad();  // "%" needs two hex digits
            const int hi = hex_digit(encoded[i + 1]);
            const int lo = hex_digit(encoded[i + 2]);
            if (hi < 0 || lo < 0) return bad();
            out.password += static_cast<char>(hi * 16 + lo);
            i += 2;
        }
    }

    std::string_view host;
    std::string_view port_text;
    if (!authority.empty() && authority.front() == '[') {
        const std::size_t close = authority.find(']');
        if (close == std::string_view::npos || close < 2) return bad();
        host = authority.substr(1, close - 1);  // without brackets: ready for a resolver
        const std::string_view after = authority.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':') return bad();
            port_text = after.substr(1);
            if (port_text.empty()) return bad();
        }
        if (!std::all_of(host.begin(), host.end(), [](char c) { return hex_digit(c) >= 0 || c == ':' || c == '.'; }))
            return bad();
    } else {
        const std::size_t colon = authority.find(':');
        host = authority.substr(0, colon);
        if (colon != std::string_view::npos) {
            port_text = authority.substr(colon + 1);
            if (port_text.empty()) return bad();
        }
        const auto host_char = [](char c) {
            return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '.' || c == '-' || c == '_';
        };
        if (!std::all_of(host.begin(), host.end(), host_char)) return bad();
    }
    if (host.empty()) return bad();
    out.host = std::string(host);

    if (!port_text.empty()) {
        const auto port = parse_unsigned(port_text);
        if (!port || *port < 1 || *port > 65535) return bad();
        out.port = static_cast<std::uint16_t>(*port);
    }
    if (!path.empty()) {
        const auto db = parse_unsigned(path);
        if (!db || *db > 2147483647u) return bad();
        out.db = static_cast<int>(*db);
    }
    return out;
}

config load_config(const env_map& env) {
    config c;

    if (const auto v = lookup(env, "ENV")) {
        const std::string value = to_lower(*v);
        if (value == "development") c.env = environment::development;
        else if (value == "test") c.env = environment::test;
        else if (value == "production") c.env = environment::production;
        else fail("ENV", "one of development, test, production", *v);
    }
    const bool production = c.env == environment::production;

    if (const auto v = lookup(env, "APP_NAME")) c.app_name = std::string(*v);
    if (const auto v = lookup(env, "APP_VERSION")) c.app_version = std::string(*v);
    c.port = port_var(env, "APP_PORT", c.port);

    if (const auto v = lookup(env, "SECRET_KEY")) c.secret_key = std::string(*v);
    if (production) check_production_secret(c.secret_key);

    c.allowed_hosts = allowed_hosts_var(env);

    if (const auto v = lookup(env, "LOG_LEVEL")) {
        std::string level = to_lower(*v);
        if (level == "warn") level = "warning";
        constexpr std::string_view levels[] = {"trace", "debug", "info", "warning", "error", "critical"};
        if (std::find(std::begin(levels), std::end(levels), level) == std::end(levels)) {
            fail("LOG_LEVEL", "one of trace, debug, info, warning, error, critical", *v);
        }
        c.log_level = level;
    }

    if (const auto v = lookup(env, "DEBUG")) {
        const auto value = parse_bool(*v);
        if (!value) fail("DEBUG", "true or false (or 1/0, yes/no, on/off)", *v);
        c.debug = *value;
    }
    if (production && c.debug) throw config_error("DEBUG", "DEBUG must be false when ENV=production");
    if (const auto v = lookup(env, "AUTH_REQUIRED")) {
        const auto value = parse_bool(*v);
        if (!value) fail("AUTH_REQUIRED", "true or false (or 1/0, yes/no, on/off)", *v);
        c.auth_required = *value;
    }
    // Per-connection bid rate: whole numbers, so the form stays simple to state and check.
    if (const auto v = lookup(env, "BID_RATE_LIMIT")) {
        const auto n = parse_unsigned(*v);
        if (!n || *n > 100000) fail("BID_RATE_LIMIT", "an integer from 0 (no limit) to 100000 bids per second", *v);
        c.bid_rate_limit = static_cast<double>(*n);
    }
    if (const auto v = lookup(env, "BID_BURST")) {
        const auto n = parse_unsigned(*v);
        if (!n || *n < 1 || *n > 100000) fail("BID_BURST", "an integer from 1 to 100000", *v);
        c.bid_burst = static_cast<double>(*n);
    }
    // A required token can only be checked with a key.
    if (c.auth_required && c.secret_key.empty()) {
        throw config_error("AUTH_REQUIRED", "AUTH_REQUIRED=true needs SECRET_KEY (tokens are signed with it)");
    }

    if (const auto v = lookup(env, "REDIS_URL")) c.redis = parse_redis_url(*v);
    // The password may live apart from the URL (a Secret of its own, shared with Redis itself);
    // a password written in the URL wins.
    if (const auto v = lookup(env, "REDIS_PASSWORD"); v && c.redis && c.redis->password.empty()) {
        c.redis->password = std::string(*v);
    }

    const database_settings db =
        lookup(env, "DATABASE_URL") ? database_from_url(*lookup(env, "DATABASE_URL")) : database_from_parts(env);
    c.database_conninfo = db.conninfo;
    c.database_display = db.display;

    c.heartbeat_interval = seconds_var(env, "HEARTBEAT_INTERVAL", c.heartbeat_interval);
    c.idle_timeout = seconds_var(env, "IDLE_TIMEOUT", c.idle_timeout);
    c.drain_timeout = seconds_var(env, "DRAIN_TIMEOUT", c.drain_timeout);

    c.history_limit = integer_var(env, "HISTORY_LIMIT", c.history_limit, 1, 10'000);
    c.max_message_bytes = integer_var(env, "MAX_MESSAGE_BYTES", c.max_message_bytes, 64, 1'048'576);
    c.db_pool_size = integer_var(env, "DB_POOL_SIZE", c.db_pool_size, 1, 64);
    c.threads = integer_var(env, "THREADS", c.threads, 0, 256);

    c.max_send_queue_bytes = integer_var(env, "MAX_SEND_QUEUE_BYTES", c.max_send_queue_bytes, 65'536, 268'435'456);
    c.send_timeout = seconds_var(env, "SEND_TIMEOUT", c.send_timeout);
    c.bid_timeout = seconds_var(env, "BID_TIMEOUT", c.bid_timeout);
    c.db_timeout = seconds_var(env, "DB_TIMEOUT", c.db_timeout);
    c.db_lock_timeout = seconds_var(env, "DB_LOCK_TIMEOUT", c.db_lock_timeout);
    if (c.db_timeout > c.bid_timeout) {
        throw config_error("DB_TIMEOUT", "DB_TIMEOUT must not exceed BID_TIMEOUT (a bid is answered within BID_TIMEOUT)");
    }
    if (c.db_lock_timeout >= c.db_timeout) {
        throw config_error("DB_LOCK_TIMEOUT", "DB_LOCK_TIMEOUT must be shorter than DB_TIMEOUT");
    }
    c.max_pending_bids_per_auction =
        integer_var(env, "MAX_PENDING_BIDS_PER_AUCTION", c.max_pending_bids_per_auction, 1, 1'000'000);
    c.max_pending_bids = integer_var(env, "MAX_PENDING_BIDS", c.max_pending_bids, 1, 10'000'000);
    c.db_queue_limit = integer_var(env, "DB_QUEUE_LIMIT", c.db_queue_limit, 1, 1'000'000);
    c.redis_timeout = seconds_var(env, "REDIS_TIMEOUT", c.redis_timeout);
    c.fanout_max_lag = seconds_var(env, "FANOUT_MAX_LAG", c.fanout_max_lag);
    if (c.fanout_max_lag >= c.bid_timeout) {
        throw config_error("FANOUT_MAX_LAG", "FANOUT_MAX_LAG must be shorter than BID_TIMEOUT (a reply waits behind it)");
    }

    c.database_name = db.name;
    if (const auto v = lookup(env, "REDIS_CHANNEL_PREFIX")) {
        const bool printable = std::all_of(v->begin(), v->end(), [](char ch) { return ch > 0x20 && ch < 0x7f; });
        if (!printable || v->size() > 128) {
            fail("REDIS_CHANNEL_PREFIX", "at most 128 printable characters without spaces, e.g. bidding:prod:", *v);
        }
        c.redis_channel_prefix = std::string(*v);
    } else {
        // Two deployments sharing one Redis keep apart when their databases differ.
        c.redis_channel_prefix = "bidding:" + (db.name.empty() ? std::string("default") : db.name) + ":";
    }
    return c;
}

const std::vector<std::string_view>& config_variables() {
    static const std::vector<std::string_view> names = {
        "ENV",           "APP_NAME",           "APP_VERSION",     "APP_PORT",     "SECRET_KEY",
        "ALLOWED_HOSTS", "LOG_LEVEL",          "DEBUG",           "REDIS_URL",    "POSTGRES_HOST",
        "POSTGRES_PORT", "POSTGRES_USER",      "POSTGRES_PASSWORD", "POSTGRESS_PASSWORD", "POSTGRES_DB",
        "DATABASE_URL",  "HEARTBEAT_INTERVAL", "IDLE_TIMEOUT",    "HISTORY_LIMIT", "MAX_MESSAGE_BYTES",
        "DRAIN_TIMEOUT", "DB_POOL_SIZE",       "THREADS",         "AUTH_REQUIRED", "BID_RATE_LIMIT", "BID_BURST",
        "MAX_SEND_QUEUE_BYTES", "SEND_TIMEOUT", "BID_TIMEOUT", "DB_TIMEOUT", "DB_LOCK_TIMEOUT",
        "MAX_PENDING_BIDS_PER_AUCTION", "MAX_PENDING_BIDS", "DB_QUEUE_LIMIT", "REDIS_TIMEOUT", "REDIS_CHANNEL_PREFIX",
        "REDIS_PASSWORD", "FANOUT_MAX_LAG",
    };
    return names;
}

}  // namespace bidding
