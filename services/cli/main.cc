// The single `ratchet` binary: services (coordinator, verifier, worker), the
// kernel bench, the one-machine `local` mode and the client commands. Every
// handler gets argc/argv starting at the subcommand name.
#include <cstring>
#include <iostream>
#include <string>

#include "common/metrics.h"
#include "coordinator/coordinator_main.h"
#include "kernels/bench.h"
#include "services/cli/commands.h"
#include "services/cli/local.h"
#include "services/cli/research.h"
#include "services/cli/security_commands.h"
#include "services/verifier/verifier_main.h"
#include "training/data/data_main.h"
#include "training/harness/launch_main.h"
#include "training/harness/train_main.h"
#include "worker/worker_main.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << ratchet::cli::Usage();
    return ratchet::cli::kExitUsage;
  }
  const std::string cmd = argv[1];
  int sub_argc = argc - 1;
  char** sub_argv = argv + 1;
  if (cmd == "help" || cmd == "--help" || cmd == "-h") {
    // `ratchet help CMD`: that command's usage.
    std::cout << (argc > 2 ? ratchet::cli::CommandUsage(argv[2]) : ratchet::cli::Usage());
    return ratchet::cli::kExitOk;
  }
  if (cmd == "version" || cmd == "--version") {
    std::cout << "ratchet " << ratchet::BuildVersion() << " (commit " << ratchet::BuildCommit()
              << ")\n";
    return ratchet::cli::kExitOk;
  }
  if (cmd == "coordinator") return ratchet::coordinator::CoordinatorMain(sub_argc, sub_argv);
  if (cmd == "verifier") return ratchet::verifier::VerifierMain(sub_argc, sub_argv);
  if (cmd == "worker") return ratchet::worker::WorkerMain(sub_argc, sub_argv);
  if (cmd == "bench") return ratchet::kernels::BenchMain(sub_argc, sub_argv);
  if (cmd == "data") return ratchet::training::DataMain(sub_argc, sub_argv);
  if (cmd == "train") return ratchet::training::TrainMain(sub_argc, sub_argv);
  if (cmd == "launch") return ratchet::training::LaunchMain(sub_argc, sub_argv);
  if (cmd == "local") return ratchet::cli::LocalMain(sub_argc, sub_argv);
  if (ratchet::cli::IsSecurityCommand(cmd))
    return ratchet::cli::RunSecurityCommand(sub_argc, sub_argv, std::cout, std::cerr);
  if (cmd == "import") return ratchet::cli::RunImportCommand(sub_argc, sub_argv, std::cout, std::cerr);
  if (ratchet::cli::IsResearchCommand(cmd))
    return ratchet::cli::RunResearchCommand(sub_argc, sub_argv, std::cout, std::cerr);
  if (ratchet::cli::IsClientCommand(cmd)) {
    return ratchet::cli::RunClientCommand(sub_argc, sub_argv, std::cout, std::cerr);
  }
  std::cerr << "ratchet: unknown command '" << cmd << "'\n\n" << ratchet::cli::Usage();
  return ratchet::cli::kExitUsage;
}
