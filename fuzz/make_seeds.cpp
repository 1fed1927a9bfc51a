// Writes the seeds that depend on the harness's keys (fuzz_targets.hpp): signed bus messages
// and HTTP requests carrying admin and bidder tokens. Run after changing a key or the bus format:
//   build-fuzz/fuzz/fuzz_make_seeds fuzz/corpus
#include <fuzz_targets.hpp>

#include <bidding/bus_codec.hpp>
#include <bidding/jwt.hpp>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

namespace {

using namespace bidding;

void write(const std::filesystem::path& file, const std::string& bytes) {
    std::filesystem::create_directories(file.parent_path());
    std::ofstream(file, std::ios::binary) << bytes;
    std::printf("%s (%zu bytes)\n", file.c_str(), bytes.size());
}

constexpr std::int64_t year_2100 = 4'102'444'800;

std::string token(std::string_view sub, std::string_view role) {
    return sign_jwt({{"sub", sub}, {"role", role}, {"exp", year_2100}}, fuzz::fuzz_secret_key);
}

std::string request(std::string_view method, std::string_view target, std::string_view extra, std::string_view body) {
    std::string r = std::string(method) + " " + std::string(target) + " HTTP/1.1\r\nHost: localhost:8000\r\n";
    r += extra;
    if (!body.empty() || method == "POST") r += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    return r + "\r\n" + std::string(body);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
        return 2;
    }
    const std::filesystem::path corpus = argv[1];

    // Bus messages on auction 42's channel (bus_message.cpp decodes on that channel).
    const bus_codec codec(std::string(fuzz::fuzz_bus_prefix), derive_bus_key(fuzz::fuzz_secret_key, ""));
    const auction_id id{42};
    const auto new_bid = make_shared_text(
        R"({"type":"new_bid","bid_id":42,"seq":43,"bidder":"bk","price":"123.67","added_at":"2026-11-25T14:00:01.456Z"})");
    const auto bus = corpus / "bus_message";
    write(bus / "signed_bid", codec.encode_bid(id, fanout_message{seq_t{42}, seq_t{43}, new_bid}, 1'764'079'201'456'000));
    write(bus / "signed_first_bid", codec.encode_bid(id, fanout_message{seq_t{0}, seq_t{1}, new_bid}, 0));
    write(bus / "signed_close",
          codec.encode_close(id, R"({"type":"bid_closed","bid_id":42,"final_price":"123.67","winner":"bk"})"));
    write(bus / "signed_close_no_winner",
          codec.encode_close(id, R"({"type":"bid_closed","bid_id":42,"final_price":"100.00","winner":null})"));
    write(bus / "signed_hold", codec.encode_hold(id, std::chrono::milliseconds(300)));
    write(bus / "signed_bid_other_channel",
          codec.encode_bid(auction_id{7}, fanout_message{seq_t{42}, seq_t{43}, new_bid}, 1));

    // HTTP requests with tokens signed by the harness's SECRET_KEY.
    const auto http = corpus / "http_request";
    const std::string admin = "Authorization: Bearer " + token("admin", "admin") + "\r\n";
    write(http / "api_create_admin",
          request("POST", "/api/bids", admin + "Content-Type: application/json\r\n",
                  R"({"name":"Lamp","initial_price":"25.00"})"));
    write(http / "api_create_default_price", request("POST", "/api/bids", admin, R"({"name":"Desk"})"));
    write(http / "api_close_admin", request("POST", "/api/bids/1/close", admin, ""));
    write(http / "api_close_closed_admin", request("POST", "/api/bids/2/close", admin, ""));
    write(http / "api_create_bidder_token",
          request("POST", "/api/bids", "Authorization: Bearer " + token("ann", "bidder") + "\r\n", R"({"name":"Lamp"})"));
    const std::string upgrade =
        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\nOrigin: http://localhost:8000\r\n";
    write(http / "upgrade_bidder_token", request("GET", "/ws/bid/1?since=5&token=" + token("ann", "bidder"), upgrade, ""));
    write(http / "upgrade_admin_token", request("GET", "/ws/bid/1?token=" + token("admin", "admin"), upgrade, ""));
    write(http / "upgrade_token_bad_name",
          request("GET", "/ws/bid/1?token=" + token("ann\xE2\x80\xAE", "bidder"), upgrade, ""));
    return 0;
}
