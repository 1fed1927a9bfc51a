#include <bidding/timestamp.hpp>

#include <cstdint>
#include <cstdio>

namespace bidding {

namespace {

using namespace std::chrono;

// Reads exactly `count` digits at `pos`.
std::optional<int> digits(std::string_view text, std::size_t pos, std::size_t count) {
    if (pos + count > text.size()) {
        return std::nullopt;
    }
    int value = 0;
    for (std::size_t i = pos; i < pos + count; ++i) {
        if (text[i] < '0' || text[i] > '9') {
            return std::nullopt;
        }
        value = value * 10 + (text[i] - '0');
    }
    return value;
}

}  // namespace

std::string format_timestamp(timestamp t) {
    const auto day = floor<days>(t);
    const year_month_day ymd{day};
    const hh_mm_ss<milliseconds> tod{t - day};
    char buf[32];
    std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", static_cast<int>(ymd.year()),
                  static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                  static_cast<int>(tod.hours().count()), static_cast<int>(tod.minutes().count()),
                  static_cast<int>(tod.seconds().count()), static_cast<int>(tod.subseconds().count()));
    return buf;
}

std::string format_http_date(timestamp t) {
    static constexpr const char* weekdays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static constexpr const char* months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                             "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    const auto day = floor<days>(t);
    const year_month_day ymd{day};
    const hh_mm_ss<seconds> tod{floor<seconds>(t - day)};
    char buf[40];
    std::snprintf(buf, sizeof buf, "%s, %02u %s %04d %02d:%02d:%02d GMT", weekdays[weekday{day}.c_encoding()],
                  static_cast<unsigned>(ymd.day()), months[static_cast<unsigned>(ymd.month()) - 1],
                  static_cast<int>(ymd.year()), static_cast<int>(tod.hours().count()),
                  static_cast<int>(tod.minutes().count()), static_cast<int>(tod.seconds().count()));
    return buf;
}

std::optional<timestamp> parse_timestamp(std::string_view text) {
    const auto y = digits(text, 0, 4), mo = digits(text, 5, 2), d = digits(text, 8, 2);
    const auto h = digits(text, 11, 2), mi = digits(text, 14, 2), s = digits(text, 17, 2);
    if (!y || !mo || !d || !h || !mi || !s || text[4] != '-' || text[7] != '-' || text[13] != ':' ||
        text[16] != ':' || (text[10] != 'T' && text[10] != 't' && text[10] != ' ')) {
        return std::nullopt;
    }
    const year_month_day ymd{year{*y}, month{static_cast<unsigned>(*mo)}, day{static_cast<unsigned>(*d)}};
    // 60 would be a leap second: not a time a server can be asked to end at.
    if (*y < 1970 || !ymd.ok() || *h > 23 || *mi > 59 || *s > 59) {
        return std::nullopt;
    }
    std::size_t pos = 19;
    int millis = 0;
    if (pos < text.size() && text[pos] == '.') {
        ++pos;
        std::size_t n = 0;
        for (; pos < text.size() && text[pos] >= '0' && text[pos] <= '9'; ++pos, ++n) {
            if (n < 3) {
                millis = millis * 10 + (text[pos] - '0');
            }
            if (n > 9) {
                return std::nullopt;  // nanoseconds are the most any clock writes
            }
        }
        if (n == 0) {
            return std::nullopt;
        }
        for (; n < 3; ++n) {
            millis *= 10;
        }
    }
    minutes offset{0};
    if (pos < text.size() && (text[pos] == 'Z' || text[pos] == 'z')) {
        ++pos;
    } else if (pos < text.size() && (text[pos] == '+' || text[pos] == '-')) {
        const auto oh = digits(text, pos + 1, 2), om = digits(text, pos + 4, 2);
        if (!oh || !om || text[pos + 3] != ':' || *oh > 23 || *om > 59) {
            return std::nullopt;
        }
        offset = hours{*oh} + minutes{*om};
        if (text[pos] == '-') {
            offset = -offset;
        }
        pos += 6;
    } else {
        return std::nullopt;
    }
    if (pos != text.size()) {
        return std::nullopt;
    }
    const auto local = sys_days{ymd} + hours{*h} + minutes{*mi} + seconds{*s} + milliseconds{millis};
    return timestamp{local - offset};
}

std::optional<std::chrono::seconds> parse_duration(std::string_view text) {
    if (text.empty()) {
        return std::nullopt;
    }
    constexpr std::int64_t most = std::int64_t{100} * 366 * 86'400;
    std::int64_t total = 0;
    std::size_t pos = 0;
    int last_unit = 5;  // units must go from larger to smaller, each at most once: "1h30m"
    while (pos < text.size()) {
        std::int64_t n = 0;
        const auto start = pos;
        for (; pos < text.size() && text[pos] >= '0' && text[pos] <= '9'; ++pos) {
            n = n * 10 + (text[pos] - '0');
            if (n > most) {
                return std::nullopt;
            }
        }
        if (pos == start) {
            return std::nullopt;
        }
        std::int64_t unit = 1;
        int rank = 0;
        if (pos < text.size()) {
            switch (text[pos]) {
                case 'd': unit = 86'400; rank = 4; break;
                case 'h': unit = 3'600; rank = 3; break;
                case 'm': unit = 60; rank = 2; break;
                case 's': unit = 1; rank = 1; break;
                default: return std::nullopt;
            }
            ++pos;
        } else if (start != 0) {
            return std::nullopt;  // "1h30": a bare number only on its own
        }
        if (rank >= last_unit) {
            return std::nullopt;
        }
        last_unit = rank;
        total += n * unit;
        if (total > most) {
            return std::nullopt;
        }
    }
    if (total <= 0) {
        return std::nullopt;
    }
    return std::chrono::seconds{total};
}

}  // namespace bidding
