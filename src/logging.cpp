#include <bidding/logging.hpp>

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

namespace bidding {

void setup_logging(std::string_view level) {
    auto logger = spdlog::stderr_logger_mt("bidding");
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %^%l%$ %v", spdlog::pattern_time_type::utc);
    const auto lvl = level == "warning" ? spdlog::level::warn : spdlog::level::from_str(std::string(level));
    logger->set_level(lvl);
    logger->flush_on(spdlog::level::info);
    spdlog::set_default_logger(logger);
}

}  // namespace bidding
