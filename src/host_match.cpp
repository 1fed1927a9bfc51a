#include <bidding/host_match.hpp>
#include <bidding/text.hpp>
#include <bidding/uri.hpp>

#include <boost/url/authority_view.hpp>
#include <boost/url/parse.hpp>

#include <algorithm>
#include <cstddef>

namespace bidding {

namespace {

bool is_name_char(char c) { return is_ascii_digit(c) || (c >= 'a' && c <= 'z') || c == '.' || c == '-'; }

// Django's is_same_domain, for a normalized host and a pattern other than "*".
bool same_domain(std::string_view host, std::string_view pattern) {
    if (pattern.empty()) return false;
    if (pattern.front() == '.') {
        return host == pattern.substr(1) ||
               (host.size() > pattern.size() && host.substr(host.size() - pattern.size()) == pattern);
    }
    return host == pattern;
}

bool normalized_host_allowed(const std::vector<std::string>& patterns, std::string_view host) {
    return std::any_of(patterns.begin(), patterns.end(), [&](const std::string& raw) {
        const std::string pattern = to_lower(raw);
        return pattern == "*" || same_domain(host, pattern);
    });
}

bool has_wildcard(const std::vector<std::string>& patterns) {
    return std::find(patterns.begin(), patterns.end(), "*") != patterns.end();
}

}  // namespace

// Django's host_validation_re, ^([a-z0-9.-]+|\[[a-f0-9]*:[a-f0-9\.:]+\])(:[0-9]+)?$, over an
// authority as Boost.URL parses it: no userinfo, a non-empty port when a colon is given, and an
// IPv6 literal that is an IPv6 address.
std::optional<std::string> normalize_host(std::string_view host_with_port) {
    const std::string lowered = to_lower(host_with_port);
    const auto parsed = boost::urls::parse_authority(lowered);
    if (!parsed || parsed->has_userinfo()) return std::nullopt;
    if (parsed->has_port() && parsed->port().empty()) return std::nullopt;  // "example.com:"
    std::string_view host = parsed->encoded_host();
    switch (parsed->host_type()) {
    case boost::urls::host_type::ipv6:
        return std::string(host);  // brackets kept, as in ALLOWED_HOSTS
    case boost::urls::host_type::ipv4:
    case boost::urls::host_type::name:
        if (host.empty() || !std::all_of(host.begin(), host.end(), is_name_char)) return std::nullopt;
        if (host.back() == '.') host.remove_suffix(1);  // "example.com." is example.com
        if (host.empty()) return std::nullopt;
        return std::string(host);
    default:
        return std::nullopt;  // [vX.future]
    }
}

std::optional<std::string> origin_host(std::string_view origin) {
    // scheme "://" authority [path...], as Boost.URL parses a URI; the userinfo is not the host.
    const auto parsed = parse_uri_guarded(origin);
    if (!parsed || !parsed->has_authority()) return std::nullopt;
    // Boost.URL 1.81 lets a path without its leading "/" follow the authority ("host:8x" reads
    // as port 8, path "x"); RFC 3986 does not: such an authority is malformed.
    if (!parsed->encoded_path().empty() && !parsed->is_path_absolute()) return std::nullopt;
    return normalize_host(parsed->encoded_host_and_port());
}

bool host_allowed(const std::vector<std::string>& patterns, std::string_view host) {
    const std::optional<std::string> normalized = normalize_host(host);
    return normalized && normalized_host_allowed(patterns, *normalized);
}

bool request_allowed(const std::vector<std::string>& patterns, std::string_view host_header,
                     std::optional<std::string_view> origin_header) {
    if (!host_allowed(patterns, host_header)) return false;
    if (!origin_header) return true;  // non-browser clients send no Origin
    const std::optional<std::string> host = origin_host(*origin_header);
    // "null" (sandboxed pages, file://) and garbage pass only when every host is allowed.
    if (!host) return has_wildcard(patterns);
    return normalized_host_allowed(patterns, *host);
}

}  // namespace bidding
