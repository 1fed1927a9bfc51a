// The one translation unit that compiles Asio's and Beast's non-template code
// (BOOST_ASIO_SEPARATE_COMPILATION / BOOST_BEAST_SEPARATE_COMPILATION). Boost.URL's is in
// url_impl.cpp.
#include <boost/asio/impl/src.hpp>
#include <boost/beast/src.hpp>
