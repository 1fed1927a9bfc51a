#include <bidding/api_body.hpp>
#include <bidding/client_message.hpp>
#include <bidding/json_object.hpp>
#include <bidding/utf8.hpp>

#include <utility>

namespace bidding {

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
    return out;
}

}  // namespace bidding
