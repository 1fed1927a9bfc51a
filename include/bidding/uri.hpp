#pragma once
// Boost.URL's URI parser behind the guards it needs (src/url_impl.cpp compiles Boost.URL).
#include <boost/url/url_view.hpp>

#include <optional>
#include <string_view>

namespace bidding {

// boost::urls::parse_uri, except for two kinds of URI that Boost.URL 1.81 mishandles (nullopt, as
// for text that is no URI):
// - a scheme and then exactly one character other than "/" ("a:?", "a:]"): its parser counts a
//   segment in an empty path, and an assertion aborts builds without NDEBUG (Debug, the
//   sanitizer presets). Such a URI has no authority, which every caller requires.
// - an empty query followed by a fragment ("postgres://db/x?#f"): it counts two parameters in
//   it, and iterating them reads past the query, a crash in every build (DATABASE_URL's
//   parameters are iterated). Caught as any parameter count that disagrees with the query's "&".
// Found by fuzz/targets/url.cpp and fuzz/targets/config.cpp (fuzz/regressions/).
std::optional<boost::urls::url_view> parse_uri_guarded(std::string_view text);

}  // namespace bidding
