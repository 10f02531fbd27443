#include "common/process_metrics.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "prometheus/client_metric.h"
#include "prometheus/metric_type.h"

namespace ratchet {

namespace {

// The fields of /proc/self/stat this needs (proc(5): utime is field 14).
struct ProcStat {
  bool ok = false;
  double user_ticks = 0, system_ticks = 0;
  double threads = 0;
  double start_ticks = 0;  // since boot
  double virtual_bytes = 0;
  double resident_pages = 0;
};

ProcStat ReadProcStat() {
  ProcStat s;
  std::ifstream in("/proc/self/stat");
  std::string line;
  if (!std::getline(in, line)) return s;
  // The command name (field 2) is in parentheses and may hold spaces.
  const size_t close = line.rfind(')');
  if (close == std::string::npos) return s;
  std::istringstream rest(line.substr(close + 1));
  std::vector<std::string> fields;  // fields[0] is field 3, the state
  for (std::string f; rest >> f;) fields.push_back(f);
  if (fields.size() < 22) return s;
  auto field = [&fields](int n) { return std::stod(fields[static_cast<size_t>(n - 3)]); };
  try {
    s.user_ticks = field(14);
    s.system_ticks = field(15);
    s.threads = field(20);
    s.start_ticks = field(22);
    s.virtual_bytes = field(23);
    s.resident_pages = field(24);
  } catch (const std::exception&) {
    return s;
  }
  s.ok = true;
  return s;
}

// Seconds since the epoch at boot ("btime" of /proc/stat); 0 if unknown.
double BootTimeSeconds() {
  std::ifstream in("/proc/stat");
  for (std::string key; in >> key;) {
    if (key == "btime") {
      double btime = 0;
      in >> btime;
      return btime;
    }
    in.ignore(std::numeric_limits<std::streamsize>::max(), '\n');
  }
  return 0;
}

// Entries of /proc/self/fd, not counting the one this reads them through.
int OpenFds() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return -1;
  const int own = dirfd(dir);
  int n = 0;
  while (const dirent* e = readdir(dir)) {
    if (e->d_name[0] == '.') continue;
    if (std::atoi(e->d_name) != own) ++n;
  }
  closedir(dir);
  return n;
}

prometheus::MetricFamily Family(const char* name, const char* help, prometheus::MetricType type,
                                double value) {
  prometheus::MetricFamily family;
  family.name = name;
  family.help = help;
  family.type = type;
  prometheus::ClientMetric metric;
  if (type == prometheus::MetricType::Counter)
    metric.counter.value = value;
  else
    metric.gauge.value = value;
  family.metric.push_back(metric);
  return family;
}

}  // namespace

ProcessMetrics::ProcessMetrics() {
  const ProcStat stat = ReadProcStat();
  const double boot = BootTimeSeconds();
  const long ticks = sysconf(_SC_CLK_TCK);
  if (stat.ok && boot > 0 && ticks > 0) start_time_seconds_ = boot + stat.start_ticks / ticks;
}

std::vector<prometheus::MetricFamily> ProcessMetrics::Collect() const {
  using prometheus::MetricType;
  std::vector<prometheus::MetricFamily> families;
  const ProcStat stat = ReadProcStat();
  const long ticks = sysconf(_SC_CLK_TCK);
  const long page = sysconf(_SC_PAGESIZE);
  if (stat.ok && ticks > 0) {
    families.push_back(Family("process_cpu_seconds_total",
                              "Total user and system CPU time spent in seconds",
                              MetricType::Counter,
                              (stat.user_ticks + stat.system_ticks) / ticks));
  }
  if (stat.ok && page > 0) {
    families.push_back(Family("process_resident_memory_bytes", "Resident memory size in bytes",
                              MetricType::Gauge, stat.resident_pages * page));
  }
  if (stat.ok) {
    families.push_back(Family("process_virtual_memory_bytes", "Virtual memory size in bytes",
                              MetricType::Gauge, stat.virtual_bytes));
    families.push_back(
        Family("process_threads", "Number of OS threads", MetricType::Gauge, stat.threads));
  }
  if (const int fds = OpenFds(); fds >= 0) {
    families.push_back(Family("process_open_fds", "Number of open file descriptors",
                              MetricType::Gauge, fds));
  }
  rlimit limit;
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY) {
    families.push_back(Family("process_max_fds", "Maximum number of open file descriptors",
                              MetricType::Gauge, static_cast<double>(limit.rlim_cur)));
  }
  if (start_time_seconds_ > 0) {
    families.push_back(Family("process_start_time_seconds",
                              "Start time of the process since unix epoch in seconds",
                              MetricType::Gauge, start_time_seconds_));
  }
  return families;
}

}  // namespace ratchet
