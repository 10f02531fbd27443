#!/usr/bin/env python3
"""Fails when a source file includes a header of a layer above its own.

The layers (docs/architecture.md, "Layers"), lowest first; a folder may
include its own headers and those of the folders listed for it, nothing
else of the project. Tests (files named *_test.cc, tests/) may include
anything. Run by the build (target check_layers), so a wrong import fails
the build.

usage: check_layers.py [ROOT]   (default: the repository holding this script)
       check_layers.py --self-test   (plants wrong and right includes in a
                                      temporary tree; ctest runs this)
"""
import os
import re
import sys

PROTO = "ratchet/v1"          # generated from proto/
KERNEL_ABI = "ratchet/kernel_abi.h"  # what candidates compile against

# folder -> what it may include besides itself. The longest matching folder
# decides, so coordinator/store is not "coordinator".
ALLOWED = {
    "common": [PROTO],
    "spec": ["common", PROTO],
    "kernels": ["common", PROTO, KERNEL_ABI],
    "coordinator/store": ["common", "spec", PROTO],
    "coordinator/proposers": ["common", "spec", PROTO],
    "coordinator": ["coordinator/store", "coordinator/proposers", "common", "spec", PROTO],
    "worker": ["training", "kernels", "common", "spec", PROTO, KERNEL_ABI],
    "services/verifier": ["common", "spec", PROTO],
    "training": ["common", PROTO],
    # The CLI is the top: it starts every service in one process (ratchet local).
    "services/cli": ["coordinator", "worker", "services/verifier", "kernels", "training",
                     "common", "spec", PROTO, KERNEL_ABI],
}
SOURCE = re.compile(r"\.(cc|h|cu|cuh)$")
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')
# Prefixes that name the project's own headers (anything else: a library).
PROJECT = ("common/", "spec/", "kernels/", "coordinator/", "worker/", "services/", "tests/",
           "training/", "ratchet/")


def folder_of(path):
    best = None
    for folder in ALLOWED:
        if path == folder or path.startswith(folder + "/"):
            if best is None or len(folder) > len(best):
                best = folder
    return best


def allowed(folder, header):
    for prefix in [folder] + ALLOWED[folder]:
        if header == prefix or header.startswith(prefix + "/"):
            return True
    return False


def check(root):
    wrong = []
    for top in ALLOWED:
        base = os.path.join(root, top)
        if not os.path.isdir(base):
            continue
        for dirpath, _, files in os.walk(base):
            for name in files:
                if not SOURCE.search(name) or name.endswith("_test.cc"):
                    continue
                path = os.path.relpath(os.path.join(dirpath, name), root)
                folder = folder_of(path)
                if folder != top:  # walked into a deeper layer of its own
                    continue
                with open(os.path.join(root, path), errors="replace") as f:
                    for number, line in enumerate(f, 1):
                        m = INCLUDE.match(line)
                        if not m or not m.group(1).startswith(PROJECT):
                            continue
                        if not allowed(folder, m.group(1)):
                            wrong.append(f"{path}:{number}: {folder}/ may not include "
                                         f"\"{m.group(1)}\" (docs/architecture.md, \"Layers\")")
    return wrong


def self_test():
    import tempfile
    files = {
        "common/names.h": '#include "ratchet/v1/ratchet.pb.h"\n',
        "coordinator/store/store.h": '#include "common/clock.h"\n',
        "coordinator/run.cc": '#include "coordinator/store/store.h"\n',
        "worker/w_test.cc": '#include "services/cli/spec.h"\n',  # tests may
        # Wrong: upward, sideways, into tests.
        "common/bad.h": '#include "coordinator/coordinator.h"\n',
        "coordinator/store/bad.cc": '  # include "coordinator/proposers/proposer.h"\n',
        "kernels/bad.cc": '#include "worker/worker.h"\n',
        "services/verifier/bad.cc": '#include "tests/support/process.h"\n',
    }
    with tempfile.TemporaryDirectory() as root:
        for path, text in files.items():
            os.makedirs(os.path.join(root, os.path.dirname(path)), exist_ok=True)
            with open(os.path.join(root, path), "w") as f:
                f.write(text)
        found = sorted(w.split(":")[0] for w in check(root))
    expected = sorted(p for p in files if "bad" in p)
    if found != expected:
        print(f"check_layers self-test: found {found}, expected {expected}", file=sys.stderr)
        return 1
    print(f"check_layers self-test: {len(expected)} wrong includes caught, none else")
    return 0


def main():
    if sys.argv[1:] == ["--self-test"]:
        return self_test()
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(
        os.path.dirname(os.path.abspath(__file__)))
    wrong = check(root)
    for w in wrong:
        print(w, file=sys.stderr)
    if wrong:
        print(f"check_layers: {len(wrong)} include(s) against the layers", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
