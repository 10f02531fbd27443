#!/usr/bin/env python3
"""One-command GPU check of the tasks/kernels suite (no ratchet binaries needed).

For every problem and workload: build inputs on the GPU (random per dtype, or the
problem's custom_inputs_entrypoint), run the PyTorch reference, compile the baseline
solution (default knobs) with nvcc into a shared library, call `ratchet_run_cuda`
through ctypes with the tensors' device pointers and the current stream, check the
result with the suite's rule (|o - r| <= atol + rtol*|r| for >= 99% of elements, no
NaN/Inf, not all-zero against a non-zero reference, inputs unchanged), and time both
with CUDA events (L2 flushed before each repetition, warm-ups, median).

    python3 tasks/kernels/gpu_check.py                 # whole suite, default knobs
    python3 tasks/kernels/gpu_check.py --problems rmsnorm_bf16,gemm_bf16
    python3 tasks/kernels/gpu_check.py --knobs gemm_bf16:VARIANT=2
    python3 tasks/kernels/gpu_check.py --sweep         # correctness of every knob choice
                                                      # (one at a time), no timing

Every problem runs in its own try/except: a failure prints a clear error in its row and
the check goes on. Exit status 0 only when every row is correct.
"""
import argparse
import concurrent.futures
import ctypes
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
INCLUDE = os.path.join(ROOT, "kernels", "include")

DTYPES = {
    "float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16,
    "float64": torch.float64, "int8": torch.int8, "uint8": torch.uint8, "int16": torch.int16,
    "int32": torch.int32, "int64": torch.int64, "bool": torch.bool,
}
if hasattr(torch, "float8_e4m3fn"):
    DTYPES["float8_e4m3fn"] = torch.float8_e4m3fn
    DTYPES["float8_e5m2"] = torch.float8_e5m2
# kernels/include/ratchet/kernel_abi.h: ratchet_dtype
ABI_DTYPE = {
    "float32": 0, "float16": 1, "bfloat16": 2, "float64": 3, "int8": 4, "int32": 5,
    "int64": 6, "bool": 7, "uint8": 8, "float8_e4m3fn": 9, "float8_e5m2": 10, "int16": 11,
}
FLOATS = ("float32", "float16", "bfloat16", "float64", "float8_e4m3fn", "float8_e5m2")


class RatchetTensor(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("dtype", ctypes.c_int), ("ndim", ctypes.c_int32),
                ("shape", ctypes.POINTER(ctypes.c_int64)),
                ("strides", ctypes.POINTER(ctypes.c_int64))]


class CheckError(Exception):
    pass


# ---------------------------------------------------------------- problem loading
def load_problem(folder):
    d = os.path.join(HERE, folder)
    with open(os.path.join(d, "definition.json")) as f:
        defn = json.load(f)
    workloads = []
    with open(os.path.join(d, "workload.jsonl")) as f:
        for line in f:
            line = line.strip()
            if line:
                w = json.loads(line)
                workloads.append(w.get("workload", w))
    with open(os.path.join(d, "baseline", "solution.json")) as f:
        sol = json.load(f)
    return d, defn, workloads, sol


def resolve_axes(defn, w):
    axes = {}
    for name, a in defn["axes"].items():
        if a["type"] == "const":
            axes[name] = int(a["value"])
        elif a["type"] == "var":
            if name not in w["axes"]:
                raise CheckError("workload %s binds no value for var axis %r" % (w["uuid"], name))
            axes[name] = int(w["axes"][name])
    for _ in range(len(defn["axes"])):  # expr axes may refer to each other
        for name, a in defn["axes"].items():
            if a["type"] == "expr" and name not in axes:
                try:
                    axes[name] = int(eval(a["expression"], {"__builtins__": {}}, dict(axes)))
                except NameError:
                    pass
    missing = [n for n in defn["axes"] if n not in axes]
    if missing:
        raise CheckError("cannot resolve axes %s" % missing)
    return axes


def eval_expr(expr, axes):
    return float(eval(expr, {"__builtins__": {}}, dict(axes)))


