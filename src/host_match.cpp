#include <bidding/host_match.hpp>
#include <bidding/text.hpp>

#include <algorithm>
#include <cstddef>

namespace bidding {

namespace {

constexpr auto is_digit = is_ascii_digit;
bool is_hex(char c) { return is_digit(c) || (c >= 'a' && c <= 'f'); }

// Django's host_validation_re, applied to an already lower-cased host:
// ^([a-z0-9.-]+|\[[a-f0-9]*:[a-f0-9\.:]+\])(:[0-9]+)?$
bool valid_port_suffix(std::string_view s) {
    if (s.empty()) return true;
    if (s.front() != ':' || s.size() < 2) return false;
    return std::all_of(s.begin() + 1, s.end(), is_digit);
}

bool valid_ipv6_literal(std::string_view s) {  // "[...]" including the brackets
    if (s.size() < 3 || s.front() != '[' || s.back() != ']') return false;
    const std::string_view inner = s.substr(1, s.size() - 2);
    std::size_t i = 0;
    while (i < inner.size() && is_hex(inner[i])) ++i;
    if (i == inner.size() || inner[i] != ':') return false;
    ++i;
    if (i == inner.size()) return false;  // [a-f0-9\.:]+ needs at least one character
    for (; i < inner.size(); ++i) {
        if (!is_hex(inner[i]) && inner[i] != '.' && inner[i] != ':') return false;
    }
    return true;
}

bool is_name_char(char c) { return is_digit(c) || (c >= 'a' && c <= 'z') || c == '.' || c == '-'; }

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

std::optional<std::string> normalize_host(std::string_view host_with_port) {
    const std::string host = to_lower(host_with_port);
    if (host.empty()) return std::nullopt;

    std::string_view view = host;
    if (view.front() == '[') {
        const std::size_t close = view.find(']');
        if (close == std::string_view::npos) return std::nullopt;
        const std::string_view literal = view.substr(0, close + 1);
        if (!valid_ipv6_literal(literal) || !valid_port_suffix(view.substr(close + 1))) return std::nullopt;
        return std::string(literal);  // brackets kept, as in ALLOWED_HOSTS
    }

    const std::size_t colon = view.find(':');
    std::string_view domain = view.substr(0, colon);
    if (colon != std::string_view::npos && !valid_port_suffix(view.substr(colon))) return std::nullopt;
    if (domain.empty() || !std::all_of(domain.begin(), domain.end(), is_name_char)) return std::nullopt;
    if (domain.back() == '.') domain.remove_suffix(1);  // "example.com." is example.com
    if (domain.empty()) return std::nullopt;
    return std::string(domain);
}

std::optional<std::string> origin_host(std::string_view origin) {
    // scheme "://" authority [path...]; the scheme is ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ).
    const std::size_t sep = origin.find("://");
    if (sep == std::string_view::npos || sep == 0) return std::nullopt;
    const std::string_view scheme = origin.substr(0, sep);
    const auto is_alpha = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
    if (!is_alpha(scheme.front())) return std::nullopt;
    for (char c : scheme) {
        if (!is_alpha(c) && !is_digit(c) && c != '+' && c != '-' && c != '.') return std::nullopt;
    }

    std::string_view authority = origin.substr(sep + 3);
    authority = authority.substr(0, authority.find_first_of("/?#"));
    if (const std::size_t at = authority.rfind('@'); at != std::string_view::npos) {
        authority.remove_prefix(at + 1);  // drop userinfo
    }
    return normalize_host(authority);
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
