#ifndef RATCHET_COORDINATOR_COORDINATOR_MAIN_H_
#define RATCHET_COORDINATOR_COORDINATOR_MAIN_H_

namespace ratchet::coordinator {

// `ratchet coordinator --listen=HOST:PORT --db=PATH [--port-file=FILE]
//  [--metrics=ADDR] [--lease-seconds=N] [--heartbeat-seconds=N]`
// Serves until SIGTERM or SIGINT. Port 0 picks a free port, written to
// --port-file once the server accepts connections.
int CoordinatorMain(int argc, char** argv);

}  // namespace ratchet::coordinator

#endif  // RATCHET_COORDINATOR_COORDINATOR_MAIN_H_
