#pragma once
// The fuzz targets' bodies: each takes one input and aborts (fuzz_check) when an invariant
// breaks, so libFuzzer and the unit tests' corpus replay (tests/unit/fuzz_corpus_test.cpp) both
// notice. Exceptions that the code under test must not throw are left to escape: libFuzzer
// reports an uncaught exception as a crash, and the replay test fails on it.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace bidding::fuzz {

// The SECRET_KEY, clock and bus channel prefix of the harness; make_seeds.cpp signs the seeds'
// tokens (which expire in 2100) and bus messages with them.
inline constexpr std::string_view fuzz_secret_key = "fuzz-secret-key-0123456789abcdef-0123456789";
inline constexpr std::int64_t fuzz_now = 1'800'000'000;  // 2027-01-15
inline constexpr std::string_view fuzz_bus_prefix = "bidding:fuzz:";

void price_one(std::string_view input);
void client_message_one(std::string_view input);
void config_one(std::string_view input);
void url_one(std::string_view input);
void http_request_one(std::string_view input);
void bus_message_one(std::string_view input);
void ws_frames_one(std::string_view input);
void timed_auction_one(std::string_view input);

// The input's bytes, printable, capped: what a failed check shows of a value.
inline std::string printable(std::string_view bytes, std::size_t cap = 300) {
    std::string out;
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        if (i == cap) {
            out += "...";
            break;
        }
        const auto c = static_cast<unsigned char>(bytes[i]);
        if (c >= 0x20 && c < 0x7f && c != '\\') {
            out += static_cast<char>(c);
        } else {
            constexpr char hex[] = "0123456789abcdef";
            out += "\\x";
            out += hex[c >> 4];
            out += hex[c & 0xf];
        }
    }
    return out;
}

// The file being replayed by the unit tests (tests/unit/fuzz_corpus_test.cpp), named when a check
// fails; libFuzzer names its inputs itself.
inline std::string& replay_input_name() {
    static std::string name;
    return name;
}

// An invariant of the code under test: a failure prints what broke and aborts (libFuzzer saves
// the input; the replay test dies loudly).
inline void fuzz_check(bool ok, std::string_view what, std::string_view detail = {}) {
    if (ok) return;
    std::fprintf(stderr, "fuzz check failed: %.*s\n", static_cast<int>(what.size()), what.data());
    if (!replay_input_name().empty()) std::fprintf(stderr, "  input: %s\n", replay_input_name().c_str());
    if (!detail.empty()) {
        const auto shown = printable(detail);
        std::fprintf(stderr, "  value: %s\n", shown.c_str());
    }
    std::fflush(stderr);
    std::abort();
}

// The input cut at `separator` into at most `n` fields (the last keeps the rest); missing
// fields are empty. A cheap structure for targets whose functions take several strings.
inline std::vector<std::string_view> fields(std::string_view input, char separator, std::size_t n) {
    std::vector<std::string_view> out;
    while (out.size() + 1 < n) {
        const auto at = input.find(separator);
        if (at == std::string_view::npos) break;
        out.push_back(input.substr(0, at));
        input.remove_prefix(at + 1);
    }
    out.push_back(input);
    out.resize(n);
    return out;
}

}  // namespace bidding::fuzz
