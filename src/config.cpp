#include <bidding/config.hpp>
#include <bidding/text.hpp>
#include <bidding/integer_text.hpp>
#include <bidding/uri.hpp>

#include <boost/url/grammar/ci_string.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url.hpp>

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
    if (!std::all_of(whole.begin(), whole.end(), is_ascii_digit) || !std::all_of(frac.begin(), frac.end(), is_ascii_digit)) bad();

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
std::string database_name_of_url(const boost::urls::url_view& url) {
    std::string path = url.path();
    return path.empty() ? path : path.substr(1);  // an absolute path: database_from_url checked
}

const std::string database_url_form = "a URL starting with postgres:// or postgresql://";

database_settings database_from_url(std::string_view url) {
    // No value in the messages: the URL may carry a password.
    const auto parsed = parse_uri_guarded(url);
    // Boost.URL 1.81 lets a path without its leading "/" follow the authority ("db:5x/bids" reads
    // as port 5, path "x/bids"); RFC 3986 does not.
    if (!parsed || (!parsed->encoded_path().empty() && !parsed->is_path_absolute())) {
        throw config_error("DATABASE_URL", "DATABASE_URL must be " + database_url_form +
                                               " that parses as a URL (RFC 3986): one host[:port], and characters "
                                               "such as @ / : # ? and spaces percent-encoded in the user name and "
                                               "password");
    }
    const boost::urls::url_view& given = *parsed;
    using boost::urls::grammar::ci_is_equal;
    const bool postgres = ci_is_equal(given.scheme(), "postgres") || ci_is_equal(given.scheme(), "postgresql");
    if (!postgres || !given.has_authority()) {
        throw config_error("DATABASE_URL", "DATABASE_URL must be " + database_url_form);
    }
    boost::urls::url conninfo(given);
    const auto given_params = given.params(boost::urls::encoding_opts{false, false, false});  // names decoded
    for (const auto& [key, value] : connection_defaults) {
        if (given_params.contains(key)) continue;  // the URL's own value wins
        conninfo.encoded_params().append({key, value});
    }

    // Display: the userinfo password and any password= query parameter become "***".
    boost::urls::url display(conninfo);
    if (display.has_password()) display.set_encoded_password("***");
    auto display_params = display.params(boost::urls::encoding_opts{false, false, false});
    for (auto it = display_params.begin(); it != display_params.end(); ++it) {
        if (const auto p = *it; p.key == "password" && p.has_value) it = display_params.set(it, "***");
    }
    return {std::string(conninfo.buffer()), std::string(display.buffer()), database_name_of_url(given)};
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
    const auto parsed = parse_uri_guarded(url);  // a bad % escape fails here
    if (!parsed) return bad();
    const boost::urls::url_view& u = *parsed;
    if (!boost::urls::grammar::ci_is_equal(u.scheme(), "redis") || !u.has_authority() || u.has_query() ||
        u.has_fragment()) {
        return bad();
    }

    redis_endpoint out;
    if (u.has_userinfo()) {
        if (!u.has_password()) return bad();  // a user without a password
        out.password = u.password();          // percent-decoded; the user name is not used
    }

    switch (u.host_type()) {
    case boost::urls::host_type::ipv6:
        out.host = u.host_address();  // without brackets: ready for a resolver
        break;
    case boost::urls::host_type::ipv4:
    case boost::urls::host_type::name: {
        const std::string_view host = u.encoded_host();
        const auto host_char = [](char c) {
            return is_ascii_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '.' || c == '-' || c == '_';
        };
        if (host.empty() || !std::all_of(host.begin(), host.end(), host_char)) return bad();
        out.host = std::string(host);
        break;
    }
    default:
        return bad();  // [vX.future]
    }

    if (u.has_port()) {
        const auto port = parse_unsigned(u.port());  // "host:" has an empty port: refused
        if (!port || *port < 1 || *port > 65535) return bad();
        out.port = static_cast<std::uint16_t>(*port);
    }
    std::string_view path = u.encoded_path();
    if (!path.empty()) {
        // Boost.URL 1.81 lets a path without its leading "/" follow the authority ("host:1,5"
        // reads as port 1, path ",5"); RFC 3986 does not.
        if (!u.is_path_absolute()) return bad();
        path.remove_prefix(1);
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
    c.close_check_interval = seconds_var(env, "CLOSE_CHECK_INTERVAL", c.close_check_interval);
    if (c.fanout_max_lag >= c.bid_timeout) {
        throw config_error("FANOUT_MAX_LAG", "FANOUT_MAX_LAG must be shorter than BID_TIMEOUT (a reply waits behind it)");
    }

    c.max_connections = integer_var(env, "MAX_CONNECTIONS", c.max_connections, 0, 10'000'000);
    c.max_connections_per_ip = integer_var(env, "MAX_CONNECTIONS_PER_IP", c.max_connections_per_ip, 0, 10'000'000);
    c.max_opening_connections = integer_var(env, "MAX_OPENING_CONNECTIONS", c.max_opening_connections, 1, 1'000'000);
    if (const auto v = lookup(env, "TRUSTED_PROXIES")) {
        std::string bad;
        auto parsed = trusted_proxies::parse(*v, &bad);
        if (!parsed) {
            fail("TRUSTED_PROXIES", "a comma-separated list of IP addresses and networks, e.g. 10.0.0.0/8,192.168.1.7,fd00::/8",
                 bad);
        }
        c.trusted = std::move(*parsed);
    }
    c.http_header_timeout = seconds_var(env, "HTTP_HEADER_TIMEOUT", c.http_header_timeout);
    c.ws_handshake_timeout = seconds_var(env, "WS_HANDSHAKE_TIMEOUT", c.ws_handshake_timeout);

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
        "REDIS_PASSWORD", "FANOUT_MAX_LAG", "MAX_CONNECTIONS", "MAX_CONNECTIONS_PER_IP", "MAX_OPENING_CONNECTIONS", "TRUSTED_PROXIES",
        "HTTP_HEADER_TIMEOUT", "WS_HANDSHAKE_TIMEOUT", "CLOSE_CHECK_INTERVAL",
    };
    return names;
}

}  // namespace bidding
