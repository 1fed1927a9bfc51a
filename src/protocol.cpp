#include <bidding/protocol.hpp>
#include <bidding/text.hpp>
#include <bidding/utf8.hpp>

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>
#include <utility>

namespace bidding {

namespace {

using json = nlohmann::json;
using ordered_json = nlohmann::ordered_json;

// ---- JSON scanning ---------------------------------------------------------------------

enum class json_kind { null, boolean, number, string, object, array };

struct member {
    json_kind kind{json_kind::null};
    std::string text;  // the string value, or a number's exact source text
};

// nlohmann's parser rejects a number a double cannot hold (e.g. 1e400) as a parse error,
// although it is valid JSON and simply a too-large price. Such literals are replaced by 0
// before parsing and their text is restored by ordinal (numbers in document order).
struct number_rewrite {
    std::string text;                            // set only when something was replaced
    std::map<std::size_t, std::string> originals;  // number ordinal -> source text
};

bool is_json_number(std::string_view t) {
    std::size_t i = 0;
    const auto digits = [&] {
        const std::size_t b = i;
        while (i < t.size() && t[i] >= '0' && t[i] <= '9') ++i;
        return i - b;
    };
    if (i < t.size() && t[i] == '-') ++i;
    if (i < t.size() && t[i] == '0') {
        ++i;
    } else if (digits() == 0) {
        return false;
    }
    if (i < t.size() && t[i] == '.') {
        ++i;
        if (digits() == 0) return false;
    }
    if (i < t.size() && (t[i] == 'e' || t[i] == 'E')) {
        ++i;
        if (i < t.size() && (t[i] == '+' || t[i] == '-')) ++i;
        if (digits() == 0) return false;
    }
    return i == t.size();
}

bool overflows_double(std::string_view token) {
    // Without an exponent a double holds every literal shorter than its 309-digit range.
    if (token.find_first_of("eE") == std::string_view::npos && token.size() < 300) return false;
    const std::string copy(token);
    return !std::isfinite(std::strtod(copy.c_str(), nullptr));
}

number_rewrite rewrite_huge_numbers(std::string_view text) {
    number_rewrite out;
    std::size_t ordinal = 0;
    std::size_t copied = 0;  // text[0, copied) is already in out.text
    const auto is_number_char = [](char c) {
        return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E';
    };
    for (std::size_t i = 0; i < text.size();) {
        const char c = text[i];
        if (c == '"') {
            for (++i; i < text.size() && text[i] != '"'; ++i) {
                if (text[i] == '\\') ++i;
            }
            ++i;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            const std::size_t begin = i;
            while (i < text.size() && is_number_char(text[i])) ++i;
            const std::string_view token = text.substr(begin, i - begin);
            if (is_json_number(token) && overflows_double(token)) {
                out.text.append(text.substr(copied, begin - copied));
                out.text += '0';
                copied = i;
                out.originals.emplace(ordinal, std::string(token));
            }
            ++ordinal;
        } else {
            ++i;
        }
    }
    if (!out.originals.empty()) out.text.append(text.substr(copied));
    return out;
}

// Records the kind of the document and, for a top-level object, each member's kind and
// text. Nested values only matter as "object" or "array".
class top_level_recorder {
public:
    explicit top_level_recorder(const std::map<std::size_t, std::string>& originals) : originals_(originals) {}

    bool null() { return value(json_kind::null, {}); }
    bool boolean(bool) { return value(json_kind::boolean, {}); }
    bool number_integer(json::number_integer_t v) { return number(std::to_string(v)); }
    bool number_unsigned(json::number_unsigned_t v) { return number(std::to_string(v)); }
    bool number_float(json::number_float_t, const json::string_t& s) { return number(s); }
    bool string(json::string_t& s) { return value(json_kind::string, std::move(s)); }
    bool binary(json::binary_t&) { return value(json_kind::null, {}); }  // not produced by JSON text
    bool start_object(std::size_t) { return open(json_kind::object); }
    bool end_object() { return close(); }
    bool start_array(std::size_t) { return open(json_kind::array); }
    bool end_array() { return close(); }
    bool key(json::string_t& k) {
        if (depth_ == 1) {
            current_duplicate_ = members_.contains(k);
            if (current_duplicate_ && !first_duplicate_) first_duplicate_ = k;
            current_key_ = std::move(k);
        }
        return true;
    }
    bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) { return false; }

