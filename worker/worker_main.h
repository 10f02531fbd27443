// `ratchet worker`: the entry point the ratchet CLI dispatches to.
#ifndef RATCHET_WORKER_WORKER_MAIN_H_
#define RATCHET_WORKER_WORKER_MAIN_H_

namespace ratchet::worker {

// argv[0] is the subcommand name ("worker"). Flags:
//   --coordinator=HOST:PORT (required)  --name=NAME  --metrics=ADDR
//   --scratch=DIR  --sandbox=auto|bwrap|none  --slots=N  --python=PATH
//   --harness=PATH  --memory-gb=G  --cpu-seconds=S  --wait-ms=MS
//   --peak-gbps=X --peak-gflops=Y (skip measuring)  --keep-scratch
// Runs until SIGTERM or SIGINT, then kills its jobs and returns 0.
int WorkerMain(int argc, char** argv);

}  // namespace ratchet::worker

#endif  // RATCHET_WORKER_WORKER_MAIN_H_
