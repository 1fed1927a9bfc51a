#include <bidding/web_assets.hpp>

namespace bidding {

const web_asset* find_web_asset(std::string_view name) {
    for (const auto& asset : web_assets()) {
        if (asset.name == name) {
            return &asset;
        }
    }
    return nullptr;
}

std::string_view content_type_for(std::string_view name) {
    struct entry {
        std::string_view extension;
        std::string_view type;
    };
    static constexpr entry types[] = {
        {".html", "text/html; charset=utf-8"}, {".css", "text/css; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"}, {".mjs", "text/javascript; charset=utf-8"},
        {".svg", "image/svg+xml"}, {".png", "image/png"}, {".ico", "image/x-icon"},
        {".json", "application/json"}, {".txt", "text/plain; charset=utf-8"},
    };
    for (const auto& t : types) {
        if (name.ends_with(t.extension)) {
            return t.type;
        }
    }
    return "application/octet-stream";
}

}  // namespace bidding
