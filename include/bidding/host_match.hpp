#pragma once
// ALLOWED_HOSTS matching, as Django's validate_host / Channels' AllowedHostsOriginValidator do it.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace bidding {

// Lower-cases and strips the port and a trailing dot: "Example.COM:8000" -> "example.com",
// "[::1]:8000" -> "[::1]". Returns nullopt for an empty or malformed host.
std::optional<std::string> normalize_host(std::string_view host_with_port);

// The host of an Origin header value: "https://app.example.com:8443" -> "app.example.com".
// "null" and values without a scheme give nullopt.
std::optional<std::string> origin_host(std::string_view origin);

// Pattern forms: "*" matches any host, ".example.com" matches example.com and every
// subdomain, anything else must match exactly (case-insensitive). `host` is a raw
// Host header value (port allowed).
bool host_allowed(const std::vector<std::string>& patterns, std::string_view host);

// The upgrade check: Host must be allowed and, when an Origin header is present, its host too.
bool request_allowed(const std::vector<std::string>& patterns, std::string_view host_header,
                     std::optional<std::string_view> origin_header);

}  // namespace bidding