    json_kind document_kind() const { return document_kind_; }
    const std::optional<std::string>& first_duplicate() const { return first_duplicate_; }
    const member* find(std::string_view key) const {
        const auto it = members_.find(key);
        return it == members_.end() ? nullptr : &it->second;
    }

private:
    bool number(std::string text) {
        const auto original = originals_.find(number_ordinal_++);
        return value(json_kind::number, original != originals_.end() ? original->second : std::move(text));
    }
    bool value(json_kind kind, std::string text) {
        if (depth_ == 0) document_kind_ = kind;
        if (depth_ == 1 && !current_duplicate_) members_.emplace(current_key_, member{kind, std::move(text)});
        return true;
    }
    bool open(json_kind kind) {
        value(kind, {});
        ++depth_;
        return true;
    }
    bool close() {
        --depth_;
        return true;
    }

    const std::map<std::size_t, std::string>& originals_;
    std::size_t number_ordinal_{0};
    std::size_t depth_{0};
    json_kind document_kind_{json_kind::null};
    std::map<std::string, member, std::less<>> members_;
    std::string current_key_;
    bool current_duplicate_{false};
    std::optional<std::string> first_duplicate_;
};

message_error error(error_code code, std::string message, std::optional<std::string> ref = std::nullopt) {
    return message_error{code, std::move(message), std::move(ref)};
}

// nullopt when the name is acceptable, else the reason.
std::optional<std::string> name_problem(std::string_view name) {
    std::size_t count = 0;
    bool control = false;
    for (std::size_t i = 0; i < name.size(); ++count) {
        const auto cp = next_code_point(name, i);
        if (!cp) return "name must be valid UTF-8";
        if (*cp <= 0x1F || (*cp >= 0x7F && *cp <= 0x9F)) control = true;
    }
    if (count == 0 || count > max_name_chars) return "name must be 1 to 255 characters";
    if (control) return "name must not contain control characters";
    return std::nullopt;
}

std::string dump(const ordered_json& j) {
    // replace: a stray invalid byte (e.g. from the database) must not throw while serializing.
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

ordered_json optional_string(const std::optional<std::string>& s) {
    return s ? ordered_json(*s) : ordered_json(nullptr);
}


}  // namespace

std::string_view to_string(error_code code) {
    switch (code) {
        case error_code::invalid_json: return "invalid_json";
        case error_code::invalid_message: return "invalid_message";
        case error_code::invalid_name: return "invalid_name";
        case error_code::invalid_price: return "invalid_price";
        case error_code::price_too_low: return "price_too_low";
        case error_code::bid_closed: return "bid_closed";
        case error_code::unsupported: return "unsupported";
        case error_code::unavailable: return "unavailable";
        case error_code::rate_limited: return "rate_limited";
        case error_code::overloaded: return "overloaded";
        case error_code::in_doubt: return "in_doubt";
    }
    return "invalid_message";
}

client_message parse_client_message(std::string_view text, bool name_from_token) {
    if (trim(text) == "pong") return pong_message{};

    const number_rewrite rewrite = rewrite_huge_numbers(text);
    const std::string_view input = rewrite.originals.empty() ? text : std::string_view(rewrite.text);
    top_level_recorder doc(rewrite.originals);
    if (!json::sax_parse(input.data(), input.data() + input.size(), &doc)) {
        return error(error_code::invalid_json, "message is not valid JSON");
    }
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
    if (const member* r = doc.find("ref")) {
        if (r->kind != json_kind::string || r->text.empty() || code_point_count(r->text) > max_ref_chars) {
            return error(error_code::invalid_message, "ref must be a string of at most 64 characters");
        }
        ref = r->text;
    }
    if (doc.first_duplicate()) return duplicate_error(ref);

    if (const member* type = doc.find("type")) {
        if (type->kind != json_kind::string) return error(error_code::invalid_message, "type must be a string", ref);
        if (type->text == "pong") return pong_message{};
        if (type->text != "bid") {
            return error(error_code::invalid_message,
                         "unknown type \"" + std::string(first_code_points(type->text, 64)) + "\"", ref);
        }
    }

    const member* name = name_from_token ? nullptr : doc.find("name");
    if (!name_from_token && (name == nullptr || name->kind != json_kind::string)) {
        return error(error_code::invalid_message, "name is required and must be a string", ref);
    }

    const member* price = doc.find("price");
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

std::variant<new_auction_request, body_error> parse_new_auction(std::string_view body) {
    const number_rewrite rewrite = rewrite_huge_numbers(body);
    const std::string_view input = rewrite.originals.empty() ? body : std::string_view(rewrite.text);
    top_level_recorder doc(rewrite.originals);
    if (!json::sax_parse(input.data(), input.data() + input.size(), &doc)) {
        return body_error{"invalid_json", "the body is not valid JSON"};
    }
    if (doc.document_kind() != json_kind::object) {
        return body_error{"bad_request", "the body must be a JSON object"};
    }
    if (doc.first_duplicate()) {
        return body_error{"bad_request", "duplicate field \"" + std::string(first_code_points(*doc.first_duplicate(), 64)) + "\""};
    }
    const member* name = doc.find("name");
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
    if (const member* price = doc.find("initial_price")) {
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

std::optional<std::string> normalize_name(std::string_view raw, std::string* error) {
    const std::string_view trimmed = trim(raw);
    if (auto problem = name_problem(trimmed)) {
        if (error != nullptr) *error = std::move(*problem);
        return std::nullopt;
    }
    return std::string(trimmed);
}

ordered_json auction_object(const auction& a) {
    ordered_json j = ordered_json::object();
    j["id"] = a.id;
    j["name"] = a.name;
    j["status"] = to_string(a.status);
    j["initial_price"] = format_cents(a.initial_price);
    j["current_price"] = format_cents(a.current_price);
    j["last_seq"] = a.last_seq;
    return j;
}

ordered_json history_object(const history_entry& e) {
    ordered_json j = ordered_json::object();
    j["seq"] = e.seq;
    j["bidder"] = e.bidder;
    j["price"] = format_cents(e.price);
    j["added_at"] = e.added_at;
    return j;
}

namespace {

ordered_json initial_state_json(const auction& a, const std::vector<history_entry>& entries) {
    ordered_json data = ordered_json::array();
    for (const history_entry& e : entries) data.push_back(history_object(e));

    ordered_json j = ordered_json::object();
    j["type"] = "initial_state";
    j["bid"] = auction_object(a);
    j["data"] = std::move(data);
    return j;
}

}  // namespace

std::string serialize_initial_state(const auction& a, const std::vector<history_entry>& newest_first) {
    return dump(initial_state_json(a, newest_first));
}

std::string serialize_initial_state(const auction& a, const std::vector<history_entry>& oldest_first, seq_t since,
                                    bool truncated) {
    auto j = initial_state_json(a, oldest_first);
    j["since"] = since;
    if (truncated) j["truncated"] = true;
    return dump(j);
}

std::string serialize_new_bid(auction_id id, const history_entry& entry) {
    ordered_json j = ordered_json::object();
    j["type"] = "new_bid";
    j["bid_id"] = id;
    j["seq"] = entry.seq;
    j["bidder"] = entry.bidder;
    j["price"] = format_cents(entry.price);
    j["added_at"] = entry.added_at;
    return dump(j);
}

std::string serialize_bid_accepted(const history_entry& entry, const std::optional<std::string>& ref) {
    ordered_json j = ordered_json::object();
    j["type"] = "bid_accepted";
    j["seq"] = entry.seq;
    j["price"] = format_cents(entry.price);
    j["ref"] = optional_string(ref);
    return dump(j);
}

std::string serialize_error(error_code code, std::string_view message, const std::optional<std::string>& ref,
                            std::optional<cents> current_price) {
    ordered_json j = ordered_json::object();
    j["type"] = "error";
    j["code"] = to_string(code);
    j["message"] = message;
    j["ref"] = optional_string(ref);
    if (current_price) j["current_price"] = format_cents(*current_price);
    return dump(j);
}

std::string serialize_ping() { return R"({"type":"ping"})"; }

std::string serialize_bid_closed(auction_id id, cents final_price, const std::optional<std::string>& winner) {
    ordered_json j = ordered_json::object();
    j["type"] = "bid_closed";
    j["bid_id"] = id;
    j["final_price"] = format_cents(final_price);
    j["winner"] = optional_string(winner);
    return dump(j);
}

std::string serialize_server_shutdown() { return R"({"type":"server_shutdown","reconnect":true})"; }

std::string price_too_low_message(cents current_price) {
    return "Bid must be higher than " + format_cents(current_price);
}

}  // namespace bidding
