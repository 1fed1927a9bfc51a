#include <bidding/api_body.hpp>
#include <bidding/client_message.hpp>
#include <bidding/json_object.hpp>
#include <bidding/utf8.hpp>

#include <utility>

namespace bidding {

namespace {

// A JSON number that is a whole count of seconds from 1 to `most` ("6", not "6.5", "-1" or "1e3").
std::optional<std::chrono::seconds> whole_seconds(const std::string& text, std::chrono::seconds most) {
    if (text.empty() || text.size() > 12 || text.find_first_not_of("0123456789") != std::string::npos) {
        return std::nullopt;
    }
    const auto n = std::stoll(text);
    if (n < 1 || n > most.count()) {
        return std::nullopt;
    }
    return std::chrono::seconds{n};
}

// A member that is absent or null (clients that write every field send null for "none").
const json_member* given(const json_object& doc, std::string_view key) {
    const json_member* m = doc.find(key);
    return m == nullptr || m->kind == json_kind::null ? nullptr : m;
}

}  // namespace

std::variant<new_auction_request, body_error> parse_new_auction(std::string_view body) {
    const auto read = json_object::read(body);
    if (!read) {
        return body_error{"invalid_json", "the body is not valid JSON"};
    }
    const json_object& doc = *read;
    if (doc.document_kind() != json_kind::object) {
        return body_error{"bad_request", "the body must be a JSON object"};
    }
    if (doc.first_duplicate()) {
        return body_error{"bad_request", "duplicate field \"" + std::string(first_code_points(*doc.first_duplicate(), 64)) + "\""};
    }
    const json_member* name = doc.find("name");
    if (name == nullptr || name->kind != json_kind::string) {
        return body_error{"bad_request", "name is required and must be a string"};
    }
    new_auction_request out;
    std::string problem;
    auto valid = normalize_name(name->text, &problem);
    if (!valid) {
        return body_error{"invalid_name", problem};
    }
    out.name = std::move(*valid);
    if (const json_member* price = doc.find("initial_price")) {
        if (price->kind != json_kind::number && price->kind != json_kind::string) {
            return body_error{"bad_request", "initial_price must be a number or a numeric string"};
        }
        const auto parsed = parse_price(price->text);
        if (!parsed.value) {
            return body_error{"invalid_price", std::string(describe(parsed.error))};
        }
        out.initial_price = *parsed.value;
    }
    const json_member* ends_at = given(doc, "ends_at");
    const json_member* duration = given(doc, "duration");
    if (ends_at != nullptr && ends_at->kind != json_kind::string) {
        return body_error{"bad_request", "ends_at must be a string (ISO 8601, e.g. 2026-12-02T17:00:00.000Z)"};
    }
    if (duration != nullptr && duration->kind != json_kind::number) {
        return body_error{"bad_request", "duration must be a number of seconds"};
    }
    if (ends_at != nullptr && duration != nullptr) {
        return body_error{"invalid_ends_at", "give ends_at or duration, not both"};
    }
    if (ends_at != nullptr) {
        out.ends_at = parse_timestamp(ends_at->text);
        if (!out.ends_at) {
            return body_error{"invalid_ends_at",
                              "ends_at must be an ISO 8601 time with a zone, e.g. 2026-12-02T17:00:00.000Z"};
        }
    }
    if (duration != nullptr) {
        out.duration = whole_seconds(duration->text, max_auction_duration);
        if (!out.duration) {
            return body_error{"invalid_ends_at", "duration must be a whole number of seconds from 1 to " +
                                                     std::to_string(max_auction_duration.count())};
        }
    }
    const json_member* window = given(doc, "extend_window");
    const json_member* by = given(doc, "extend_by");
    for (const json_member* m : {window, by}) {
        if (m != nullptr && m->kind != json_kind::number) {
            return body_error{"bad_request", "extend_window and extend_by must be numbers of seconds"};
        }
    }
    if (window != nullptr || by != nullptr) {
        if (window == nullptr || by == nullptr) {
            return body_error{"invalid_extension", "give both extend_window and extend_by, or neither"};
        }
        if (!out.ends_at && !out.duration) {
            return body_error{"invalid_extension", "a soft close needs an end: ends_at or duration"};
        }
        out.extend_window = whole_seconds(window->text, max_extension);
        out.extend_by = whole_seconds(by->text, max_extension);
        if (!out.extend_window || !out.extend_by) {
            return body_error{"invalid_extension", "extend_window and extend_by must be whole numbers of seconds "
                                                   "from 1 to " + std::to_string(max_extension.count())};
        }
    }
    if (const json_member* step = given(doc, "min_increment")) {
        if (step->kind != json_kind::number && step->kind != json_kind::string) {
            return body_error{"bad_request", "min_increment must be a number or a numeric string"};
        }
        const auto parsed = parse_price(step->text);
        if (!parsed.value) {
            return body_error{"invalid_price", "min_increment: " + std::string(describe(parsed.error))};
        }
        out.min_increment = *parsed.value;
    }
    return out;
}

}  // namespace bidding
