#pragma once
#include <map>
#include <string>
#include <string_view>

namespace bidding {

using env_map = std::map<std::string, std::string, std::less<>>;

// Parses .env text: KEY=VALUE lines, '#' comments, blank lines, an optional "export "
// prefix, values optionally in single quotes (literal) or double quotes (\n, \", \\ escapes).
// Unquoted values lose trailing " # comment" and surrounding whitespace.
// Throws config_error naming the line for a line that is none of these.
env_map parse_dotenv(std::string_view text);

// The effective environment: `dotenv` entries overridden by `process_env` (real variables win).
env_map merge_env(const env_map& dotenv, const env_map& process_env);

// Reads the process environment (environ).
env_map process_environment();

}  // namespace bidding
