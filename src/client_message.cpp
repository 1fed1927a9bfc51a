#include <bidding/client_message.hpp>
#include <bidding/json_object.hpp>
#include <bidding/text.hpp>
#include <bidding/utf8.hpp>

#include <utility>

namespace bidding {

namespace {

message_error error(error_code code, std::string message, std::optional<std::string> ref = std::nullopt) {
    return message_error{code, std::move(message), std::move(ref)};
}

// Code points that draw nothing or reorder the text around them: a name holding one can pass
// for another bidder's ("alice" + U+200B) or display reversed (U+202E). Unicode's format
// characters (Cf), the fillers and variation selectors that render as nothing, and the line
// and paragraph separators. Emoji sequences joined by U+200D or styled by U+FE0F fall under it too.
bool invisible(char32_t cp) {
    struct range {
        char32_t first, last;
    };
    static constexpr range ranges[] = {
        {0x00AD, 0x00AD},   {0x034F, 0x034F},   {0x061C, 0x061C},   {0x115F, 0x1160},   {0x17B4, 0x17B5},
        {0x180B, 0x180F},   {0x200B, 0x200F},   {0x2028, 0x202E},   {0x2060, 0x206F},   {0x3164, 0x3164},
        {0xFE00, 0xFE0F},   {0xFEFF, 0xFEFF},   {0xFFA0, 0xFFA0},   {0xFFF9, 0xFFFB},   {0x110BD, 0x110BD},
        {0x110CD, 0x110CD}, {0x13430, 0x1343F}, {0x1BCA0, 0x1BCA3}, {0x1D173, 0x1D17A}, {0xE0000, 0xE0FFF},
    };
    for (const auto& r : ranges) {
        if (cp < r.first) return false;
        if (cp <= r.last) return true;
    }
    return false;
}

// Unicode spaces, so that a name of spaces alone (which ASCII trimming leaves) is refused.
bool space(char32_t cp) {
    return cp == 0x20 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x202F ||
           cp == 0x205F || cp == 0x3000;
}

// nullopt when the name is acceptable, else the reason.
std::optional<std::string> name_problem(std::string_view name) {
    std::size_t count = 0;
    bool control = false;
    bool hidden = false;
    bool visible = false;
    for (std::size_t i = 0; i < name.size(); ++count) {
        const auto cp = next_code_point(name, i);
        if (!cp) return "name must be valid UTF-8";
        if (*cp <= 0x1F || (*cp >= 0x7F && *cp <= 0x9F)) control = true;
        else if (invisible(*cp)) hidden = true;
        else if (!space(*cp)) visible = true;
    }
    if (count == 0 || count > max_name_chars) return "name must be 1 to 255 characters";
    if (control) return "name must not contain control characters";
    if (hidden) return "name must not contain invisible or bidirectional-control characters";
    if (!visible) return "name must contain a visible character";
    return std::nullopt;
}

}  // namespace

client_message parse_client_message(std::string_view text, bool name_from_token) {
    if (trim(text) == "pong") return pong_message{};

    const auto read = json_object::read(text);
    if (!read) {
        return error(error_code::invalid_json, "message is not valid JSON");
    }
    const json_object& doc = *read;
    if (doc.document_kind() != json_kind::object) {
        return error(error_code::invalid_message, "message must be a JSON object");
    }

    const auto duplicate_error = [&](std::optional<std::string> ref) {
        return error(error_code::invalid_message,
                     "duplicate field \"" + std::string(first_code_points(*doc.first_duplicate(), 64)) + "\"",
                     std::move(ref));
    };
    if (doc.first_duplicate() == "ref") return duplicate_error(std::nullopt);

    std::optional<std::string> ref;
    if (const json_member* r = doc.find("ref")) {
        if (r->kind != json_kind::string || r->text.empty() || code_point_count(r->text) > max_ref_chars) {
            return error(error_code::invalid_message, "ref must be a string of at most 64 characters");
        }
        ref = r->text;
    }
    if (doc.first_duplicate()) return duplicate_error(ref);

    if (const json_member* type = doc.find("type")) {
        if (type->kind != json_kind::string) return error(error_code::invalid_message, "type must be a string", ref);
        if (type->text == "pong") return pong_message{};
        if (type->text != "bid") {
            return error(error_code::invalid_message,
                         "unknown type \"" + std::string(first_code_points(type->text, 64)) + "\"", ref);
        }
    }

    const json_member* name = name_from_token ? nullptr : doc.find("name");
    if (!name_from_token && (name == nullptr || name->kind != json_kind::string)) {
        return error(error_code::invalid_message, "name is required and must be a string", ref);
    }

    const json_member* price = doc.find("price");
    if (price == nullptr) price = doc.find("Price");
    if (price == nullptr) return error(error_code::invalid_message, "price is required", ref);
    if (price->kind != json_kind::number && price->kind != json_kind::string) {
        return error(error_code::invalid_message, "price must be a number or a numeric string", ref);
    }

    std::optional<std::string> valid_name = std::string();
    if (!name_from_token) {
        std::string name_error;
        valid_name = normalize_name(name->text, &name_error);
        if (!valid_name) return error(error_code::invalid_name, std::move(name_error), ref);
    }

    const price_parse_result parsed = parse_price(price->text);
    if (!parsed.value) return error(error_code::invalid_price, std::string(describe(parsed.error)), ref);

    return bid_request{std::move(*valid_name), *parsed.value, std::move(ref)};
}

std::optional<std::string> normalize_name(std::string_view raw, std::string* error) {
    const std::string_view trimmed = trim(raw);
    if (auto problem = name_problem(trimmed)) {
        if (error != nullptr) *error = std::move(*problem);
        return std::nullopt;
    }
    return std::string(trimmed);
}

}  // namespace bidding
