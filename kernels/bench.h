// `ratchet bench <problem-dir> <solution-dir> [--json] [--seed N] [--knob K=V]...`
//
// Runs ratchet-harness (found beside /proc/self/exe) standalone on one
// solution and prints a per-workload table and the problem score, or with
// --json the result JSON. Also passes through --warmups, --repetitions,
// --rounds, --python, --peak-gbps, --peak-gflops, --scratch.
#ifndef RATCHET_KERNELS_BENCH_H_
#define RATCHET_KERNELS_BENCH_H_

namespace ratchet::kernels {

// argv[0] is the command's own name ("bench" or the program) and is skipped.
// Returns 0 when a result was produced (whatever its outcome), 1 when the
// harness failed, 2 on bad arguments.
int BenchMain(int argc, char** argv);

}  // namespace ratchet::kernels

#endif  // RATCHET_KERNELS_BENCH_H_
