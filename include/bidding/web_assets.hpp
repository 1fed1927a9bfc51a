#pragma once
// The browser page's files (web/), embedded in the binary at build time.
#include <span>
#include <string_view>

namespace bidding {

struct web_asset {
    std::string_view name;  // file name in web/, e.g. "bid.html"
    std::string_view body;
};

std::span<const web_asset> web_assets();

// nullptr when there is no such file.
const web_asset* find_web_asset(std::string_view name);

// By file extension; application/octet-stream when unknown.
std::string_view content_type_for(std::string_view name);

}  // namespace bidding
