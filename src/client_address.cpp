#include <bidding/client_address.hpp>
#include <bidding/integer_text.hpp>
#include <bidding/text.hpp>

#include <arpa/inet.h>

#include <cstring>

namespace bidding {

std::optional<ip_address> ip_address::parse(std::string_view text) {
    text = trim(text);
    if (text.size() >= 2 && text.front() == '[' && text.back() == ']') {
        text = text.substr(1, text.size() - 2);
    }
    if (text.empty() || text.size() > INET6_ADDRSTRLEN) {
        return std::nullopt;
    }
    const std::string z(text);  // inet_pton wants a terminated string
    ip_address a;
    if (::inet_pton(AF_INET, z.c_str(), a.bytes_.data()) == 1) {
        a.v4_ = true;
        return a;
    }
    if (::inet_pton(AF_INET6, z.c_str(), a.bytes_.data()) != 1) {
        return std::nullopt;
    }
    static constexpr std::uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(a.bytes_.data(), mapped, sizeof mapped) == 0) {
        std::memmove(a.bytes_.data(), a.bytes_.data() + 12, 4);
        std::memset(a.bytes_.data() + 4, 0, 12);
        a.v4_ = true;
    }
    return a;
}

std::string ip_address::to_string() const {
    char out[INET6_ADDRSTRLEN] = {};
    ::inet_ntop(v4_ ? AF_INET : AF_INET6, bytes_.data(), out, sizeof out);
    return out;
}

std::string ip_address::limit_key() const {
    if (v4_) {
        return to_string();
    }
    ip_address net = *this;
    std::memset(net.bytes_.data() + 8, 0, 8);
    return net.to_string() + "/64";
}

std::optional<trusted_proxies> trusted_proxies::parse(std::string_view list, std::string* bad) {
    trusted_proxies out;
    while (!list.empty()) {
        const auto comma = list.find(',');
        const std::string_view item = trim(list.substr(0, comma));
        list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
        if (item.empty()) {
            continue;
        }
        const auto slash = item.find('/');
        const auto base = ip_address::parse(item.substr(0, slash));
        const int width = base && base->is_v4() ? 32 : 128;
        std::optional<int> prefix = width;
        if (slash != std::string_view::npos) {
            prefix = parse_integer<int>(item.substr(slash + 1), 0, width);
        }
        if (!base || !prefix) {
            if (bad != nullptr) {
                *bad = std::string(item);
            }
            return std::nullopt;
        }
        out.networks_.push_back({*base, *prefix});
    }
    return out;
}

bool trusted_proxies::contains(const ip_address& address) const {
    for (const auto& n : networks_) {
        if (n.base.v4_ != address.v4_) {
            continue;
        }
        const int whole = n.prefix / 8;
        const int rest = n.prefix % 8;
        if (std::memcmp(n.base.bytes_.data(), address.bytes_.data(), static_cast<std::size_t>(whole)) != 0) {
            continue;
        }
        const auto mask = static_cast<std::uint8_t>(0xff << (8 - rest));
        if (rest == 0 || (n.base.bytes_[static_cast<std::size_t>(whole)] & mask) ==
                             (address.bytes_[static_cast<std::size_t>(whole)] & mask)) {
            return true;
        }
    }
    return false;
}

ip_address client_address(const ip_address& peer, std::string_view forwarded_for, const trusted_proxies& trusted) {
    if (!trusted.contains(peer)) {
        return peer;
    }
    // From the right: each hop appends the address it received the request from.
    ip_address client = peer;
    while (!forwarded_for.empty()) {
        const auto comma = forwarded_for.rfind(',');
        const std::string_view item =
            comma == std::string_view::npos ? forwarded_for : forwarded_for.substr(comma + 1);
        forwarded_for = comma == std::string_view::npos ? std::string_view{} : forwarded_for.substr(0, comma);
        if (trim(item).empty()) {
            continue;
        }
        const auto hop = ip_address::parse(item);
        if (!hop) {
            return client;  // unreadable: the last address a trusted hop vouched for
        }
        client = *hop;
        if (!trusted.contains(client)) {
            return client;
        }
    }
    return client;
}

}  // namespace bidding
