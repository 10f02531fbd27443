// The CPUs this process may run on: its affinity (a Slurm or cgroup cpuset,
// taskset), not every CPU online. A worker reports it, the roofline measures
// with it, and training processes get one thread per usable CPU.
#ifndef RATCHET_COMMON_USABLE_CPUS_H_
#define RATCHET_COMMON_USABLE_CPUS_H_

#include <sched.h>
#include <unistd.h>

namespace ratchet {

// At least 1.
inline int UsableCpus() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
  const long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? static_cast<int>(n) : 1;
}

}  // namespace ratchet

#endif  // RATCHET_COMMON_USABLE_CPUS_H_
