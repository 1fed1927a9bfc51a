// Request targets, hosts and origins, the Redis and Postgres URLs, and client addresses. The
// input's lines are the arguments: target, Host, Origin, ALLOWED_HOSTS, peer address,
// X-Forwarded-For, TRUSTED_PROXIES; every line also goes through each one-string parser.
#include <fuzz_targets.hpp>

#include <bidding/client_address.hpp>
#include <bidding/config.hpp>
#include <bidding/host_match.hpp>
#include <bidding/http_routes.hpp>
#include <bidding/integer_text.hpp>
#include <bidding/text.hpp>
#include <bidding/uri.hpp>

#include <boost/url/url.hpp>

#include <algorithm>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace bidding::fuzz {

namespace {

bool lowercase(std::string_view s) {
    return std::none_of(s.begin(), s.end(), [](char c) { return c >= 'A' && c <= 'Z'; });
}

void check_target(std::string_view target) {
    const bool valid = valid_target(target);
    const auto path = path_of(target);
    const auto since = query_param(target, "since");
    const auto id = match_ws_bid_path(target);
    if (!valid) {
        fuzz_check(path.empty() && !since && !id, "an invalid target has a path, a query or an auction", target);
        return;
    }
    fuzz_check(path.starts_with('/') && target.starts_with(path), "a target's path is not its beginning", target);
    if (id) {
        fuzz_check(id->value() >= 1 && path.starts_with("/ws/bid/"), "an auction id from elsewhere", target);
    }
    query_param(target, "token");
}

void check_host(std::string_view host) {
    const auto normalized = normalize_host(host);
    if (normalized) {
        fuzz_check(!normalized->empty() && lowercase(*normalized), "a normalized host empty or not lowercase", host);
    }
    fuzz_check(host_allowed({"*"}, host) == normalized.has_value(), "* does not allow exactly the well-formed hosts",
               host);
    if (const auto origin = origin_host(host)) {
        fuzz_check(!origin->empty() && lowercase(*origin), "an origin's host empty or not lowercase", host);
    }
}

// The same URL with every password replaced by another of the same length.
std::optional<std::string> other_passwords(std::string_view text) {
    const auto parsed = parse_uri_guarded(text);
    if (!parsed) return std::nullopt;
    boost::urls::url url(*parsed);
    bool changed = false;
    if (url.has_password() && !url.encoded_password().empty()) {
        url.set_encoded_password(std::string(url.encoded_password().size(), 'x'));
        changed = true;
    }
    auto params = url.params(boost::urls::encoding_opts{false, false, false});
    for (auto it = params.begin(); it != params.end(); ++it) {
        if (const auto p = *it; p.key == "password" && p.has_value && !p.value.empty()) {
            it = params.set(it, std::string(p.value.size(), 'x'));
            changed = true;
        }
    }
    if (!changed) return std::nullopt;
    return std::string(url.buffer());
}

// DATABASE_URL through load_config: accepted or a config_error naming DATABASE_URL; what is
// logged of it (the display) does not depend on its passwords.
void check_database_url(std::string_view text) {
    if (trim(text).empty()) return;  // empty: the POSTGRES_* settings apply
    std::optional<config> c;
    try {
        c = load_config({{"DATABASE_URL", std::string(text)}});
    } catch (const config_error& e) {
        fuzz_check(e.variable() == "DATABASE_URL", "a DATABASE_URL error blames another variable", e.variable());
        return;
    }
    fuzz_check(!c->database_conninfo.empty(), "an accepted DATABASE_URL gives no conninfo", text);
    if (const auto other = other_passwords(text)) {
        const config d = load_config({{"DATABASE_URL", *other}});
        fuzz_check(d.database_display == c->database_display, "the database display shows a password",
                   c->database_display);
    }
}

void check_redis_url(std::string_view text) {
    try {
        const auto endpoint = parse_redis_url(text);
        fuzz_check(!endpoint.host.empty() && endpoint.port >= 1 && endpoint.db >= 0, "a Redis endpoint out of range",
                   text);
    } catch (const config_error& e) {
        fuzz_check(e.variable() == "REDIS_URL", "a REDIS_URL error blames another variable", e.variable());
    }
}

std::optional<ip_address> check_address(std::string_view text) {
    const auto a = ip_address::parse(text);
    if (!a) return a;
    const auto printed = a->to_string();
    fuzz_check(ip_address::parse(printed) == a, "an address printed does not parse back the same", printed);
    const auto key = a->limit_key();
    fuzz_check(a->is_v4() ? key == printed : key.ends_with("/64"), "a limit key of the wrong form", key);
    return a;
}

std::optional<trusted_proxies> check_proxies(std::string_view text) {
    std::string bad;
    auto proxies = trusted_proxies::parse(text, &bad);
    if (!proxies) {
        fuzz_check(!bad.empty(), "a refused TRUSTED_PROXIES names no entry", text);
        return proxies;
    }
    // A single address trusts itself.
    if (text.find(',') == std::string_view::npos && text.find('/') == std::string_view::npos) {
        if (const auto a = ip_address::parse(text)) {
            fuzz_check(proxies->contains(*a), "a trusted address is not trusted", text);
        }
    }
    return proxies;
}

}  // namespace

