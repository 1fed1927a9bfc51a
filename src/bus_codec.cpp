#include <bidding/bus_codec.hpp>
#include <bidding/integer_text.hpp>
#include <bidding/jwt.hpp>

#include <array>
#include <limits>

namespace bidding {

namespace {

constexpr std::size_t signature_bytes = 16;

std::string hex(std::string_view bytes) {
    constexpr char digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(bytes.size() * 2);
    for (const unsigned char c : bytes) {
        out += digits[c >> 4];
        out += digits[c & 0xf];
    }
    return out;
}

std::optional<std::int64_t> parse_count(std::string_view text) {
    return parse_integer<std::int64_t>(text, 0, std::numeric_limits<std::int64_t>::max());
}

// Splits "a b c" into at most N fields; nullopt unless there are exactly N.
template <std::size_t N>
std::optional<std::array<std::string_view, N>> fields(std::string_view header) {
    std::array<std::string_view, N> out{};
    for (std::size_t i = 0; i < N; ++i) {
        const auto space = header.find(' ');
        if (i + 1 < N) {
            if (space == std::string_view::npos) {
                return std::nullopt;
            }
            out[i] = header.substr(0, space);
            header.remove_prefix(space + 1);
        } else {
            if (space != std::string_view::npos) {
                return std::nullopt;
            }
            out[i] = header;
        }
    }
    return out;
}

}  // namespace

std::string derive_bus_key(std::string_view secret_key, std::string_view database_conninfo) {
    const std::string_view root = secret_key.empty() ? database_conninfo : secret_key;
    return hmac_sha256(root, "bidding-server bus signing key v1");
}

bus_codec::bus_codec(std::string prefix, std::string key) : prefix_(std::move(prefix)), key_(std::move(key)) {}

std::string bus_codec::channel(auction_id id) const { return prefix_ + "auction:" + to_string(id); }

std::optional<auction_id> bus_codec::auction_of(std::string_view channel) const {
    if (!channel.starts_with(prefix_)) {
        return std::nullopt;
    }
    channel.remove_prefix(prefix_.size());
    constexpr std::string_view kind = "auction:";
    if (!channel.starts_with(kind)) {
        return std::nullopt;
    }
    return parse_id<auction_id>(channel.substr(kind.size()), 1);
}

std::string bus_codec::sign(auction_id id, std::string_view header, std::string_view body) const {
    std::string input = channel(id);
    input += '\n';
    input += header;
    input += '\n';
    input += body;
    return hex(hmac_sha256(key_, input).substr(0, signature_bytes));
}

std::string bus_codec::encode_bid(auction_id id, const fanout_message& event, std::int64_t committed_us) const {
    const std::string header =
        "bid " + to_string(event.prev) + " " + to_string(event.seq) + " " + std::to_string(committed_us);
    return header + " " + sign(id, header, *event.text) + "\n" + *event.text;
}

std::string bus_codec::encode_close(auction_id id, std::string_view bid_closed_json) const {
    return "close " + sign(id, "close", bid_closed_json) + "\n" + std::string(bid_closed_json);
}

std::string bus_codec::encode_hold(auction_id id, std::chrono::milliseconds duration) const {
    const std::string header = "hold " + std::to_string(duration.count());
    return header + " " + sign(id, header, {}) + "\n";
}

std::optional<bus_message> bus_codec::decode(auction_id id, std::string_view payload) const {
    const auto nl = payload.find('\n');
    if (nl == std::string_view::npos) {
        return std::nullopt;
    }
    std::string_view header = payload.substr(0, nl);
    const auto body = payload.substr(nl + 1);
    const auto last_space = header.rfind(' ');
    if (last_space == std::string_view::npos) {
        return std::nullopt;
    }
    const auto signature = header.substr(last_space + 1);
    header = header.substr(0, last_space);
    if (!constant_time_equal(signature, sign(id, header, body))) {
        return std::nullopt;
    }
    if (header == "close") {
        return bus_close{make_shared_text(std::string(body))};
    }
    if (header.starts_with("hold ")) {
        const auto ms = parse_count(header.substr(5));
        if (!ms || !body.empty()) {
            return std::nullopt;
        }
        return bus_hold{std::chrono::milliseconds(*ms)};
    }
    if (header.starts_with("bid ")) {
        const auto f = fields<3>(header.substr(4));
        if (!f) {
            return std::nullopt;
        }
        const auto prev = parse_count((*f)[0]);
        const auto seq = parse_count((*f)[1]);
        const auto committed = parse_count((*f)[2]);
        if (!prev || !seq || !committed || *seq <= *prev) {
            return std::nullopt;
        }
        return bus_bid{fanout_message{seq_t(*prev), seq_t(*seq), make_shared_text(std::string(body))}, *committed};
    }
    return std::nullopt;
}

}  // namespace bidding
