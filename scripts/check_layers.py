#!/usr/bin/env python3
"""The layers (docs/architecture.md, "Layers"): the one table, and its checks.

A folder may include its own headers and those of the folders listed for it
in ALLOWED, nothing else of the project. Tests (files named *_test.cc that no
production target compiles, and tests/) may include anything. Two checks
enforce the table, both from it:

  - the compiler: configure runs --make-roots, which builds one include root
    per layer under the build folder holding links to only the folders that
    layer may see; cmake/layers.cmake gives each production target its
    layer's root instead of the repository, so a wrong include is "No such
    file or directory" (ctest check_layers_compiler proves it on the real
    compile commands);
  - this lint (target check_layers, which every target depends on): every
    #include "..." and #include <...> of a project folder, a path written
    with ../ or relative to the including file resolved as the compiler
    resolves it, which include roots cannot stop.

usage: check_layers.py [ROOT] [--production-sources FILE]
           lint; FILE lists the sources production targets compile (written
           by cmake/layers.cmake), so that a *_test.cc among them is checked
       check_layers.py --make-roots OUTDIR [ROOT]
           the include root of every layer, and OUTDIR/layers.cmake
       check_layers.py --compile-test BUILD_DIR
           each layer's real compile command (compile_commands.json) against
           a header of every layer: visible exactly when the table says so,
           and a wrong include fails with "No such file"
       check_layers.py --self-test
           plants wrong and right includes in a temporary tree; ctest runs it
"""
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

PROTO = "ratchet/v1"          # generated from proto/ (build/proto, an include dir for all)
KERNEL_ABI = "ratchet/kernel_abi.h"  # what candidates compile against (kernels/include)

# folder -> what it may include besides itself. The longest matching folder
# decides, so coordinator/store is not "coordinator"; an entry covers the
# layers inside it ("coordinator" covers coordinator/store).
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
TEST = re.compile(r"_test\.(cc|cu)$")
INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^">]+)[">]')
# Prefixes that name the project's own headers (anything else: a library).
PROJECT = ("common/", "spec/", "kernels/", "coordinator/", "worker/", "services/", "tests/",
           "training/", "ratchet/")


def layer_of(path, table=ALLOWED):
    best = None
    for folder in table:
        if path == folder or path.startswith(folder + "/"):
            if best is None or len(folder) > len(best):
                best = folder
    return best



def visible(folder, table=ALLOWED):
    """The layers whose headers a file of `folder` may include."""
    seen = {folder}
    for entry in table[folder]:
        seen |= {l for l in table if l == entry or l.startswith(entry + "/")}
    return seen


def allowed(folder, header, table=ALLOWED):
    layer = layer_of(header, table)
    if layer is not None:
        return layer in visible(folder, table)
    # Not a layer's folder: the generated API, the kernel ABI; tests/ never.
    return any(header == p or header.startswith(p + "/") for p in table[folder]
               if p not in table)


def not_closed(table=ALLOWED):
    """What a layer may include must not include what that layer may not:
    otherwise the compiler rejects a legal include through its headers."""
    wrong = []
    for folder in table:
        mine = visible(folder, table)
        for other in sorted(mine - {folder}):
            extra = sorted(visible(other, table) - mine)
            if extra:
                wrong.append(f"ALLOWED: {folder} may include {other}, which may include "
                             f"{', '.join(extra)}; {folder} must list them too")
    return wrong


def resolve(path, bracket, header):
    """The repository path an include names (path: the including file's)."""
    if bracket == '"' and (header.startswith("./") or header.startswith("../")
                           or "/../" in header or "/./" in header):
        return os.path.normpath(os.path.join(os.path.dirname(path), header))
    return os.path.normpath(header)


