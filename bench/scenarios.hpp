#pragma once
// The five scenarios (idle, fanout, hot, many, overload): roles of the connections (observer,
// bidder), the phases of a run (connect, load, settle, report) and the figures they produce.

#include <atomic>

#include "options.hpp"

namespace bench {

// Runs the scenario of `o`: prints progress and the table on stderr and one JSON line on stdout,
// writes the --observer-report/--bid-report files. Returns the exit code (0 ran, 1 could not run).
int run_scenario(const Options& o);

// Set by SIGINT/SIGTERM: the current phase ends early and the run reports what it has.
extern std::atomic<bool> g_interrupted;

// Unit checks of the pieces of scenarios.cpp that need no network (FNV digest, send-time ring).
int scenarios_self_test();

}  // namespace bench
