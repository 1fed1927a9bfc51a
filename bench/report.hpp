#pragma once
// The results of a run as a small ordered JSON tree: dumped as ONE line on stdout, and shown as a
// human table on stderr (one row per figure, small groups of figures on one row).
// Also the JSON string escaping used by the per-observer and per-bid report files.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace bench {

class Json {
public:
    enum class Kind { null, boolean, integer, number, string, object, array };

    Json() = default;
    Json(std::nullptr_t) {}
    Json(bool b) : kind_(Kind::boolean), b_(b) {}
    Json(int v) : kind_(Kind::integer), i_(v) {}
    Json(long v) : kind_(Kind::integer), i_(v) {}
    Json(long long v) : kind_(Kind::integer), i_(v) {}
    Json(unsigned v) : kind_(Kind::integer), i_(v) {}
    Json(unsigned long v) : kind_(Kind::integer), i_(static_cast<int64_t>(v)) {}
    Json(unsigned long long v) : kind_(Kind::integer), i_(static_cast<int64_t>(v)) {}
    Json(double v) : kind_(Kind::number), d_(v) {}
    Json(const char* s) : kind_(Kind::string), s_(s) {}
    Json(std::string s) : kind_(Kind::string), s_(std::move(s)) {}
    Json(std::string_view s) : kind_(Kind::string), s_(s) {}

    static Json object() { Json j; j.kind_ = Kind::object; return j; }
    static Json array() { Json j; j.kind_ = Kind::array; return j; }

    // Object member (inserted at the end when new). Turns a null into an object.
    Json& operator[](std::string_view key);
    // Appends to an array. Turns a null into an array.
    Json& push(Json value);

    Kind kind() const { return kind_; }
    bool is_scalar() const { return kind_ != Kind::object && kind_ != Kind::array; }
    const std::vector<std::pair<std::string, Json>>& members() const { return members_; }
    const std::vector<Json>& items() const { return items_; }

    std::string dump() const;
    void dump_to(std::string& out) const;

private:
    Kind kind_ = Kind::null;
    bool b_ = false;
    int64_t i_ = 0;
    double d_ = 0;
    std::string s_;
    std::vector<std::pair<std::string, Json>> members_;
    std::vector<Json> items_;
};

// Appends `s` as a JSON string literal (with quotes) to `out`.
void append_json_string(std::string& out, std::string_view s);
// A number with at most `decimals` decimals, trailing zeros kept off ("12.5", "3").
std::string format_number(double v, int decimals = 3);

// Prints `report` as a table to stderr; `title` is the first line.
void print_table(const Json& report, std::string_view title);

int report_self_test();

}  // namespace bench