def shape_of(spec, axes):
    return None if spec["shape"] is None else [axes[a] if isinstance(a, str) else int(a)
                                               for a in spec["shape"]]


def random_tensor(shape, dtype_name, device):
    dt = DTYPES[dtype_name]
    if dtype_name in FLOATS:
        return torch.randn(shape, device=device, dtype=torch.float32).to(dt)
    if dtype_name == "bool":
        return torch.randint(0, 2, shape, device=device, dtype=torch.uint8).bool()
    if dtype_name == "int8":
        return torch.randint(-128, 128, shape, device=device, dtype=torch.int8)
    if dtype_name == "uint8":
        return torch.randint(0, 256, shape, device=device, dtype=torch.uint8)
    return torch.randint(0, 128, shape, device=device, dtype=dt)


def make_inputs(defn, ns, w, axes, device):
    """Returns (reference args, kernel tensors): scalars are Python values for the
    reference and 0-d device tensors for the kernel."""
    custom = {}
    srcs = w["inputs"]
    if any(srcs.get(n, {}).get("type") == "custom" for n in defn["inputs"]):
        ep = defn.get("custom_inputs_entrypoint")
        fn = ns.get(ep) if ep else None
        if fn is None:
            raise CheckError("workload uses custom inputs but the reference defines no "
                             "custom_inputs_entrypoint %r" % ep)
        a_s = dict(axes)
        for n, s in srcs.items():
            if s.get("type") == "scalar":
                a_s[n] = s["value"]
        custom = fn(a_s, torch.device(device))
    ref_args, kern = [], []
    for name, spec in defn["inputs"].items():
        src = srcs.get(name, {"type": "random"})
        shape = shape_of(spec, axes)
        dt = DTYPES.get(spec["dtype"])
        if dt is None:
            raise CheckError("dtype %s not supported by this torch %s" % (spec["dtype"],
                                                                          torch.__version__))
        kind = src.get("type")
        if kind == "custom":
            if name not in custom:
                raise CheckError("custom_inputs_entrypoint returned no %r" % name)
            v = custom[name]
        elif kind == "scalar":
            v = src["value"]
        elif kind == "random":
            v = (torch.rand(()).item() if shape is None else random_tensor(shape, spec["dtype"],
                                                                            device))
        else:
            raise CheckError("input type %r not supported by gpu_check" % kind)
        if shape is None:
            if isinstance(v, torch.Tensor):
                v = v.item()
            v = bool(v) if spec["dtype"] == "bool" else (
                float(v) if spec["dtype"] in FLOATS else int(v))
            ref_args.append(v)
            kern.append(torch.tensor(v, dtype=dt, device=device))
        else:
            if not isinstance(v, torch.Tensor):
                v = torch.tensor(v, dtype=dt)
            v = v.to(device=device, dtype=dt).contiguous()
            if list(v.shape) != shape:
                raise CheckError("input %r has shape %s, definition says %s"
                                 % (name, list(v.shape), shape))
            ref_args.append(v)
            kern.append(v)
    return ref_args, kern


def normalise_outputs(defn, result, axes):
    specs = list(defn["outputs"].items())
    if isinstance(result, dict):
        result = [result[n] for n, _ in specs]
    elif not isinstance(result, (list, tuple)):
        result = [result]
    if len(result) != len(specs):
        raise CheckError("reference returned %d outputs, definition has %d"
                         % (len(result), len(specs)))
    outs = []
    for (name, spec), r in zip(specs, result):
        shape = shape_of(spec, axes) or []
        if not isinstance(r, torch.Tensor):
            r = torch.tensor(r)
        r = r.to(DTYPES[spec["dtype"]]).contiguous()
        if list(r.shape) != shape:
            raise CheckError("reference output %r has shape %s, definition says %s"
                             % (name, list(r.shape), shape))
        outs.append(r)
    return outs


# ---------------------------------------------------------------- build and call
def gpu_arch():
    major, minor = torch.cuda.get_device_capability()
    if (major, minor) in ((9, 0), (10, 0)):
        return "sm_%d%da" % (major, minor)
    return "sm_%d%d" % (major, minor)


