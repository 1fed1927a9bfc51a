// The one translation unit that compiles Boost.URL's non-template code (Boost.URL 1.81 is not
// header-only). Apart from asio_impl.cpp so that bidding_logic needs no Asio.
#include <boost/url/src.hpp>

#include <bidding/uri.hpp>

#include <boost/url/parse.hpp>

#include <algorithm>
#include <cstddef>

namespace bidding {

std::optional<boost::urls::url_view> parse_uri_guarded(std::string_view text) {
    const auto colon = text.find(':');
    if (colon != std::string_view::npos && text.size() - colon == 2 && text[colon + 1] != '/') {
        return std::nullopt;
    }
    const auto parsed = boost::urls::parse_uri(text);
    if (!parsed) {
        return std::nullopt;
    }
    if (parsed->has_query()) {
        const auto query = parsed->encoded_query();
        const auto separators = static_cast<std::size_t>(std::count(query.begin(), query.end(), '&'));
        if (parsed->params().size() != separators + 1) {
            return std::nullopt;  // miscounted: iterating its parameters would read past the query
        }
    }
    return *parsed;
}

}  // namespace bidding
