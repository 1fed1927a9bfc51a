#pragma once
// The `serve` command: wires the listener, sessions, bid path and database pool together,
// runs the io_context on a pool of threads, and drains on SIGTERM/SIGINT.
#include <bidding/config.hpp>

namespace bidding {

// Blocks until a termination signal and the drain that follows; returns the exit code.
int run_server(const config& cfg);

}  // namespace bidding
