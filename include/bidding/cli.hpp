#pragma once
// The command line: serve (default), migrate, seed, bid create/close/list, --help, --version.
namespace bidding {

// Exit codes: 0 success, 1 runtime failure (database unreachable, unknown auction),
// 2 bad usage or bad configuration.
int run_cli(int argc, char** argv);

}  // namespace bidding
