#include <bidding/json_object.hpp>

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdlib>
#include <utility>

namespace bidding {

namespace {

using json = nlohmann::json;

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
    std::map<std::string, json_member, std::less<>> take_members() { return std::move(members_); }

private:
    bool number(std::string text) {
        const auto original = originals_.find(number_ordinal_++);
        return value(json_kind::number, original != originals_.end() ? original->second : std::move(text));
    }
    bool value(json_kind kind, std::string text) {
        if (depth_ == 0) document_kind_ = kind;
        if (depth_ == 1 && !current_duplicate_) members_.emplace(current_key_, json_member{kind, std::move(text)});
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
    std::map<std::string, json_member, std::less<>> members_;
    std::string current_key_;
    bool current_duplicate_{false};
    std::optional<std::string> first_duplicate_;
};

}  // namespace

std::optional<json_object> json_object::read(std::string_view text) {
    const number_rewrite rewrite = rewrite_huge_numbers(text);
    const std::string_view input = rewrite.originals.empty() ? text : std::string_view(rewrite.text);
    top_level_recorder doc(rewrite.originals);
    if (!json::sax_parse(input.data(), input.data() + input.size(), &doc)) {
        return std::nullopt;
    }
    json_object out;
    out.kind_ = doc.document_kind();
    out.members_ = doc.take_members();
    out.first_duplicate_ = doc.first_duplicate();
    return out;
}

}  // namespace bidding
