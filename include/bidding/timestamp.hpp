#pragma once
// Points in time as the protocol writes them: UTC, ISO 8601, milliseconds
// ("2026-12-02T17:00:00.000Z"), and the durations the command line takes ("10m", "1h30m"). Pure.
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace bidding {

// Milliseconds since the Unix epoch, UTC: the precision of every time on the wire.
using timestamp = std::chrono::sys_time<std::chrono::milliseconds>;

// "2026-12-02T17:00:00.000Z"
std::string format_timestamp(timestamp t);

// "Wed, 02 Dec 2026 17:00:00 GMT": the HTTP Date header's form (RFC 9110's IMF-fixdate).
std::string format_http_date(timestamp t);

// YYYY-MM-DDTHH:MM:SS, optional fraction (digits after the third are truncated), then `Z` or an
// offset `+HH:MM` / `-HH:MM` (required: a time without a zone means nothing to a server in
// another one). Lowercase `t`/`z` and a space instead of `T` are accepted, as RFC 3339 allows.
// Years 1970–9999. nullopt for anything else.
std::optional<timestamp> parse_timestamp(std::string_view text);

// "90", "90s", "10m", "2h", "1d", "1h30m": a positive whole number of seconds, at most ~100 years.
std::optional<std::chrono::seconds> parse_duration(std::string_view text);

}  // namespace bidding
