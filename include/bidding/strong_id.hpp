#pragma once
// An integer identifier that cannot be mixed up with another kind (an auction id passed as a
// sequence number is a compile error), after userver's strong typedefs. Only what ids need:
// comparison, hashing, printing and JSON; no arithmetic.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <compare>
#include <cstdint>
#include <functional>
#include <ostream>
#include <string>
#include <type_traits>

namespace bidding {

template <class Tag>
class strong_id {
public:
    using value_type = std::int64_t;

    constexpr strong_id() = default;
    constexpr explicit strong_id(value_type v) : value_(v) {}
    template <class F>
        requires std::is_floating_point_v<F>
    strong_id(F) = delete;

    constexpr value_type value() const { return value_; }

    friend constexpr auto operator<=>(strong_id, strong_id) = default;
    friend std::string to_string(strong_id id) { return std::to_string(id.value_); }
    friend std::ostream& operator<<(std::ostream& os, strong_id id) { return os << id.value_; }
    // On the wire an id is a JSON integer.
    friend void to_json(nlohmann::json& j, strong_id id) { j = id.value_; }
    friend void to_json(nlohmann::ordered_json& j, strong_id id) { j = id.value_; }
    friend void from_json(const nlohmann::json& j, strong_id& id) { id = strong_id(j.get<value_type>()); }

private:
    value_type value_{0};
};

}  // namespace bidding

template <class Tag>
struct std::hash<bidding::strong_id<Tag>> {
    std::size_t operator()(bidding::strong_id<Tag> id) const noexcept { return std::hash<std::int64_t>{}(id.value()); }
};

template <class Tag>
struct fmt::formatter<bidding::strong_id<Tag>> : fmt::formatter<std::int64_t> {
    template <class Context>
    auto format(bidding::strong_id<Tag> id, Context& ctx) const {
        return fmt::formatter<std::int64_t>::format(id.value(), ctx);
    }
};
