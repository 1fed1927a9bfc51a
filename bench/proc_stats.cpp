#include "proc_stats.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

namespace bench {

ProcSample sample_process(int pid) {
    ProcSample s;
    std::string base = pid == 0 ? std::string("/proc/self") : "/proc/" + std::to_string(pid);
    {
        std::ifstream status(base + "/status");
        if (!status) return s;
        std::string line;
        while (std::getline(status, line)) {
            if (line.rfind("VmRSS:", 0) == 0) s.rss_kib = std::strtoll(line.c_str() + 6, nullptr, 10);
            else if (line.rfind("Threads:", 0) == 0) s.threads = std::strtoll(line.c_str() + 8, nullptr, 10);
        }
    }
    {
        std::ifstream stat(base + "/stat");
        if (!stat) return s;
        std::stringstream buffer;
        buffer << stat.rdbuf();
        std::string text = buffer.str();
        // The command name (field 2) is in parentheses and may contain spaces: start after the last ')'.
        size_t close = text.rfind(')');
        if (close == std::string::npos) return s;
        std::istringstream rest(text.substr(close + 1));
        std::string field;
        // Fields 3..13 precede utime (14) and stime (15).
        for (int i = 3; i <= 13 && rest >> field; ++i) {
        }
        unsigned long long utime = 0, stime = 0;
        if (!(rest >> utime >> stime)) return s;
        s.cpu_ticks = utime + stime;
        s.user_ticks = utime;
    }
    s.ok = true;
    return s;
}

double clock_ticks_per_second() {
    static const double ticks = [] {
        long t = sysconf(_SC_CLK_TCK);
        return t > 0 ? static_cast<double>(t) : 100.0;
    }();
    return ticks;
}

double cpu_percent(const ProcSample& before, const ProcSample& after, double seconds) {
    if (!before.ok || !after.ok || seconds <= 0) return -1;
    double used = static_cast<double>(after.cpu_ticks - before.cpu_ticks) / clock_ticks_per_second();
    return used / seconds * 100.0;
}

double user_cpu_percent(const ProcSample& before, const ProcSample& after, double seconds) {
    if (!before.ok || !after.ok || seconds <= 0) return -1;
    double used = static_cast<double>(after.user_ticks - before.user_ticks) / clock_ticks_per_second();
    return used / seconds * 100.0;
}

uint64_t raise_fd_limit(uint64_t want) {
    struct rlimit rl {};
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 0;
    if (rl.rlim_cur >= want) return rl.rlim_cur;
    if (rl.rlim_max < want) {
        struct rlimit more = rl;
        more.rlim_cur = more.rlim_max = want;
        if (setrlimit(RLIMIT_NOFILE, &more) == 0) return want;  // allowed for root (up to fs.nr_open)
    }
    rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
    return rl.rlim_cur;
}

}  // namespace bench