def find_nvcc():
    for c in (os.environ.get("NVCC"), "/usr/local/cuda/bin/nvcc", shutil.which("nvcc")):
        if c and os.path.exists(c):
            return c
    raise CheckError("nvcc not found (set NVCC=...)")


_BUILD_DIR = tempfile.mkdtemp(prefix="ratchet-gpu-check-")


def compile_solution(prob_dir, sol, knobs, arch):
    """Compiles baseline/ with the given knob values; returns the .so path."""
    srcs = [os.path.join(prob_dir, "baseline", s) for s in sol["sources"]]
    flags = ["-D%s=%s" % (k, v) for k, v in sorted(knobs.items())]
    libs = ["-l" + l for l in sol.get("libraries", [])]
    key = hashlib.sha1(("|".join(srcs + flags + [arch])).encode()).hexdigest()[:16]
    out = os.path.join(_BUILD_DIR, "%s-%s.so" % (os.path.basename(prob_dir), key))
    if os.path.exists(out):
        return out
    cmd = [find_nvcc(), "-O3", "-std=c++17", "-shared", "-Xcompiler", "-fPIC",
           "-gencode=arch=compute_%s,code=%s" % (arch[3:], arch), "-I" + INCLUDE] + flags + \
        srcs + ["-o", out] + libs
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise CheckError("compile failed (%s):\n%s" % (" ".join(flags), (p.stdout + p.stderr)[-3000:]))
    return out


class Kernel:
    def __init__(self, so_path):
        self.lib = ctypes.CDLL(so_path)
        self.fn = self.lib.ratchet_run_cuda
        self.fn.restype = ctypes.c_int
        self.fn.argtypes = [ctypes.POINTER(RatchetTensor), ctypes.c_int32,
                            ctypes.POINTER(RatchetTensor), ctypes.c_int32, ctypes.c_void_p]

    @staticmethod
    def _pack(tensors, names, keep):
        arr = (RatchetTensor * max(1, len(tensors)))()
        for i, (t, dname) in enumerate(zip(tensors, names)):
            shape = (ctypes.c_int64 * max(1, t.dim()))(*t.shape)
            strides = (ctypes.c_int64 * max(1, t.dim()))(*t.stride())
            keep += [shape, strides]  # the structs hold raw pointers into these
            arr[i] = RatchetTensor(t.data_ptr(), ABI_DTYPE[dname], t.dim(),
                                   ctypes.cast(shape, ctypes.POINTER(ctypes.c_int64)),
                                   ctypes.cast(strides, ctypes.POINTER(ctypes.c_int64)))
        return arr

    def bind(self, ins, in_dtypes, outs, out_dtypes):
        """Returns a no-argument callable that runs the kernel on the current stream."""
        keep = [ins, outs]  # tensors and shape arrays live as long as the closure
        a_in = self._pack(ins, in_dtypes, keep)
        a_out = self._pack(outs, out_dtypes, keep)
        n_in, n_out = len(ins), len(outs)

        def call():
            assert keep
            stream = torch.cuda.current_stream().cuda_stream
            rc = self.fn(a_in, n_in, a_out, n_out, ctypes.c_void_p(stream))
            if rc != 0:
                raise CheckError("ratchet_run_cuda returned %d" % rc)
        return call


def poison_like(ref, dtype_name):
    if dtype_name in FLOATS:
        return torch.full(ref.shape, float("nan"), dtype=torch.float32,
                          device="cuda").to(DTYPES[dtype_name])
    if dtype_name == "bool":
        return torch.zeros(ref.shape, dtype=torch.bool, device="cuda")
    return torch.full(ref.shape, -7, dtype=DTYPES[dtype_name], device="cuda")