def check(root, production=()):
    production = {os.path.normpath(p) for p in production}
    wrong = not_closed()
    for top in ALLOWED:
        base = os.path.join(root, top)
        if not os.path.isdir(base):
            continue
        for dirpath, _, files in os.walk(base):
            for name in files:
                if not SOURCE.search(name):
                    continue
                path = os.path.relpath(os.path.join(dirpath, name), root)
                if TEST.search(name) and path not in production:
                    continue  # a test: anything
                folder = layer_of(path)
                if folder != top:  # walked into a deeper layer of its own
                    continue
                with open(os.path.join(root, path), errors="replace") as f:
                    for number, line in enumerate(f, 1):
                        m = INCLUDE.match(line)
                        if not m:
                            continue
                        bracket, header = m.group(1), m.group(2)
                        target = resolve(path, bracket, header)
                        if bracket == '"' and target == os.path.normpath(header) and \
                                os.path.exists(os.path.join(root, os.path.dirname(path), header)):
                            # found beside the including file, where the compiler looks first
                            target = os.path.normpath(os.path.join(os.path.dirname(path), header))
                        if target.startswith(".."):
                            wrong.append(f"{path}:{number}: \"{header}\" leaves the repository")
                            continue
                        if not target.startswith(PROJECT):
                            continue
                        if not allowed(folder, target):
                            shown = header if target == header else f"{header}\" (= \"{target}"
                            wrong.append(f"{path}:{number}: {folder}/ may not include "
                                         f"\"{shown}\" (docs/architecture.md, \"Layers\")")
    return wrong


# --- the include roots ------------------------------------------------------

def root_dirname(layer):
    return layer.replace("/", "-")


def root_links(source, layer, table=ALLOWED):
    """{path in the root: folder of the source it links to} for one layer:
    each folder whose layers it may all see is one link; a folder holding a
    layer it may not see is a real folder of links to the rest."""
    see = visible(layer, table)
    links = {}

    def walk(rel):
        for name in sorted(os.listdir(os.path.join(source, rel) if rel else source)):
            sub = f"{rel}/{name}" if rel else name
            full = os.path.join(source, sub)
            owner = layer_of(sub, table)
            inner = [l for l in table if l.startswith(sub + "/")]
            if owner in see and all(l in see for l in inner):
                links[sub] = full
            elif any(l in see for l in inner) and os.path.isdir(full):
                walk(sub)

    walk("")
    return links


def make_roots(out, source, table=ALLOWED):
    """Builds OUTDIR/<layer>/ for every layer (rebuilt only when it differs)
    and OUTDIR/layers.cmake, which cmake/layers.cmake includes."""
    wrong = not_closed(table)
    if wrong:
        for w in wrong:
            print(w, file=sys.stderr)
        return 1
    os.makedirs(out, exist_ok=True)
    for layer in table:
        links = root_links(source, layer, table)
        root = os.path.join(out, root_dirname(layer))
        manifest = os.path.join(root, ".links.json")
        try:
            with open(manifest) as f:
                if json.load(f) == links:
                    continue
        except (OSError, ValueError):
            pass
        if os.path.lexists(root):
            shutil.rmtree(root)
        for sub, target in links.items():
            os.makedirs(os.path.dirname(os.path.join(root, sub)), exist_ok=True)
            os.symlink(target, os.path.join(root, sub))
        with open(manifest, "w") as f:
            json.dump(links, f)
    text = ("# Written by scripts/check_layers.py --make-roots from its table ALLOWED.\n"
            f"set(RATCHET_LAYERS \"{';'.join(table)}\")\n")
    path = os.path.join(out, "layers.cmake")
    if not os.path.exists(path) or open(path).read() != text:
        with open(path, "w") as f:
            f.write(text)
    return 0


# --- the compiler's side ----------------------------------------------------

def a_header(source, layer, table=ALLOWED):
    """One header of the layer's own (not of a layer inside it), or None."""
    base = os.path.join(source, layer)
    for dirpath, dirs, files in os.walk(base):
        dirs.sort()
        for name in sorted(files):
            path = os.path.relpath(os.path.join(dirpath, name), source)
            if name.endswith(".h") and layer_of(path, table) == layer and \
                    "/testdata/" not in path and "/include/" not in path:
                return path
    return None


