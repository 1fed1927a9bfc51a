#pragma once
// libpqxx 6.4 reads and writes the strong types as the integers they hold: ids as bigint, money
// as a count of cents (the SQL converts numeric(10,2) with *100 / /100.0 at the boundary).
// Private to the Postgres sources.
#include <bidding/money.hpp>
#include <bidding/strong_id.hpp>

#include <pqxx/strconv>

#include <string>

namespace pqxx {

template <class Tag>
struct string_traits<bidding::strong_id<Tag>> {
    using id = bidding::strong_id<Tag>;
    static constexpr const char* name() noexcept { return "bidding::strong_id"; }
    static constexpr bool has_null() noexcept { return false; }
    static bool is_null(id) { return false; }
    [[noreturn]] static id null() { internal::throw_null_conversion(name()); }
    static void from_string(const char str[], id& obj) {
        long long v = 0;
        string_traits<long long>::from_string(str, v);
        obj = id(v);
    }
    static std::string to_string(id obj) { return string_traits<long long>::to_string(obj.value()); }
};

template <>
struct string_traits<bidding::cents> {
    static constexpr const char* name() noexcept { return "bidding::cents"; }
    static constexpr bool has_null() noexcept { return false; }
    static bool is_null(bidding::cents) { return false; }
    [[noreturn]] static bidding::cents null() { internal::throw_null_conversion(name()); }
    static void from_string(const char str[], bidding::cents& obj) {
        long long v = 0;
        string_traits<long long>::from_string(str, v);
        obj = bidding::cents(v);
    }
    static std::string to_string(bidding::cents obj) { return string_traits<long long>::to_string(obj.count()); }
};

}  // namespace pqxx
