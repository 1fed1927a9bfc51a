#pragma once
#include <string_view>

namespace bidding {

// One stderr logger for the process; level is one of LOG_LEVEL's accepted values.
void setup_logging(std::string_view level);

}  // namespace bidding
