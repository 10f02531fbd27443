#ifndef RATCHET_SERVICES_VERIFIER_VERIFIER_MAIN_H_
#define RATCHET_SERVICES_VERIFIER_VERIFIER_MAIN_H_

namespace ratchet::verifier {

// `ratchet verifier --coordinator=HOST:PORT [--name=NAME] [--metrics=ADDR]`
// Takes claimed improvements from the coordinator, has them replayed on
// workers and reports verdicts, until SIGTERM or SIGINT.
int VerifierMain(int argc, char** argv);

}  // namespace ratchet::verifier

#endif  // RATCHET_SERVICES_VERIFIER_VERIFIER_MAIN_H_
