#include <bidding/config.hpp>
#include <bidding/dotenv.hpp>

#include <unistd.h>  // environ

#include <cstddef>
#include <string>

namespace bidding {

namespace {

bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v'; }

bool is_key_start(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; }
bool is_key_char(char c) { return is_key_start(c) || (c >= '0' && c <= '9') || c == '.'; }

// Walks the text once; quoted values may span lines, so this is not a line splitter.
class dotenv_parser {
public:
    explicit dotenv_parser(std::string_view text) : text_(text) {}

    env_map parse() {
        env_map out;
        while (!at_end()) {
            skip_blanks();
            if (at_end()) break;
            if (peek() == '\n') {
                advance();
                continue;
            }
            if (peek() == '#') {
                skip_to_line_end();
                continue;
            }
            entry_line_ = line_;
            parse_entry(out);
        }
        return out;
    }

private:
    bool at_end() const { return pos_ >= text_.size(); }
    char peek() const { return text_[pos_]; }
    void advance() {
        if (text_[pos_] == '\n') ++line_;
        ++pos_;
    }
    void skip_blanks() {
        while (!at_end() && is_blank(peek())) advance();
    }
    void skip_to_line_end() {
        while (!at_end() && peek() != '\n') advance();
    }

    // The message names the line but never quotes it: it may hold a secret.
    [[noreturn]] void fail(std::string_view what) const {
        throw config_error(".env", ".env line " + std::to_string(entry_line_) + ": " + std::string(what) +
                                       " (expected KEY=VALUE, # comment or a blank line)");
    }

    std::string read_key() {
        if (at_end() || !is_key_start(peek())) fail("invalid variable name");
        const std::size_t begin = pos_;
        while (!at_end() && is_key_char(peek())) advance();
        return std::string(text_.substr(begin, pos_ - begin));
    }

    void parse_entry(env_map& out) {
        std::string key = read_key();
        if (key == "export" && !at_end() && is_blank(peek())) {
            skip_blanks();
            key = read_key();
        }
        skip_blanks();
        if (at_end() || peek() != '=') fail("missing '=' after the variable name");
        advance();
        skip_blanks();

        std::string value;
        if (!at_end() && (peek() == '\'' || peek() == '"')) {
            value = peek() == '\'' ? read_single_quoted() : read_double_quoted();
            // Only whitespace or a comment may follow the closing quote.
            skip_blanks();
            if (!at_end() && peek() == '#') skip_to_line_end();
            if (!at_end() && peek() != '\n') fail("unexpected text after the closing quote");
        } else {
            value = read_unquoted();
        }
        out.insert_or_assign(std::move(key), std::move(value));
    }

    std::string read_single_quoted() {
        advance();  // opening quote
        const std::size_t begin = pos_;
        while (!at_end() && peek() != '\'') advance();
        if (at_end()) fail("unterminated single-quoted value");
        std::string value(text_.substr(begin, pos_ - begin));
        advance();  // closing quote
        return value;
    }

    std::string read_double_quoted() {
        advance();  // opening quote
        std::string value;
        while (!at_end() && peek() != '"') {
            char c = peek();
            advance();
            if (c == '\\' && !at_end()) {
                const char e = peek();
                advance();
                switch (e) {
                    case 'n': c = '\n'; break;
                    case 't': c = '\t'; break;
                    case 'r': c = '\r'; break;
                    case '"': c = '"'; break;
                    case '\\': c = '\\'; break;
                    case '\'': c = '\''; break;
                    default: value += '\\'; c = e; break;  // unknown escapes stay literal
                }
            }
            value += c;
        }
        if (at_end()) fail("unterminated double-quoted value");
        advance();  // closing quote
        return value;
    }

    std::string read_unquoted() {
        const std::size_t begin = pos_;
        skip_to_line_end();
        std::string_view raw = text_.substr(begin, pos_ - begin);
        // "#" starts a comment only after whitespace, so "a#b" keeps its hash.
        for (std::size_t i = 0; i < raw.size(); ++i) {
            if (raw[i] == '#' && (i == 0 || is_blank(raw[i - 1]))) {
                if (i == 0 && begin > 0 && !is_blank(text_[begin - 1])) continue;  // KEY=#x keeps "#x"
                raw = raw.substr(0, i);
                break;
            }
        }
        while (!raw.empty() && is_blank(raw.back())) raw.remove_suffix(1);
        return std::string(raw);
    }

    std::string_view text_;
    std::size_t pos_{0};
    std::size_t line_{1};
    std::size_t entry_line_{1};
};

}  // namespace

env_map parse_dotenv(std::string_view text) { return dotenv_parser(text).parse(); }

env_map merge_env(const env_map& dotenv, const env_map& process_env) {
    env_map merged = dotenv;
    for (const auto& [key, value] : process_env) merged.insert_or_assign(key, value);
    return merged;
}

env_map process_environment() {
    env_map out;
    for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
        const std::string_view text(*entry);
        const std::size_t eq = text.find('=');
        if (eq == std::string_view::npos || eq == 0) continue;
        out.emplace(std::string(text.substr(0, eq)), std::string(text.substr(eq + 1)));
    }
    return out;
}

}  // namespace bidding