void url_one(std::string_view input) {
    const auto f = fields(input, '\n', 7);
    for (const auto field : f) {
        check_target(field);
        check_host(field);
        check_redis_url(field);
        check_database_url(field);
        check_address(field);
        check_proxies(field);
    }

    // The upgrade's decision, for the default ALLOWED_HOSTS, any host, and the input's list.
    const std::string_view target = f[0];
    const std::string_view host = f[1];
    const std::optional<std::string_view> origin = f[2].empty() ? std::nullopt : std::optional(f[2]);
    std::vector<std::string> listed;
    for (const auto entry : fields(f[3], ',', 16)) {
        if (!trim(entry).empty()) listed.push_back(to_lower(trim(entry)));
    }
    const std::vector<std::vector<std::string>> lists = {
        {"localhost", "127.0.0.1", "[::1]"}, {"*"}, {".example.com"}, listed};
    for (const auto& allowed : lists) {
        const auto d = decide_upgrade(allowed, target, host, origin);
        const bool allowed_request = request_allowed(allowed, host, origin);
        fuzz_check(!allowed_request || host_allowed(allowed, host), "an origin allowed on a refused host", host);
        fuzz_check((d.status == 403) == !allowed_request, "403 is not exactly the refused host or origin", host);
        fuzz_check(d.status == 0 || d.status == 400 || d.status == 403 || d.status == 404, "an unexpected status",
                   target);
        if (d.status == 0) {
            fuzz_check(match_ws_bid_path(target) == d.id && d.id.value() >= 1, "an upgrade to another auction", target);
            const auto since = query_param(target, "since");
            fuzz_check(since ? d.since == parse_id<seq_t>(*since, 0) : !d.since, "since is not the query's", target);
        }
    }

    // The client behind trusted proxies: the peer itself, or an address of X-Forwarded-For.
    const auto peer = ip_address::parse(f[4]).value_or(*ip_address::parse("10.0.0.1"));
    const auto trusted = trusted_proxies::parse(f[6]).value_or(*trusted_proxies::parse("10.0.0.0/8, ::1"));
    const auto client = client_address(peer, f[5], trusted);
    if (!trusted.contains(peer)) {
        fuzz_check(client == peer, "the client of an untrusted peer is not the peer", f[5]);
    } else if (!(client == peer)) {
        bool listed_hop = false;
        for (const auto hop : fields(f[5], ',', f[5].size() + 1)) {
            if (ip_address::parse(hop) == client) listed_hop = true;
        }
        fuzz_check(listed_hop, "a client address that X-Forwarded-For does not name", f[5]);
    }
}

}  // namespace bidding::fuzz
