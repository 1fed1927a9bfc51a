// The one translation unit that compiles Asio's, Beast's and Boost.URL's non-template code
// (BOOST_ASIO_SEPARATE_COMPILATION / BOOST_BEAST_SEPARATE_COMPILATION; Boost.URL 1.81 is not
// header-only).
#include <boost/asio/impl/src.hpp>
#include <boost/beast/src.hpp>
#include <boost/url/src.hpp>