def compare(out, ref, atol, rtol):
    """Returns (ok, matched fraction, max abs error, message)."""
    o = out.float().double()  # via float32: fp8 casts straight to float64 may be missing
    r = ref.to(device=out.device).float().double()
    if o.numel() == 0:
        return True, 1.0, 0.0, ""
    if not torch.isfinite(o).all():
        return False, 0.0, float("inf"), "NaN/Inf in output (%d elements)" % int(
            (~torch.isfinite(o)).sum())
    err = (o - r).abs()
    ok = err <= atol + rtol * r.abs()
    frac = float(ok.double().mean())
    max_err = float(err.max())
    if bool((o == 0).all()) and not bool((r == 0).all()):
        return False, frac, max_err, "all-zero output against a non-zero reference"
    if frac < 0.99:
        bad = int((~ok).flatten().nonzero()[0])
        return False, frac, max_err, "only %.4f of elements match (first bad #%d: %g vs %g)" % (
            frac, bad, float(o.flatten()[bad]), float(r.flatten()[bad]))
    return True, frac, max_err, ""


# ---------------------------------------------------------------- timing
_FLUSH = None


def l2_flush():
    global _FLUSH
    if _FLUSH is None:
        l2 = getattr(torch.cuda.get_device_properties(0), "L2_cache_size", 50 << 20) or (50 << 20)
        _FLUSH = torch.empty(2 * l2, dtype=torch.uint8, device="cuda")
    _FLUSH.zero_()


def time_cuda(fn, warmups, reps):
    """Median milliseconds of fn() between CUDA events, L2 flushed before each rep."""
    for _ in range(warmups):
        l2_flush()
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        l2_flush()
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


# ---------------------------------------------------------------- driver
def workload_bytes(defn, axes):
    ext = defn.get("ratchet") or {}
    if ext.get("bytes"):
        return eval_expr(ext["bytes"], axes)
    size = {"float64": 8, "int64": 8, "float32": 4, "int32": 4, "float16": 2, "bfloat16": 2,
            "int16": 2}
    total = 0.0
    for spec in list(defn["inputs"].values()) + list(defn["outputs"].values()):
        n = 1
        for d in shape_of(spec, axes) or []:
            n *= d
        total += n * size.get(spec["dtype"], 1)
    return total


def check_workload(defn, ns, w, kernel, args, rounds, time_it):
    """Runs one workload; returns a row dict."""
    axes = resolve_axes(defn, w)
    label = ",".join("%s=%s" % (k, v) for k, v in w["axes"].items())
    tol = w.get("tolerance") or defn.get("tolerance") or {}
    atol = float(tol.get("atol", 1e-2) if tol.get("atol") is not None else 1e-2)
    rtol = float(tol.get("rtol", 1e-2) if tol.get("rtol") is not None else 1e-2)
    in_dt = [s["dtype"] for s in defn["inputs"].values()]
    out_dt = [s["dtype"] for s in defn["outputs"].values()]
    row = {"workload": label, "correct": False, "ref_us": None, "base_us": None, "msg": "",
           "bytes": workload_bytes(defn, axes)}
    ref_fn = ns["run"]
    worst = ""
    for r in range(rounds):
        torch.manual_seed(1000 + r)
        ref_args, kern_in = make_inputs(defn, ns, w, axes, "cuda")
        with torch.no_grad():
            ref_out = normalise_outputs(
                defn, ref_fn(*[a.clone() if isinstance(a, torch.Tensor) else a
                               for a in ref_args]), axes)
        before = [t.clone() for t in kern_in]
        outs = [poison_like(ro, d) for ro, d in zip(ref_out, out_dt)]
        call = kernel.bind(kern_in, in_dt, outs, out_dt)
        call()
        torch.cuda.synchronize()
        for i, (b, t) in enumerate(zip(before, kern_in)):
            if not torch.equal(b, t):
                raise CheckError("the kernel modified input %d" % i)
        for name, o, ro in zip(defn["outputs"], outs, ref_out):
            ok, frac, max_err, msg = compare(o, ro, atol, rtol)
            if not ok:
                row["msg"] = "round %d output %s: %s" % (r, name, msg)
                return row
            worst = "max|err| %.3g" % max_err
        if r == 0 and time_it:
            fresh = [a.clone() if isinstance(a, torch.Tensor) else a for a in ref_args]
            with torch.no_grad():
                row["ref_us"] = 1e3 * time_cuda(lambda: ref_fn(*fresh), args.warmups, args.reps)
            row["base_us"] = 1e3 * time_cuda(call, args.warmups, args.reps)
            # An independent measurement for the harness-agreement benchmark:
            # Triton's do_bench (its own L2 clearing, events, median).
            try:
                import triton.testing
                row["base_us_do_bench"] = 1e3 * triton.testing.do_bench(
                    call, warmup=25, rep=100, return_mode="median")
            except Exception as e:  # noqa: BLE001 - Triton is optional here
                row["do_bench_error"] = one_line(e)
        del ref_args, kern_in, ref_out, outs, before
    row["correct"] = True
    row["msg"] = worst
    return row


