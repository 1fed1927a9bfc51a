#pragma once
// Resident memory and CPU time of a process, read from /proc (Linux).

#include <cstdint>
#include <string>

namespace bench {

struct ProcSample {
    bool ok = false;
    int64_t rss_kib = -1;        // VmRSS from /proc/PID/status
    uint64_t cpu_ticks = 0;      // utime + stime from /proc/PID/stat, in clock ticks
    uint64_t user_ticks = 0;     // utime alone
    int64_t threads = -1;        // Threads from /proc/PID/status
};

// pid 0 means this process.
ProcSample sample_process(int pid);
double clock_ticks_per_second();
// CPU use between two samples taken `seconds` apart, as % of one core (-1 when unknown).
double cpu_percent(const ProcSample& before, const ProcSample& after, double seconds);
// The same for user time alone (utime).
double user_cpu_percent(const ProcSample& before, const ProcSample& after, double seconds);
// Raises this process's open-file limit to at least `want` when it can (as root, also the hard
// limit). Returns the soft limit in force afterwards.
uint64_t raise_fd_limit(uint64_t want);

}  // namespace bench