def probe_command(entry, probe):
    """The entry's compile command, preprocessing `probe` to stdout instead."""
    args = shlex.split(entry["command"]) if "command" in entry else list(entry["arguments"])
    out, skip = [], False
    for i, a in enumerate(args):
        if skip:
            skip = False
            continue
        if a in ("-o", "-MT", "-MF", "-MQ", "--dependency-output"):
            skip = True
            continue
        if a in ("-c", "-MD", "-MMD", "--generate-dependencies-with-compile"):
            continue
        if a == entry["file"] or (not a.startswith("-") and i > 0 and
                                  os.path.normpath(os.path.join(entry["directory"], a)) ==
                                  os.path.normpath(entry["file"])):
            continue
        out.append(a)
    return out + ["-E", probe]


def compile_test(build):
    with open(os.path.join(build, "compile_commands.json")) as f:
        entries = json.load(f)
    cache = open(os.path.join(build, "CMakeCache.txt")).read()
    source = re.search(r"^ratchet_SOURCE_DIR:STATIC=(.*)$", cache, re.M).group(1)
    production = set()
    listed = os.path.join(build, "layers", "production_sources.txt")
    if os.path.exists(listed):
        production = {l.strip() for l in open(listed) if l.strip()}
    headers = {layer: a_header(source, layer) for layer in ALLOWED}
    headers["tests"] = "tests/support/process.h"
    failures, checked, commands = [], 0, []
    for layer in ALLOWED:
        picks = {}
        for e in entries:
            rel = os.path.relpath(e["file"], source)
            if rel.startswith("..") or layer_of(rel) != layer or TEST.search(rel):
                continue
            if production and os.path.normpath(e["file"]) not in production:
                continue
            ext = os.path.splitext(rel)[1]
            picks.setdefault(ext, e)
        if not picks:
            failures.append(f"{layer}: no production source in compile_commands.json")
            continue
        see = visible(layer)
        for ext, e in sorted(picks.items()):
            rel = os.path.relpath(e["file"], source)
            commands.append(rel)
            with tempfile.TemporaryDirectory() as tmp:
                probe = os.path.join(tmp, "probe" + ext)
                with open(probe, "w") as f:
                    for other, header in sorted(headers.items()):
                        if header:
                            f.write(f'#if __has_include("{header}")\nRATCHET_SEES_{other.replace("/", "_")}\n'
                                    f'#endif\n')
                r = subprocess.run(probe_command(e, probe), cwd=e["directory"],
                                   capture_output=True, text=True)
                if r.returncode != 0:
                    failures.append(f"{layer} ({rel}): the probe did not preprocess:\n{r.stderr}")
                    continue
                words = set(r.stdout.split())
                seen = {o for o in headers if headers[o] and
                        f"RATCHET_SEES_{o.replace('/', '_')}" in words}
                want = {o for o in headers if headers[o] and o in see}
                if seen != want:
                    failures.append(f"{layer} ({rel}): sees {sorted(seen)}, the table says "
                                    f"{sorted(want)}")
                # And a wrong include is an error of the compiler itself.
                for other in sorted(set(headers) - see):
                    if not headers[other]:
                        continue
                    with open(probe, "w") as f:
                        f.write(f'#include "{headers[other]}"\n')
                    r = subprocess.run(probe_command(e, probe), cwd=e["directory"],
                                       capture_output=True, text=True)
                    checked += 1
                    if r.returncode == 0 or "No such file" not in r.stderr:
                        failures.append(f"{layer} ({rel}): #include \"{headers[other]}\" "
                                        f"compiled (rc {r.returncode})")
                    elif layer == "common" and other == "coordinator":
                        print(f"{layer} ({rel}'s command): "
                              + r.stderr.strip().splitlines()[0].replace(tmp + "/", ""))
    for f_ in failures:
        print(f_, file=sys.stderr)
    if failures:
        return 1
    print(f"check_layers compile test: the compile commands of {', '.join(commands)} see "
          f"exactly their layers; {checked} wrong includes fail with \"No such file\"")
    return 0


# --- self-test --------------------------------------------------------------