def knob_defaults(sol):
    return {k: v["default"] for k, v in sol.get("knobs", {}).items()}


def run_problem(folder, args, knob_overrides, arch, rows):
    try:
        prob_dir, defn, workloads, sol = load_problem(folder)
        knobs = knob_defaults(sol)
        knobs.update(knob_overrides.get(folder, {}))
        ns = {"__name__": "reference"}
        exec(compile(defn["reference"], folder + "/definition.json:reference", "exec"), ns)
        kernel = Kernel(compile_solution(prob_dir, sol, knobs, arch))
    except Exception as e:  # noqa: BLE001 - one clear row per failing problem
        rows.append({"problem": folder, "workload": "-", "correct": False, "ref_us": None,
                     "base_us": None, "bytes": 0, "msg": one_line(e)})
        return
    for w in workloads[: args.max_workloads or None]:
        try:
            row = check_workload(defn, ns, w, kernel, args, args.rounds, True)
        except Exception as e:  # noqa: BLE001
            row = {"workload": ",".join("%s=%s" % kv for kv in w.get("axes", {}).items()),
                   "correct": False, "ref_us": None, "base_us": None, "bytes": 0,
                   "msg": one_line(e)}
            if args.verbose:
                traceback.print_exc()
        row["problem"] = folder
        rows.append(row)
        print_row(row, flush=True)
        torch.cuda.synchronize()
        torch.cuda.empty_cache()


def one_line(e):
    s = "%s: %s" % (type(e).__name__, e)
    return s.replace("\n", " | ")[:400]


def fmt_us(v):
    return "-" if v is None else ("%.1f" % v if v < 1e4 else "%.0f" % v)


HEADER = "%-22s %-26s %-7s %10s %10s %8s %9s  %s" % (
    "problem", "workload", "correct", "ref_us", "base_us", "base/ref", "base_GB/s", "note")


def print_row(r, flush=False):
    ratio = "-"
    gbs = "-"
    if r.get("ref_us") and r.get("base_us"):
        ratio = "%.2fx" % (r["base_us"] / r["ref_us"])
    if r.get("base_us") and r.get("bytes"):
        gbs = "%.0f" % (r["bytes"] / (r["base_us"] * 1e-6) / 1e9)
    print("%-22s %-26s %-7s %10s %10s %8s %9s  %s" % (
        r["problem"][:22], r["workload"][:26], "yes" if r["correct"] else "NO",
        fmt_us(r.get("ref_us")), fmt_us(r.get("base_us")), ratio, gbs, r.get("msg", "")),
        flush=flush)


