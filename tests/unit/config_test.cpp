#include <bidding/config.hpp>
#include <bidding/dotenv.hpp>

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

namespace bidding {
namespace {

using namespace std::chrono_literals;

// Random-looking enough for ENV=production: 40 characters, many different ones.
const std::string strong_key = "Xq7vR2mK9pL4sT8wZ1nB6cY3hJ5dF0gA-qwerty_";
// What libpq gets besides the settings' own values (docs/architecture.md: faults).
const std::string tcp_defaults =
    "connect_timeout=2 keepalives=1 keepalives_idle=5 keepalives_interval=2 keepalives_count=3 tcp_user_timeout=5000";
const std::string url_defaults =
    "connect_timeout=2&keepalives=1&keepalives_idle=5&keepalives_interval=2&keepalives_count=3&tcp_user_timeout=5000";

// Expects load_config(env) to fail on `variable`; returns the message.
std::string expect_config_error(const env_map& env, const std::string& variable) {
    try {
        load_config(env);
    } catch (const config_error& e) {
        EXPECT_EQ(e.variable(), variable) << "error blamed the wrong variable: " << e.what();
        const std::string message = e.what();
        EXPECT_NE(message.find(variable), std::string::npos) << "message does not name " << variable << ": " << message;
        EXPECT_EQ(message.find('\n'), std::string::npos) << "message is not one line: " << message;
        return message;
    }
    ADD_FAILURE() << "load_config accepted a bad " << variable;
    return {};
}

// ---- defaults ----------------------------------------------------------------------------

TEST(ConfigVariables, EveryDeclaredVariableIsAcceptedWithAValidValue) {
    // load_config throws logic_error on reading an undeclared variable, so every test here also
    // checks that config_variables() (printed by `bidding-server config-vars`) is complete.
    const env_map valid = {{"ENV", "production"}, {"APP_NAME", "a"}, {"APP_VERSION", "1"}, {"APP_PORT", "9000"},
                           {"SECRET_KEY", strong_key}, {"ALLOWED_HOSTS", "a.example"},
                           {"LOG_LEVEL", "debug"}, {"DEBUG", "false"}, {"REDIS_URL", "redis://r:6379/0"},
                           {"POSTGRES_HOST", "db"}, {"POSTGRES_PORT", "5433"}, {"POSTGRES_USER", "u"},
                           {"POSTGRES_PASSWORD", "p"}, {"POSTGRESS_PASSWORD", "p"}, {"POSTGRES_DB", "d"},
                           {"DATABASE_URL", "postgresql://u:p@db/d"}, {"HEARTBEAT_INTERVAL", "1"},
                           {"IDLE_TIMEOUT", "2"}, {"HISTORY_LIMIT", "3"}, {"MAX_MESSAGE_BYTES", "100"},
                           {"DRAIN_TIMEOUT", "4"}, {"DB_POOL_SIZE", "2"}, {"THREADS", "1"},
                           {"AUTH_REQUIRED", "true"}, {"BID_RATE_LIMIT", "5"}, {"BID_BURST", "10"},
                           {"MAX_SEND_QUEUE_BYTES", "65536"}, {"SEND_TIMEOUT", "3"}, {"BID_TIMEOUT", "4"},
                           {"DB_TIMEOUT", "1.5"}, {"DB_LOCK_TIMEOUT", "0.5"}, {"MAX_PENDING_BIDS_PER_AUCTION", "10"},
                           {"MAX_PENDING_BIDS", "100"}, {"DB_QUEUE_LIMIT", "50"}, {"REDIS_TIMEOUT", "1"},
                           {"REDIS_CHANNEL_PREFIX", "bids:prod:"}, {"REDIS_PASSWORD", "pw"},
                           {"FANOUT_MAX_LAG", "0.25"}, {"MAX_CONNECTIONS", "1000"},
                           {"MAX_CONNECTIONS_PER_IP", "10"}, {"MAX_OPENING_CONNECTIONS", "64"}, {"TRUSTED_PROXIES", "10.0.0.0/8, fd00::/8"},
                           {"HTTP_HEADER_TIMEOUT", "5"}, {"WS_HANDSHAKE_TIMEOUT", "5"},
                           {"CLOSE_CHECK_INTERVAL", "0.1"}};
    EXPECT_NO_THROW(load_config(valid));
    EXPECT_EQ(load_config(valid).close_check_interval, std::chrono::milliseconds{100});
    for (const auto name : config_variables()) {
        EXPECT_TRUE(valid.count(std::string(name)) == 1) << name << " is declared but this test does not set it";
    }
    EXPECT_EQ(valid.size(), config_variables().size()) << "a variable set here is not declared";
}

TEST(LoadConfig, AuthRequiredNeedsASecretKey) {
    EXPECT_FALSE(load_config({}).auth_required) << "tokens are optional by default";
    EXPECT_TRUE(load_config({{"AUTH_REQUIRED", "true"}, {"SECRET_KEY", "k"}}).auth_required);
    try {
        load_config({{"AUTH_REQUIRED", "true"}});
        FAIL() << "AUTH_REQUIRED without SECRET_KEY would refuse every client";
    } catch (const config_error& e) {
        EXPECT_EQ(e.variable(), "AUTH_REQUIRED");
    }
    EXPECT_THROW(load_config({{"AUTH_REQUIRED", "maybe"}}), config_error);
}

TEST(LoadConfig, Defaults) {
    const config c = load_config({});
    EXPECT_EQ(c.env, environment::development);
    EXPECT_EQ(c.app_name, "bidding-server");
    EXPECT_EQ(c.app_version, BIDDING_VERSION);
    EXPECT_EQ(c.port, 8000);
    EXPECT_EQ(c.secret_key, "");
    EXPECT_EQ(c.allowed_hosts, (std::vector<std::string>{"localhost", "127.0.0.1", "[::1]"}));
    EXPECT_EQ(c.log_level, "info");
    EXPECT_FALSE(c.debug);
    EXPECT_FALSE(c.redis.has_value());
    EXPECT_EQ(c.database_conninfo, "host='localhost' port='5432' " + tcp_defaults);
    EXPECT_EQ(c.database_display, "host='localhost' port='5432' " + tcp_defaults);
    EXPECT_EQ(c.heartbeat_interval, 30s);
    EXPECT_EQ(c.idle_timeout, 360s);
    EXPECT_EQ(c.drain_timeout, 20s);
    EXPECT_EQ(c.history_limit, 100u);
    EXPECT_EQ(c.max_message_bytes, 4096u);
    EXPECT_EQ(c.db_pool_size, 4u);
    EXPECT_EQ(c.threads, 0u);
    EXPECT_EQ(c.max_send_queue_bytes, 1u << 20);
    EXPECT_EQ(c.send_timeout, 10s);
    EXPECT_EQ(c.bid_timeout, 5s);
    EXPECT_EQ(c.db_timeout, 2s);
    EXPECT_EQ(c.db_lock_timeout, 1s);
    EXPECT_EQ(c.max_pending_bids_per_auction, 1024u);
    EXPECT_EQ(c.max_pending_bids, 16384u);
    EXPECT_EQ(c.db_queue_limit, 4096u);
    EXPECT_EQ(c.redis_timeout, 2s);
    EXPECT_EQ(c.fanout_max_lag, 500ms);
    EXPECT_EQ(c.redis_channel_prefix, "bidding:default:") << "no database name: one default prefix";
}

TEST(LoadConfig, RedisPasswordApartFromTheUrl) {
    EXPECT_EQ(load_config({{"REDIS_URL", "redis://r:6379/0"}, {"REDIS_PASSWORD", "s3cret"}}).redis->password, "s3cret");
    EXPECT_EQ(load_config({{"REDIS_URL", "redis://:inurl@r:6379/0"}, {"REDIS_PASSWORD", "other"}}).redis->password,
              "inurl")
        << "a password written in the URL wins";
    EXPECT_FALSE(load_config({{"REDIS_PASSWORD", "s3cret"}}).redis.has_value()) << "no URL: single-pod mode";
}

TEST(LoadConfig, ChannelPrefixFollowsTheDatabaseName) {
    EXPECT_EQ(load_config({{"POSTGRES_DB", "shop"}}).redis_channel_prefix, "bidding:shop:");
    EXPECT_EQ(load_config({{"DATABASE_URL", "postgresql://u:p@db:5432/auc%74ions?sslmode=disable"}}).redis_channel_prefix,
              "bidding:auctions:")
        << "the URL's path, percent-decoded, names the database";
    EXPECT_EQ(load_config({{"DATABASE_URL", "postgresql://u:p@db:5432/a"}, {"REDIS_CHANNEL_PREFIX", "x:"}})
                  .redis_channel_prefix,
              "x:");
    expect_config_error({{"REDIS_CHANNEL_PREFIX", "has space"}}, "REDIS_CHANNEL_PREFIX");
}

TEST(LoadConfig, FaultSettingsAreCheckedTogether) {
    const config c = load_config({{"SEND_TIMEOUT", "0.5"}, {"BID_TIMEOUT", "3"}, {"DB_TIMEOUT", "1"},
                                  {"DB_LOCK_TIMEOUT", "0.25"}, {"MAX_SEND_QUEUE_BYTES", "65536"}});
    EXPECT_EQ(c.send_timeout, 500ms);
    EXPECT_EQ(c.bid_timeout, 3s);
    EXPECT_EQ(c.db_timeout, 1s);
    EXPECT_EQ(c.db_lock_timeout, 250ms);
    EXPECT_EQ(c.max_send_queue_bytes, 65536u);
    expect_config_error({{"DB_TIMEOUT", "6"}}, "DB_TIMEOUT");  // longer than BID_TIMEOUT's 5 s
    expect_config_error({{"DB_LOCK_TIMEOUT", "2"}}, "DB_LOCK_TIMEOUT");  // not shorter than DB_TIMEOUT
    expect_config_error({{"MAX_SEND_QUEUE_BYTES", "1000"}}, "MAX_SEND_QUEUE_BYTES");
    expect_config_error({{"MAX_PENDING_BIDS", "0"}}, "MAX_PENDING_BIDS");
    expect_config_error({{"FANOUT_MAX_LAG", "5"}}, "FANOUT_MAX_LAG");  // not shorter than BID_TIMEOUT
}

TEST(LoadConfig, EmptyValuesCountAsUnset) {
    const config c = load_config({{"ENV", ""}, {"APP_PORT", ""}, {"LOG_LEVEL", ""}, {"DEBUG", ""}, {"REDIS_URL", ""},
                                  {"HEARTBEAT_INTERVAL", ""}, {"THREADS", ""}, {"DATABASE_URL", ""}});
    EXPECT_EQ(c.env, environment::development);
    EXPECT_EQ(c.port, 8000);
    EXPECT_EQ(c.log_level, "info");
    EXPECT_FALSE(c.redis.has_value());
    EXPECT_EQ(c.heartbeat_interval, 30s);
}

TEST(LoadConfig, PlainOverrides) {
    const config c = load_config({{"ENV", "test"},
                                  {"APP_NAME", "bids"},
                                  {"APP_VERSION", "9.9.9"},
                                  {"APP_PORT", "65535"},
                                  {"HISTORY_LIMIT", "10000"},
                                  {"MAX_MESSAGE_BYTES", "64"},
                                  {"DB_POOL_SIZE", "64"},
                                  {"THREADS", "256"},
                                  {"SECRET_KEY", "short"}});
    EXPECT_EQ(c.env, environment::test);
    EXPECT_EQ(c.app_name, "bids");
    EXPECT_EQ(c.app_version, "9.9.9");
    EXPECT_EQ(c.port, 65535);
    EXPECT_EQ(c.history_limit, 10000u);
    EXPECT_EQ(c.max_message_bytes, 64u);
    EXPECT_EQ(c.db_pool_size, 64u);
    EXPECT_EQ(c.threads, 256u);
    EXPECT_EQ(c.secret_key, "short") << "outside production a short key is fine";
}

TEST(LoadConfig, EnvironmentNames) {
    EXPECT_EQ(to_string(environment::development), "development");
    EXPECT_EQ(to_string(environment::test), "test");
    EXPECT_EQ(to_string(environment::production), "production");
    EXPECT_EQ(load_config({{"ENV", "production"}, {"SECRET_KEY", strong_key}}).env, environment::production);
    EXPECT_NE(expect_config_error({{"ENV", "prod"}}, "ENV").find("development, test, production"), std::string::npos);
}

// ---- integers ------------------------------------------------------------------------------

TEST(LoadConfig, AppPortErrors) {
    EXPECT_EQ(expect_config_error({{"APP_PORT", "abc"}}, "APP_PORT"),
              "APP_PORT must be an integer from 1 to 65535 (got \"abc\")");
    for (const char* bad : {"0", "65536", "-1", "+80", " 80", "80 ", "80x", "8.0", "99999999999999999999999"}) {
        expect_config_error({{"APP_PORT", bad}}, "APP_PORT");
    }
    EXPECT_EQ(load_config({{"APP_PORT", "1"}}).port, 1);
}

TEST(LoadConfig, IntegerRanges) {
    struct range {
        const char* variable;
        const char* too_low;
        const char* too_high;
    };
    for (const range& r : {range{"HISTORY_LIMIT", "0", "10001"}, range{"MAX_MESSAGE_BYTES", "63", "1048577"},
                           range{"DB_POOL_SIZE", "0", "65"}, range{"THREADS", "-1", "257"},
                           range{"POSTGRES_PORT", "0", "65536"}}) {
        expect_config_error({{r.variable, r.too_low}}, r.variable);
        expect_config_error({{r.variable, r.too_high}}, r.variable);
        expect_config_error({{r.variable, "ten"}}, r.variable);
    }
    EXPECT_EQ(load_config({{"MAX_MESSAGE_BYTES", "1048576"}}).max_message_bytes, 1048576u);
    EXPECT_NE(expect_config_error({{"HISTORY_LIMIT", "0"}}, "HISTORY_LIMIT").find("from 1 to 10000"), std::string::npos);
}

TEST(LoadConfig, ErrorEchoIsOneLineAndCapped) {
    const std::string message = expect_config_error({{"APP_PORT", "8\n0" + std::string(200, 'x')}}, "APP_PORT");
    EXPECT_LT(message.size(), 160u) << "a huge value must not be echoed in full";
}

// ---- durations ----------------------------------------------------------------------------

TEST(LoadConfig, DurationsAcceptFractions) {
    const config c =
        load_config({{"HEARTBEAT_INTERVAL", "0.05"}, {"IDLE_TIMEOUT", "1.5"}, {"DRAIN_TIMEOUT", "0.0004"}});
    EXPECT_EQ(c.heartbeat_interval, 50ms);
    EXPECT_EQ(c.idle_timeout, 1500ms);
    EXPECT_EQ(c.drain_timeout, 1ms) << "a positive duration is at least 1 ms";
    EXPECT_EQ(load_config({{"HEARTBEAT_INTERVAL", "0.0125"}}).heartbeat_interval, 13ms) << "rounds to nearest ms";
    EXPECT_EQ(load_config({{"HEARTBEAT_INTERVAL", "0.0124"}}).heartbeat_interval, 12ms);
    EXPECT_EQ(load_config({{"HEARTBEAT_INTERVAL", "10"}}).heartbeat_interval, 10s);
    EXPECT_EQ(load_config({{"HEARTBEAT_INTERVAL", ".5"}}).heartbeat_interval, 500ms);
    EXPECT_EQ(load_config({{"IDLE_TIMEOUT", "5."}}).idle_timeout, 5s);
}

TEST(LoadConfig, DurationErrors) {
    for (const char* variable : {"HEARTBEAT_INTERVAL", "IDLE_TIMEOUT", "DRAIN_TIMEOUT"}) {
        for (const char* bad : {"0", "0.000", "-1", "abc", "1s", ".", "1e3", "1.2.3", "99999999999"}) {
            const std::string message = expect_config_error({{variable, bad}}, variable);
            EXPECT_NE(message.find("seconds"), std::string::npos) << message;
        }
    }
}

// ---- secrets, ENV=production ----------------------------------------------------------------

TEST(LoadConfig, ProductionNeedsALongSecretKey) {
    expect_config_error({{"ENV", "production"}}, "SECRET_KEY");
    const std::string message =
        expect_config_error({{"ENV", "production"}, {"SECRET_KEY", std::string(31, 's')}}, "SECRET_KEY");
    EXPECT_EQ(message.find("sssss"), std::string::npos) << "the secret key leaked into: " << message;
    EXPECT_NE(message.find("32"), std::string::npos);
    const std::string thirty_two = strong_key.substr(0, 32);
    EXPECT_EQ(load_config({{"ENV", "production"}, {"SECRET_KEY", thirty_two}}).secret_key, thirty_two);
}

TEST(LoadConfig, ProductionRefusesExampleAndMonotonousKeys) {
    ASSERT_GE(example_secret_keys().size(), 2u) << "the build reads .env.example and k8s/secrets.env.example";
    for (const auto example : example_secret_keys()) {
        const auto message =
            expect_config_error({{"ENV", "production"}, {"SECRET_KEY", std::string(example)}}, "SECRET_KEY");
        EXPECT_NE(message.find("example"), std::string::npos) << message;
        EXPECT_EQ(message.find(std::string(example)), std::string::npos) << "the key leaked into: " << message;
        EXPECT_NO_THROW(load_config({{"ENV", "development"}, {"SECRET_KEY", std::string(example)}}))
            << "outside production the example key is fine";
    }
    EXPECT_NE(expect_config_error({{"ENV", "production"}, {"SECRET_KEY", std::string(40, 's')}}, "SECRET_KEY")
                  .find("variety"),
              std::string::npos);
    expect_config_error({{"ENV", "production"}, {"SECRET_KEY", "0123401234012340123401234012340123401234"}},
                        "SECRET_KEY");
    EXPECT_NO_THROW(load_config({{"ENV", "production"}, {"SECRET_KEY", "0123456789abcdef0123456789abcdef"}}));
}

TEST(LoadConfig, ProductionForbidsDebug) {
    EXPECT_EQ(expect_config_error({{"ENV", "production"}, {"SECRET_KEY", strong_key}, {"DEBUG", "true"}}, "DEBUG"),
              "DEBUG must be false when ENV=production");
    EXPECT_FALSE(load_config({{"ENV", "production"}, {"SECRET_KEY", strong_key}, {"DEBUG", "0"}}).debug);
    EXPECT_TRUE(load_config({{"ENV", "development"}, {"DEBUG", "true"}}).debug);
}

TEST(LoadConfig, DebugValues) {
    for (const char* yes : {"true", "TRUE", "1", "yes", "On"}) EXPECT_TRUE(load_config({{"DEBUG", yes}}).debug) << yes;
    for (const char* no : {"false", "False", "0", "no", "OFF"}) EXPECT_FALSE(load_config({{"DEBUG", no}}).debug) << no;
    for (const char* bad : {"2", "y", "enabled", " true"}) expect_config_error({{"DEBUG", bad}}, "DEBUG");
}

// ---- LOG_LEVEL, ALLOWED_HOSTS -----------------------------------------------------------------

TEST(LoadConfig, LogLevels) {
    for (const char* level : {"trace", "debug", "info", "warning", "error", "critical"}) {
        EXPECT_EQ(load_config({{"LOG_LEVEL", level}}).log_level, level);
    }
    EXPECT_EQ(load_config({{"LOG_LEVEL", "WARN"}}).log_level, "warning");
    EXPECT_EQ(load_config({{"LOG_LEVEL", "Debug"}}).log_level, "debug");
    EXPECT_EQ(expect_config_error({{"LOG_LEVEL", "verbose"}}, "LOG_LEVEL"),
              "LOG_LEVEL must be one of trace, debug, info, warning, error, critical (got \"verbose\")");
}

TEST(LoadConfig, AllowedHostsList) {
    EXPECT_EQ(load_config({{"ALLOWED_HOSTS", " Example.com , .API.example.com,,* ,"}}).allowed_hosts,
              (std::vector<std::string>{"example.com", ".api.example.com", "*"}));
    expect_config_error({{"ALLOWED_HOSTS", ""}}, "ALLOWED_HOSTS");
    expect_config_error({{"ALLOWED_HOSTS", " , ,"}}, "ALLOWED_HOSTS");
}

// ---- REDIS_URL ---------------------------------------------------------------------------------

TEST(ParseRedisUrl, Forms) {
    redis_endpoint r = parse_redis_url("redis://cache");
    EXPECT_EQ(r.host, "cache");
    EXPECT_EQ(r.port, 6379);
    EXPECT_EQ(r.password, "");
    EXPECT_EQ(r.db, 0);

    r = parse_redis_url("redis://:s3cr%40t%2Fx@redis.internal:6380/2");
    EXPECT_EQ(r.host, "redis.internal");
    EXPECT_EQ(r.port, 6380);
    EXPECT_EQ(r.password, "s3cr@t/x") << "the password must be percent-decoded";
    EXPECT_EQ(r.db, 2);

    r = parse_redis_url("redis://default:pw@10.0.0.5");
    EXPECT_EQ(r.host, "10.0.0.5");
    EXPECT_EQ(r.password, "pw") << "only the password of user:password is kept";

    r = parse_redis_url("redis://[::1]:7000/0");
    EXPECT_EQ(r.host, "::1");
    EXPECT_EQ(r.port, 7000);
}

TEST(ParseRedisUrl, RejectsWithoutEchoingTheValue) {
    for (const char* bad : {"cache:6379", "http://cache", "redis://", "redis://:pw@", "redis://host:0",
                            "redis://host:65536", "redis://host:port", "redis://host:", "redis://host/-1",
                            "redis://host/x", "redis://:pw%zz@host", "redis://:pw%4@host", "redis://ho st",
                            "redis://user@host", "redis://host:6379?db=1"}) {
        try {
            parse_redis_url(bad);
            ADD_FAILURE() << "accepted " << bad;
        } catch (const config_error& e) {
            EXPECT_EQ(e.variable(), "REDIS_URL");
            EXPECT_STREQ(e.what(), "REDIS_URL must look like redis://[:password@]host:port[/db]") << bad;
        }
    }
}

TEST(ParseRedisUrl, Ipv6HostsAndPercentEncodedPasswords) {
    redis_endpoint r = parse_redis_url("redis://:pw@[2001:DB8::1]:6380/3");
    EXPECT_EQ(r.host, "2001:DB8::1") << "without brackets, as written";
    EXPECT_EQ(r.port, 6380);
    EXPECT_EQ(r.password, "pw");
    EXPECT_EQ(r.db, 3);
    r = parse_redis_url("redis://[::ffff:10.0.0.5]");
    EXPECT_EQ(r.host, "::ffff:10.0.0.5");
    EXPECT_EQ(r.port, 6379);

    r = parse_redis_url("redis://:p%40ss%3Aw%2B%25rd%20%23@cache");
    EXPECT_EQ(r.password, "p@ss:w+%rd #") << "every escape decoded once";
    r = parse_redis_url("redis://:a+b@cache");
    EXPECT_EQ(r.password, "a+b") << "a plus in the userinfo is a plus";
    r = parse_redis_url("REDIS://Cache.Internal:1/");
    EXPECT_EQ(r.host, "Cache.Internal") << "the scheme is case-insensitive, the host kept as written";
    EXPECT_EQ(r.db, 0) << "an empty path is db 0";
}

TEST(ParseRedisUrl, RejectsWhatBoostUrlDoesNotParseAsAHostAndPort) {
    for (const char* bad : {"redis://[::1", "redis://[1]", "redis://[v1.x]", "redis://[::1]x", "redis://h:1,5",
                            "redis://:p@ss@cache", "redis://:p#w@cache", "redis://cache/0#frag", "redis://cache/0?x",
                            "redis://ca%20che", "redis://ca~che", "redis:cache", "redis:///0", "redis://cache/0/1",
                            // Boost.URL 1.81 asserted on these (builds without NDEBUG): uri.hpp
                            "redis:?", "redis:]"}) {
        try {
            parse_redis_url(bad);
            ADD_FAILURE() << "accepted " << bad;
        } catch (const config_error& e) {
            EXPECT_EQ(e.variable(), "REDIS_URL");
            EXPECT_STREQ(e.what(), "REDIS_URL must look like redis://[:password@]host:port[/db]") << bad;
        }
    }
}

TEST(LoadConfig, RedisUrl) {
    const config c = load_config({{"REDIS_URL", "redis://:hunter2@cache:6379/1"}});
    ASSERT_TRUE(c.redis.has_value());
    EXPECT_EQ(c.redis->host, "cache");
    EXPECT_EQ(c.redis->password, "hunter2");
    EXPECT_EQ(c.redis->db, 1);
    const std::string message = expect_config_error({{"REDIS_URL", "redis://:hunter2@cache:bad"}}, "REDIS_URL");
    EXPECT_EQ(message.find("hunter2"), std::string::npos) << "the password leaked into: " << message;
}

// ---- database -----------------------------------------------------------------------------------

TEST(LoadConfig, DatabaseFromParts) {
    const config c = load_config({{"POSTGRES_HOST", "db"},
                                  {"POSTGRES_PORT", "6543"},
                                  {"POSTGRES_USER", "app"},
                                  {"POSTGRES_PASSWORD", "p'w\\d"},
                                  {"POSTGRES_DB", "bids"}});
    EXPECT_EQ(c.database_conninfo,
              R"(host='db' port='6543' user='app' password='p\'w\\d' dbname='bids' )" + tcp_defaults);
    EXPECT_EQ(c.database_display, "host='db' port='6543' user='app' dbname='bids' " + tcp_defaults);
    EXPECT_EQ(c.database_name, "bids");
}

TEST(LoadConfig, PostgressPasswordAlias) {
    EXPECT_NE(load_config({{"POSTGRESS_PASSWORD", "typo"}}).database_conninfo.find("password='typo'"),
              std::string::npos)
        << "POSTGRESS_PASSWORD must be accepted";
    const config both = load_config({{"POSTGRESS_PASSWORD", "typo"}, {"POSTGRES_PASSWORD", "right"}});
    EXPECT_NE(both.database_conninfo.find("password='right'"), std::string::npos) << "POSTGRES_PASSWORD must win";
    EXPECT_EQ(both.database_conninfo.find("typo"), std::string::npos);
    EXPECT_EQ(both.database_display.find("right"), std::string::npos) << "the password leaked into the display";
}

TEST(LoadConfig, DatabaseUrlOverridesParts) {
    const config c = load_config({{"DATABASE_URL", "postgres://app:hunter2@db.internal:5433/bids"},
                                  {"POSTGRES_HOST", "ignored"},
                                  {"POSTGRES_PASSWORD", "ignored"}});
    EXPECT_EQ(c.database_conninfo, "postgres://app:hunter2@db.internal:5433/bids?" + url_defaults);
    EXPECT_EQ(c.database_display, "postgres://app:***@db.internal:5433/bids?" + url_defaults);

    EXPECT_EQ(load_config({{"DATABASE_URL", "postgresql://db/bids?sslmode=disable"}}).database_conninfo,
              "postgresql://db/bids?sslmode=disable&" + url_defaults);
    EXPECT_EQ(load_config({{"DATABASE_URL", "postgresql://db/bids?connect_timeout=9&keepalives=0"}}).database_conninfo,
              "postgresql://db/bids?connect_timeout=9&keepalives=0&keepalives_idle=5&keepalives_interval=2&"
              "keepalives_count=3&tcp_user_timeout=5000")
        << "the URL's own values win";
    const config q = load_config({{"DATABASE_URL", "postgresql://db/bids?user=a&password=hunter2&sslmode=require"}});
    EXPECT_EQ(q.database_display, "postgresql://db/bids?user=a&password=***&sslmode=require&" + url_defaults);
}

TEST(LoadConfig, DatabaseUrlHostListsGoInTheQuery) {
    // libpq's failover list: not an RFC 3986 authority, so it is given as query parameters.
    const config c = load_config(
        {{"DATABASE_URL", "postgresql://app:hunter2@/bids?host=pg1,pg2&port=5432,5433&target_session_attrs=read-write"}});
    EXPECT_EQ(c.database_conninfo,
              "postgresql://app:hunter2@/bids?host=pg1,pg2&port=5432,5433&target_session_attrs=read-write&" +
                  url_defaults);
    EXPECT_EQ(c.database_display,
              "postgresql://app:***@/bids?host=pg1,pg2&port=5432,5433&target_session_attrs=read-write&" + url_defaults);
}

TEST(LoadConfig, DatabaseUrlQueryNamesAreDecodedAndRepeatedNamesCountOnce) {
    EXPECT_EQ(load_config({{"DATABASE_URL", "postgresql://db/bids?connect%5Ftimeout=9&connect_timeout=8"}})
                  .database_conninfo,
              "postgresql://db/bids?connect%5Ftimeout=9&connect_timeout=8&keepalives=1&keepalives_idle=5&"
              "keepalives_interval=2&keepalives_count=3&tcp_user_timeout=5000")
        << "libpq decodes the names: connect%5Ftimeout is the URL's own connect_timeout";
    EXPECT_EQ(load_config({{"DATABASE_URL", "postgresql://db/bids?"}}).database_conninfo,
              "postgresql://db/bids?&" + url_defaults)
        << "an empty query, as before";
    const config q =
        load_config({{"DATABASE_URL", "postgresql://db/bids?password=a&passw%6Frd=b&password&sslmode=require"}});
    EXPECT_EQ(q.database_display,
              "postgresql://db/bids?password=***&passw%6Frd=***&password&sslmode=require&" + url_defaults)
        << "every password= value is hidden, its name decoded";
}

TEST(LoadConfig, DatabaseUrlPercentEncodedPasswordIpv6HostAndName) {
    const config c = load_config({{"DATABASE_URL", "postgresql://app:p%40ss%2Fw@[::1]:5433/auc%74ions"}});
    EXPECT_EQ(c.database_conninfo, "postgresql://app:p%40ss%2Fw@[::1]:5433/auc%74ions?" + url_defaults)
        << "libpq gets the URL as written (it decodes it itself)";
    EXPECT_EQ(c.database_display, "postgresql://app:***@[::1]:5433/auc%74ions?" + url_defaults);
    EXPECT_EQ(c.database_name, "auctions");
    EXPECT_EQ(load_config({{"DATABASE_URL", "postgresql://app:@db/x"}}).database_display,
              "postgresql://app:***@db/x?" + url_defaults)
        << "an empty password is hidden too";
    EXPECT_EQ(load_config({{"DATABASE_URL", "postgresql:///bids?host=%2Ftmp"}}).database_name, "bids");
    EXPECT_EQ(load_config({{"DATABASE_URL", "postgresql://db"}}).database_name, "");
}

TEST(LoadConfig, DatabaseUrlThatIsNoUrlIsRefusedWithoutEchoingIt) {
    for (const char* bad : {"postgresql://app:hunter2@db/bids%zz", "postgresql://app:hun ter2@db/bids",
                            "postgresql://app:hun#ter2@db/bids", "postgresql://app:hunter2@db:5x/bids",
                            // An empty query, then a fragment: Boost.URL 1.81 crashed on its parameters (uri.hpp).
                            "postgresql://app:hunter2@db/bids?#x", "postgresql://app:hunter2@db?#"}) {
        const std::string message = expect_config_error({{"DATABASE_URL", bad}}, "DATABASE_URL");
        EXPECT_EQ(message.find("hunter2"), std::string::npos) << "the URL leaked into: " << message;
        EXPECT_EQ(message.find("ter2"), std::string::npos) << "the URL leaked into: " << message;
        EXPECT_NE(message.find("postgres://"), std::string::npos) << message;
    }
    expect_config_error({{"DATABASE_URL", "postgresql:/db/bids"}}, "DATABASE_URL");  // no authority
    // libpq's several host:port pairs are no RFC 3986 authority: refused (one host, or host lists without ports).
    expect_config_error({{"DATABASE_URL", "postgresql://h1:5432,h2:5432/bids"}}, "DATABASE_URL");
    EXPECT_EQ(load_config({{"DATABASE_URL", "postgresql://h1,h2/bids"}}).database_name, "bids");
}

TEST(LoadConfig, DatabaseUrlErrorsDoNotEchoTheValue) {
    const std::string message = expect_config_error({{"DATABASE_URL", "mysql://app:hunter2@db/bids"}}, "DATABASE_URL");
    EXPECT_EQ(message.find("hunter2"), std::string::npos) << "the URL leaked into: " << message;
    EXPECT_NE(message.find("postgres://"), std::string::npos);
}

// ---- .env ------------------------------------------------------------------------------------------

TEST(ParseDotenv, Forms) {
    const env_map m = parse_dotenv(
        "# comment\n"
        "\n"
        "PLAIN=value\n"
        "SPACED = padded value   \n"
        "export EXPORTED=yes\n"
        "COMMENTED=abc # trailing comment\n"
        "HASH=a#b\n"
        "SINGLE='lit\\n $x # not a comment'\n"
        "DOUBLE=\"line1\\nline2 \\\"q\\\" \\\\ end\"  # comment\n"
        "EMPTY=\n"
        "CRLF=win\r\n"
        "MULTI=\"a\nb\"\n"
        "  INDENTED=ok\n");
    EXPECT_EQ(m.at("PLAIN"), "value");
    EXPECT_EQ(m.at("SPACED"), "padded value");
    EXPECT_EQ(m.at("EXPORTED"), "yes");
    EXPECT_EQ(m.at("COMMENTED"), "abc");
    EXPECT_EQ(m.at("HASH"), "a#b");
    EXPECT_EQ(m.at("SINGLE"), "lit\\n $x # not a comment");
    EXPECT_EQ(m.at("DOUBLE"), "line1\nline2 \"q\" \\ end");
    EXPECT_EQ(m.at("EMPTY"), "");
    EXPECT_EQ(m.at("CRLF"), "win");
    EXPECT_EQ(m.at("MULTI"), "a\nb");
    EXPECT_EQ(m.at("INDENTED"), "ok");
    EXPECT_EQ(m.size(), 11u);
}

TEST(ParseDotenv, LaterLinesWin) { EXPECT_EQ(parse_dotenv("A=1\nA=2\n").at("A"), "2"); }

TEST(ParseDotenv, MalformedLineNamesTheLineNotTheValue) {
    for (const auto& [text, line] : std::initializer_list<std::pair<std::string, int>>{
             {"A=1\nthis is not an assignment\n", 2},
             {"A=1\n\n# c\nSECRET hunter2\n", 4},
             {"1A=x\n", 1},
             {"A='unterminated\n", 1},
             {"A=\"x\" junk\n", 1},
             {"A=1\n=nokey\n", 2}}) {
        try {
            parse_dotenv(text);
            ADD_FAILURE() << "accepted malformed .env: " << text;
        } catch (const config_error& e) {
            EXPECT_EQ(e.variable(), ".env");
            const std::string message = e.what();
            EXPECT_NE(message.find("line " + std::to_string(line)), std::string::npos)
                << "wrong or missing line number: " << message;
            EXPECT_EQ(message.find("hunter2"), std::string::npos) << "the line's content leaked: " << message;
        }
    }
}

TEST(MergeEnv, ProcessEnvironmentWins) {
    const env_map merged = merge_env({{"A", "dotenv"}, {"B", "dotenv"}}, {{"B", "process"}, {"C", "process"}});
    EXPECT_EQ(merged.at("A"), "dotenv");
    EXPECT_EQ(merged.at("B"), "process") << "a real variable must override .env";
    EXPECT_EQ(merged.at("C"), "process");
}

TEST(ProcessEnvironment, ReadsEnviron) {
    ASSERT_EQ(setenv("BIDDING_UNIT_TEST_VAR", "a=b", 1), 0);
    const env_map env = process_environment();
    ASSERT_TRUE(env.contains("BIDDING_UNIT_TEST_VAR"));
    EXPECT_EQ(env.at("BIDDING_UNIT_TEST_VAR"), "a=b") << "only the first '=' separates name and value";
    unsetenv("BIDDING_UNIT_TEST_VAR");
}

}  // namespace
}  // namespace bidding

