#pragma once
#include <bidding/client_address.hpp>
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

    // Overload and faults (docs/architecture.md, "What each failure does").
    std::size_t max_send_queue_bytes{1 << 20};  // per socket; a client further behind is cut off
    std::chrono::milliseconds send_timeout{10'000};  // a write (or a close) making no progress for this long
    std::chrono::milliseconds bid_timeout{5'000};    // every bid is answered within this
    std::chrono::milliseconds db_timeout{2'000};     // every database job ends within this
    std::chrono::milliseconds db_lock_timeout{1'000};  // waiting for an auction's row lock
    std::size_t max_pending_bids_per_auction{1024};  // undecided bids of one auction on this pod
    std::size_t max_pending_bids{16'384};            // undecided bids on this pod in total
    std::size_t db_queue_limit{4096};                // database jobs waiting for a pool thread
    std::chrono::milliseconds redis_timeout{2'000};  // a Redis reply (or a ping's) later than this: connection lost
    std::chrono::milliseconds fanout_max_lag{500};   // most clients of an auction this late: its bids are refused
    // How often each pod looks for timed auctions past their end (docs/timed-auctions.md): a close
    // is committed within this plus one transaction of the end.
    std::chrono::milliseconds close_check_interval{250};

    // Hostile clients (docs/security.md).
    std::size_t max_connections{0};           // WebSocket connections of this pod; 0: the open-files limit - 256
    std::size_t max_connections_per_ip{100};  // per client address (an IPv6 /64); 0: no limit
    std::size_t max_opening_connections{256};  // WebSocket connections set up at once (opening_gate)
    trusted_proxies trusted;                  // TRUSTED_PROXIES: whose X-Forwarded-For is believed
    std::chrono::milliseconds http_header_timeout{10'000};  // a request's headers complete within this
    std::chrono::milliseconds ws_handshake_timeout{10'000};  // the 101 answer taken by the client within this

    std::string database_name;         // for the default channel prefix; may be empty
    std::string redis_channel_prefix;  // "bidding:{database}:" unless REDIS_CHANNEL_PREFIX says otherwise
};

// Every environment variable load_config reads (`bidding-server config-vars` prints them; the
// deployment files are checked against this list).
const std::vector<std::string_view>& config_variables();

// Builds the configuration from an environment map. Throws config_error whose
// message names the variable and the accepted form, e.g.
// "APP_PORT must be an integer from 1 to 65535 (got \"abc\")".
config load_config(const env_map& env);

// The SECRET_KEY values of the repository's example files (.env.example, k8s/secrets.env.example),
// which ENV=production refuses: read from those files at build time.
const std::vector<std::string_view>& example_secret_keys();

// Parses "redis://[:password@]host:port[/db]". Throws config_error for REDIS_URL.
redis_endpoint parse_redis_url(std::string_view url);

std::string_view to_string(environment env);

}  // namespace bidding