def sweep(folders, args, arch):
    """Correctness (1 round, every workload) of each knob choice, one knob at a time."""
    jobs = []
    for folder in folders:
        prob_dir, defn, workloads, sol = load_problem(folder)
        base = knob_defaults(sol)
        combos = [dict(base)]
        for k, v in sol.get("knobs", {}).items():
            for c in v["choices"]:
                if c != v["default"]:
                    combos.append(dict(base, **{k: c}))
        for c in combos:
            jobs.append((folder, prob_dir, defn, workloads, sol, c))
    print("sweep: %d knob combinations, compiling in parallel ..." % len(jobs), flush=True)
    with concurrent.futures.ThreadPoolExecutor(max(1, (os.cpu_count() or 4) - 1)) as ex:
        futs = [ex.submit(compile_solution, j[1], j[4], j[5], arch) for j in jobs]
        built = []
        for f in futs:
            try:
                built.append((f.result(), None))
            except Exception as e:  # noqa: BLE001
                built.append((None, one_line(e)))
    bad = 0
    for (folder, prob_dir, defn, workloads, sol, knobs), (so, err) in zip(jobs, built):
        label = " ".join("%s=%s" % kv for kv in sorted(knobs.items()))
        if err:
            print("%-22s %-50s COMPILE FAILED %s" % (folder, label, err))
            bad += 1
            continue
        try:
            ns = {"__name__": "reference"}
            exec(compile(defn["reference"], "reference", "exec"), ns)
            kernel = Kernel(so)
            fails = []
            for w in workloads[: args.max_workloads or None]:
                row = check_workload(defn, ns, w, kernel, args, 1, False)
                if not row["correct"]:
                    fails.append("%s: %s" % (row["workload"], row["msg"]))
                torch.cuda.empty_cache()
            status = "ok" if not fails else "WRONG " + " ; ".join(fails)
        except Exception as e:  # noqa: BLE001
            status = "ERROR " + one_line(e)
        if status != "ok":
            bad += 1
        print("%-22s %-50s %s" % (folder, label, status), flush=True)
    print("sweep: %d/%d combinations correct" % (len(jobs) - bad, len(jobs)))
    return bad == 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--problems", default="", help="comma-separated folders (default: all)")
    ap.add_argument("--knobs", action="append", default=[],
                    help="FOLDER:NAME=VALUE[,NAME=VALUE] knob overrides (repeatable)")
    ap.add_argument("--rounds", type=int, default=2, help="correctness rounds per workload")
    ap.add_argument("--warmups", type=int, default=5)
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--max-workloads", type=int, default=0, help="0 = all")
    ap.add_argument("--sweep", action="store_true",
                    help="check every knob choice (one at a time) for correctness instead")
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--json", default="", help="also write the rows to this file")
    args = ap.parse_args()

    if not torch.cuda.is_available():
        print("gpu_check: no CUDA device visible to torch %s" % torch.__version__)
        return 2
    folders = sorted(d for d in os.listdir(HERE)
                     if os.path.isfile(os.path.join(HERE, d, "definition.json")))
    if args.problems:
        want = [p.strip() for p in args.problems.split(",") if p.strip()]
        unknown = [p for p in want if p not in folders]
        if unknown:
            print("gpu_check: unknown problems %s (have %s)" % (unknown, folders))
            return 2
        folders = want
    overrides = {}
    for spec in args.knobs:
        folder, _, kv = spec.partition(":")
        for item in kv.split(","):
            k, _, v = item.partition("=")
            overrides.setdefault(folder, {})[k] = v
    arch = gpu_arch()
    props = torch.cuda.get_device_properties(0)
    print("gpu_check: %s (%s, %d SMs), torch %s, CUDA %s, nvcc %s, build dir %s" % (
        props.name, arch, props.multi_processor_count, torch.__version__, torch.version.cuda,
        find_nvcc(), _BUILD_DIR), flush=True)
    t0 = time.time()
    if args.sweep:
        ok = sweep(folders, args, arch)
        print("gpu_check: sweep done in %.0f s" % (time.time() - t0))
        return 0 if ok else 1
    rows = []
    print(HEADER, flush=True)
    for folder in folders:
        n = len(rows)
        run_problem(folder, args, overrides, arch, rows)
        if len(rows) > n and rows[-1]["workload"] == "-":
            print_row(rows[-1], flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"gpu": props.name, "rows": rows}, f, indent=1, default=str)
    print("\n==== summary (%s, %.0f s) ====" % (props.name, time.time() - t0))
    print(HEADER)
    for r in rows:
        print_row(r)
    good = sum(1 for r in rows if r["correct"])
    print("gpu_check: %d/%d workloads correct over %d problems" % (good, len(rows), len(folders)))
    return 0 if good == len(rows) and rows else 1


if __name__ == "__main__":
    sys.exit(main())
