#pragma once
// Who a connection is, for the per-client connection limit: the peer's address, or, behind a
// trusted proxy, the address the proxy says it forwards (X-Forwarded-For). Pure: no sockets.
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace bidding {

// An IPv4 or IPv6 address; IPv4 is kept as such even when it arrives IPv4-mapped
// ("::ffff:10.0.0.1", as a dual-stack socket reports it).
class ip_address {
public:
    static std::optional<ip_address> parse(std::string_view text);  // "10.0.0.1", "::1", "[::1]"
    bool is_v4() const { return v4_; }
    // The address a limit counts: an IPv4 address itself, an IPv6 address's /64 (one host gets a
    // whole /64 and can pick any address in it).
    std::string limit_key() const;
    std::string to_string() const;
    friend bool operator==(const ip_address&, const ip_address&) = default;

private:
    friend class trusted_proxies;
    std::array<std::uint8_t, 16> bytes_{};  // IPv4 in the first 4
    bool v4_{false};
};

// TRUSTED_PROXIES: addresses and networks ("10.0.0.0/8, 192.168.1.7, fd00::/8") whose
// X-Forwarded-For is believed.
class trusted_proxies {
public:
    trusted_proxies() = default;
    // nullopt for a malformed entry, with its text in *bad.
    static std::optional<trusted_proxies> parse(std::string_view list, std::string* bad = nullptr);
    bool contains(const ip_address& address) const;
    bool empty() const { return networks_.empty(); }

private:
    struct network {
        ip_address base;
        int prefix;
    };
    std::vector<network> networks_;
};

// The client of a connection from `peer`, whose request carried `forwarded_for` (every
// X-Forwarded-For header's value, joined with ","; empty when none). When the peer is a trusted
// proxy, the right-most address of the list that is not itself a trusted proxy (the one the
// nearest untrusted hop reported: what is left of it was written by the client and may be
// forged); the peer itself otherwise, and when the list is empty or malformed.
ip_address client_address(const ip_address& peer, std::string_view forwarded_for, const trusted_proxies& trusted);

}  // namespace bidding