namespace bidding {
namespace {

TEST(LoadConfig, ConnectionLimitsAndTrustedProxies) {
    const config defaults = load_config({});
    EXPECT_EQ(defaults.max_connections, 0u) << "0: from the open-files limit";
    EXPECT_EQ(defaults.max_connections_per_ip, 100u);
    EXPECT_TRUE(defaults.trusted.empty());
    EXPECT_EQ(defaults.http_header_timeout, std::chrono::seconds(10));
    EXPECT_EQ(defaults.ws_handshake_timeout, std::chrono::seconds(10));

    const config c = load_config({{"MAX_CONNECTIONS", "500"}, {"MAX_CONNECTIONS_PER_IP", "0"},
                                  {"TRUSTED_PROXIES", "10.1.0.0/16,::1"}, {"HTTP_HEADER_TIMEOUT", "0.5"}});
    EXPECT_EQ(c.max_connections, 500u);
    EXPECT_EQ(c.max_connections_per_ip, 0u);
    EXPECT_TRUE(c.trusted.contains(*ip_address::parse("10.1.200.3")));
    EXPECT_FALSE(c.trusted.contains(*ip_address::parse("10.2.0.1")));
    EXPECT_TRUE(c.trusted.contains(*ip_address::parse("::1")));
    EXPECT_EQ(c.http_header_timeout, std::chrono::milliseconds(500));
    for (const auto* bad : {"10.0.0.0/33", "10.0.0/8", "example.com", "::1/129", "10.0.0.1/-1"}) {
        try {
            load_config({{"TRUSTED_PROXIES", bad}});
            ADD_FAILURE() << bad;
        } catch (const config_error& e) {
            EXPECT_EQ(e.variable(), "TRUSTED_PROXIES");
            EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
        }
    }
    EXPECT_THROW(load_config({{"MAX_CONNECTIONS_PER_IP", "-1"}}), config_error);
    EXPECT_EQ(defaults.max_opening_connections, 256u);
    EXPECT_EQ(load_config({{"MAX_OPENING_CONNECTIONS", "1"}}).max_opening_connections, 1u);
    EXPECT_THROW(load_config({{"MAX_OPENING_CONNECTIONS", "0"}}), config_error) << "at least one connection is opened";
}

}  // namespace
}  // namespace bidding
