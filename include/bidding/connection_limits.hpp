#pragma once
// MAX_CONNECTIONS and MAX_CONNECTIONS_PER_IP: how many WebSocket connections this pod holds, in
// all and per client address (client_address.hpp). Checked before an upgrade is answered, so a
// refused client costs neither a session nor a database read. Pure and thread-safe: admitted on
// the accepting thread, released from any session's.
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>

namespace bidding {

class connection_limits : public std::enable_shared_from_this<connection_limits> {
public:
    // 0: no limit of that kind.
    connection_limits(std::size_t max_total, std::size_t max_per_client);

    // A held place: releases itself when destroyed (when the connection's session ends).
    class lease {
    public:
        lease() = default;
        lease(lease&&) noexcept = default;
        lease& operator=(lease&& other) noexcept {
            if (this != &other) {
                release();
                owner_ = std::move(other.owner_);
                key_ = std::move(other.key_);
            }
            return *this;
        }
        ~lease() { release(); }
        explicit operator bool() const { return owner_ != nullptr; }
        void release();

    private:
        friend class connection_limits;
        lease(std::shared_ptr<connection_limits> owner, std::string key) : owner_(std::move(owner)), key_(std::move(key)) {}
        std::shared_ptr<connection_limits> owner_;
        std::string key_;
    };

    enum class verdict { admitted, pod_full, client_full };
    struct admission {
        verdict result;
        lease place;  // held when admitted
    };
    // `client_key`: ip_address::limit_key() of the client.
    admission admit(const std::string& client_key);

    std::size_t open() const;
    std::size_t max_total() const { return max_total_; }
    std::size_t max_per_client() const { return max_per_client_; }

private:
    void release(const std::string& key);

    const std::size_t max_total_;
    const std::size_t max_per_client_;
    mutable std::mutex mutex_;
    std::size_t open_{0};
    std::unordered_map<std::string, std::size_t> per_client_;  // only clients holding a connection
};

}  // namespace bidding
