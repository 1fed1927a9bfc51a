#pragma once
// Strict reading of a JSON object whose members are what matters (a client frame, an API body):
// each top-level member's kind and exact text. Numbers keep their source text, so a price is
// never read through a double, and a literal a double cannot hold (1e400) is still a number
// rather than a parse error; duplicate member names are reported, nested values are only
// "object" or "array". Pure.
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace bidding {

enum class json_kind { null, boolean, number, string, object, array };

struct json_member {
    json_kind kind{json_kind::null};
    std::string text;  // the string value, or a number's exact source text
};

class json_object {
public:
    // nullopt when `text` is not valid JSON.
    static std::optional<json_object> read(std::string_view text);

    // The kind of the whole document: only an object has members.
    json_kind document_kind() const { return kind_; }
    // The first member, or nullptr.
    const json_member* find(std::string_view key) const {
        const auto it = members_.find(key);
        return it == members_.end() ? nullptr : &it->second;
    }
    // The first name that appeared twice, if any (the members keep its first value).
    const std::optional<std::string>& first_duplicate() const { return first_duplicate_; }

private:
    json_kind kind_{json_kind::null};
    std::map<std::string, json_member, std::less<>> members_;
    std::optional<std::string> first_duplicate_;
};

}  // namespace bidding