def self_test():
    files = {
        "common/names.h": '#include "ratchet/v1/ratchet.pb.h"\n',
        "common/local.cc": '#include "names.h"\n#include <absl/strings/str_cat.h>\n',
        "coordinator/store/store.h": '#include "common/clock.h"\n',
        "coordinator/run.cc": '#include "coordinator/store/store.h"\n#include "store/store.h"\n',
        "coordinator/proposers/p.h": '#include <spec/knobs.h>\n',
        "worker/w_test.cc": '#include "services/cli/spec.h"\n',  # tests may
        "kernels/testdata/k.cu": '#include <ratchet/kernel_abi.h>\n',
        # Wrong: upward, sideways, into tests.
        "common/bad.h": '#include "coordinator/coordinator.h"\n',
        "coordinator/store/bad.cc": '  # include "coordinator/proposers/proposer.h"\n',
        "kernels/bad.cc": '#include "worker/worker.h"\n',
        "services/verifier/bad.cc": '#include "tests/support/process.h"\n',
        # The holes: angle brackets, ../, a *_test.cc that a production target compiles.
        "common/bad_angle.cc": '#include <coordinator/coordinator.h>\n',
        "kernels/harness/bad_dotdot.cc": '#include "../../worker/worker.h"\n',
        "coordinator/store/bad_up.cc": '#include "../run.h"\n',
        "coordinator/store/bad_side.h": '#include "./../proposers/p.h"\n',
        "spec/bad_leaves.cc": '#include "../../etc/passwd"\n',
        "training/bad_prod_test.cc": '#include "worker/worker.h"\n',
    }
    production = ["training/bad_prod_test.cc"]
    status = 0
    with tempfile.TemporaryDirectory() as root:
        for path, text in files.items():
            os.makedirs(os.path.join(root, os.path.dirname(path)), exist_ok=True)
            with open(os.path.join(root, path), "w") as f:
                f.write(text)
        found = sorted(w.split(":")[0] for w in check(root, production))
        expected = sorted(p for p in files if "bad" in p)
        if found != expected:
            print(f"check_layers self-test: found {found}, expected {expected}", file=sys.stderr)
            status = 1
        # The include roots: coordinator/store sees its own folder and not
        # the rest of coordinator/; services/cli sees all of coordinator/.
        out = os.path.join(root, "build", "layers")
        os.makedirs(os.path.join(root, "coordinator", "proposers"), exist_ok=True)
        if make_roots(out, root) != 0:
            status = 1
        store = os.path.join(out, "coordinator-store")
        cli = os.path.join(out, "services-cli")
        expect = {
            os.path.join(store, "coordinator/store/store.h"): True,
            os.path.join(store, "common/names.h"): True,
            os.path.join(store, "coordinator/run.cc"): False,
            os.path.join(store, "coordinator/proposers/p.h"): False,
            os.path.join(store, "worker"): False,
            os.path.join(out, "common", "coordinator"): False,
            os.path.join(out, "common", "common/names.h"): True,
            os.path.join(cli, "coordinator/proposers/p.h"): True,
            os.path.join(cli, "services/verifier/bad.cc"): True,
            os.path.join(out, "services-verifier", "services/cli"): False,
        }
        for path, want in expect.items():
            if os.path.exists(path) != want:
                print(f"check_layers self-test: {os.path.relpath(path, out)} "
                      f"{'missing' if want else 'visible'}", file=sys.stderr)
                status = 1
        # A table whose layer may include one that includes more is refused.
        if not not_closed({"a": ["b"], "b": ["c"], "c": []}):
            print("check_layers self-test: a table that is not closed passed", file=sys.stderr)
            status = 1
    if status == 0:
        print(f"check_layers self-test: {len(expected)} wrong includes caught, none else; "
              f"include roots as the table says")
    return status


def main():
    args = sys.argv[1:]
    if args == ["--self-test"]:
        return self_test()
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if args[:1] == ["--make-roots"]:
        return make_roots(args[1], args[2] if len(args) > 2 else here)
    if args[:1] == ["--compile-test"]:
        return compile_test(args[1])
    production = []
    if "--production-sources" in args:
        i = args.index("--production-sources")
        listed = args[i + 1]
        del args[i:i + 2]
        if os.path.exists(listed):
            production = [l.strip() for l in open(listed) if l.strip()]
    root = args[0] if args else here
    production = [os.path.relpath(p, root) for p in production]
    wrong = check(root, production)
    for w in wrong:
        print(w, file=sys.stderr)
    if wrong:
        print(f"check_layers: {len(wrong)} include(s) against the layers", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
