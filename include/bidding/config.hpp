#pragma once
#include <bidding/dotenv.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace bidding {

// A bad configuration value: the process prints what() on one line and exits with code 2.
class config_error : public std::runtime_error {
public:
    config_error(std::string variable, const std::string& message)
        : std::runtime_error(message), variable_(std::move(variable)) {}
    const std::string& variable() const noexcept { return variable_; }

private:
    std::string variable_;
};

enum class environment { development, test, production };

struct redis_endpoint {
    std::string host;
    std::uint16_t port{6379};
    std::string password;  // secret: never logged
    int db{0};
};

struct config {
    environment env{environment::development};
    std::string app_name{"bidding-server"};
    std::string app_version{BIDDING_VERSION};
    std::uint16_t port{8000};
    std::string secret_key;  // secret
    std::vector<std::string> allowed_hosts{"localhost", "127.0.0.1", "[::1]"};
    std::string log_level{"info"};  // one of trace, debug, info, warning, error, critical
    bool debug{false};
    bool auth_required{false};  // WebSocket clients must present a valid bidder token
    double bid_rate_limit{50};  // bids per second per connection (0: no limit)
    double bid_burst{100};      // bids a connection may send at once
    std::optional<redis_endpoint> redis;  // empty REDIS_URL: single-pod mode
    std::string database_conninfo;        // libpq conninfo or URI: contains the password, never logged
    std::string database_display;         // the same without the password, for logs
    std::chrono::milliseconds heartbeat_interval{30'000};
    std::chrono::milliseconds idle_timeout{360'000};
    std::size_t history_limit{100};
    std::size_t max_message_bytes{4096};
    std::chrono::milliseconds drain_timeout{20'000};
    std::size_t db_pool_size{4};
    std::size_t threads{0};  // 0: one per hardware thread
};

// Every environment variable load_config reads (`bidding-server config-vars` prints them; the
// deployment files are checked against this list).
const std::vector<std::string_view>& config_variables();

// Builds the configuration from an environment map. Throws config_error whose
// message names the variable and the accepted form, e.g.
// "APP_PORT must be an integer from 1 to 65535 (got \"abc\")".
config load_config(const env_map& env);

// Parses "redis://[:password@]host:port[/db]". Throws config_error for REDIS_URL.
redis_endpoint parse_redis_url(std::string_view url);

std::string_view to_string(environment env);

}  // namespace bidding
