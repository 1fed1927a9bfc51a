// The one translation unit that compiles Boost.URL's non-template code (Boost.URL 1.81 is not
// header-only). Apart from asio_impl.cpp so that bidding_logic needs no Asio.
#include <boost/url/src.hpp>
