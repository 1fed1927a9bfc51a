#include "report.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>

namespace bench {

Json& Json::operator[](std::string_view key) {
    if (kind_ == Kind::null) kind_ = Kind::object;
    for (auto& m : members_)
        if (m.first == key) return m.second;
    members_.emplace_back(std::string(key), Json());
    return members_.back().second;
}

Json& Json::push(Json value) {
    if (kind_ == Kind::null) kind_ = Kind::array;
    items_.push_back(std::move(value));
    return items_.back();
}

void append_json_string(std::string& out, std::string_view s) {
    static const char* hex = "0123456789abcdef";
    out.push_back('"');
    for (char ch : s) {
        auto c = static_cast<unsigned char>(ch);
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default:
                if (c < 0x20) {
                    out += "\\u00";
                    out.push_back(hex[c >> 4]);
                    out.push_back(hex[c & 15]);
                } else {
                    out.push_back(ch);
                }
        }
    }
    out.push_back('"');
}

std::string format_number(double v, int decimals) {
    if (!std::isfinite(v)) return "null";
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
    std::string s(buf);
    if (s.find('.') != std::string::npos) {
        while (!s.empty() && s.back() == '0') s.pop_back();
        if (!s.empty() && s.back() == '.') s.pop_back();
    }
    if (s == "-0") s = "0";
    return s;
}

void Json::dump_to(std::string& out) const {
    switch (kind_) {
        case Kind::null: out += "null"; break;
        case Kind::boolean: out += b_ ? "true" : "false"; break;
        case Kind::integer: {
            char buf[24];
            auto r = std::to_chars(buf, buf + sizeof buf, i_);
            out.append(buf, r.ptr);
            break;
        }
        case Kind::number: out += format_number(d_); break;
        case Kind::string: append_json_string(out, s_); break;
        case Kind::object: {
            out.push_back('{');
            bool first = true;
            for (const auto& [k, v] : members_) {
                if (!first) out.push_back(',');
                first = false;
                append_json_string(out, k);
                out.push_back(':');
                v.dump_to(out);
            }
            out.push_back('}');
            break;
        }
        case Kind::array: {
            out.push_back('[');
            for (size_t i = 0; i < items_.size(); ++i) {
                if (i) out.push_back(',');
                items_[i].dump_to(out);
            }
            out.push_back(']');
            break;
        }
    }
}

std::string Json::dump() const {
    std::string out;
    dump_to(out);
    return out;
}

namespace {

std::string scalar_text(const Json& v) {
    if (v.kind() == Json::Kind::string) {
        std::string s;
        v.dump_to(s);
        return s.substr(1, s.size() - 2);
    }
    return v.dump();
}

// An object whose members are all scalars and few: one row "k v  k v ...".
bool is_flat_group(const Json& v) {
    if (v.kind() != Json::Kind::object || v.members().empty() || v.members().size() > 10) return false;
    for (const auto& m : v.members())
        if (!m.second.is_scalar()) return false;
    return true;
}

void rows(const Json& v, const std::string& label, int indent, std::string& out) {
    auto line = [&](const std::string& name, const std::string& value) {
        std::string head(static_cast<size_t>(indent) * 2, ' ');
        head += name;
        if (head.size() < 30) head.resize(30, ' ');
        else head += ' ';
        out += head + value + "\n";
    };
    if (v.is_scalar()) {
        line(label, scalar_text(v));
        return;
    }
    if (is_flat_group(v)) {
        std::string joined;
        for (const auto& [k, m] : v.members()) {
            if (!joined.empty()) joined += "  ";
            joined += k + " " + scalar_text(m);
        }
        line(label, joined);
        return;
    }
    if (v.kind() == Json::Kind::array) {
        bool all_scalar = true;
        for (const auto& item : v.items()) all_scalar = all_scalar && item.is_scalar();
        if (all_scalar) {
            std::string joined;
            for (const auto& item : v.items()) joined += (joined.empty() ? "" : ", ") + scalar_text(item);
            line(label, joined.empty() ? "-" : joined);
            return;
        }
        line(label, "");
        for (size_t i = 0; i < v.items().size(); ++i) rows(v.items()[i], "[" + std::to_string(i) + "]", indent + 1, out);
        return;
    }
    if (!label.empty()) line(label, "");
    for (const auto& [k, m] : v.members()) rows(m, k, label.empty() ? indent : indent + 1, out);
}

}  // namespace

void print_table(const Json& report, std::string_view title) {
    std::string out;
    out += std::string(title) + "\n";
    rows(report, "", 1, out);
    std::fputs(out.c_str(), stderr);
    std::fflush(stderr);
}

int report_self_test() {
    int failures = 0;
    auto check = [&](bool ok, const char* what) {
        if (!ok) {
            ++failures;
            std::fprintf(stderr, "self-test FAILED: %s\n", what);
        }
    };
    Json j = Json::object();
    j["a"] = 1;
    j["b"] = "x\"y\n";
    j["c"]["d"] = 2.5;
    j["c"]["e"] = nullptr;
    j["f"].push(true);
    j["f"].push(Json::object());
    j["a"] = 3;  // replaces in place
    check(j.dump() == R"({"a":3,"b":"x\"y\n","c":{"d":2.5,"e":null},"f":[true,{}]})", "json dump");
    check(format_number(1.0) == "1" && format_number(2.346, 2) == "2.35" && format_number(0.1) == "0.1",
          "format_number");
    std::string s;
    append_json_string(s, std::string_view("\x01", 1));
    check(s == "\"\\u0001\"", "control characters escaped");
    return failures;
}

}  // namespace bench
