#!/usr/bin/env python3
"""ratchet reference oracle: one process per harness run.

Reads a request JSON (written by ratchet-harness), and for every workload and
round generates inputs from the seed, runs the definition's PyTorch reference
`run(...)`, writes inputs and reference outputs as raw little-endian files,
and times the reference (T_b) the way the harness times a candidate: warm-ups,
then repetitions each preceded by cloning the inputs to fresh addresses and
then writing a buffer of 2x the last-level cache; median and (p90-p10)/median.

On a GPU (request "device": "cuda", "device_index": i) inputs are generated
on that GPU from the seed and the reference runs there; T_b is measured with
CUDA events around each call (L2 flushed by zeroing a buffer of 2x the L2
size, inputs at fresh addresses, >= 10 warm-ups, >= 50 repetitions, median),
for eager PyTorch ("t_b_eager_ns") and torch.compile ("t_b_compile_ns", 0 when
it fails or takes longer than "compile_timeout_s", default 120); "t_b_ns" is
the smaller. "t_ref_kernel_ns" is the reference's own GPU time: one call
captured in a CUDA graph and replayed (fallback: the span of its kernels in
torch.profiler), so that a candidate's win over launch overhead is visible.
Measured T_b are cached as JSON files in "cache_dir" (when given), keyed on
the definition, the workload, the GPU model, torch and CUDA versions.

Optional request fields (CPU and GPU):
  "round_specs": [{}, {}, {"perturb_of": 0}, ...]  one entry per round, and/or
  "extra_rounds": [{"perturb_of": 0}]  rounds appended after "rounds". A round
      with "perturb_of": r gets round r's inputs with exactly one element
      changed (the A/B/A' guard against output caching: a candidate that
      returns round r's outputs for this round fails correctness). The
      manifest's round entry then says which input and element changed.
  "rounds_by_workload": [n0, n1, ...]  per workload (request order), at most
      "rounds": how many of the ordinary rounds it gets (the harness's round
      budget gives large workloads fewer); extra rounds are not allowed with it.
  "time_reference": false  skips measuring T_b (flops are still counted): the
      manifest's "t_b_ns" is 0. The harness's screen (docs/harness.md, "The
      screen") asks for one round of one workload this way, only to check a
      candidate's answer before the full oracle runs.
Per workload the manifest also holds "flops" (counted by
torch.utils.flop_counter.FlopCounterMode on torch >= 2.1: matmul-like ops
only; absent when torch cannot count).

Usage: oracle.py REQUEST.json
Exit status: 0 manifest written; 3 torch cannot be imported (the harness then
tries another interpreter); 1 the reference or its inputs failed (the manifest
holds "error").
"""
import hashlib
import json
import os
import signal
import struct
import sys
import time
import types
import traceback

try:
    import torch
except Exception as e:  # noqa: BLE001 - any import failure means "not this python"
    sys.stderr.write("oracle: cannot import torch with %s: %s\n" % (sys.executable, e))
    sys.exit(3)

DTYPES = {
    "float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16,
    "float64": torch.float64, "int8": torch.int8, "uint8": torch.uint8,
    "int32": torch.int32, "int64": torch.int64, "bool": torch.bool,
}
DTYPES["int16"] = torch.int16
for _name in ("float8_e4m3fn", "float8_e5m2"):
    if hasattr(torch, _name):  # torch >= 2.1
        DTYPES[_name] = getattr(torch, _name)
FLOAT8 = tuple(getattr(torch, n) for n in ("float8_e4m3fn", "float8_e5m2") if hasattr(torch, n))

SAFETENSORS_DTYPES = {
    "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64,
    "I8": torch.int8, "U8": torch.uint8, "I32": torch.int32, "I64": torch.int64,
    "BOOL": torch.bool, "I16": torch.int16,
}


class OracleError(Exception):
    pass


def is_float(dt):
    return dt in (torch.float32, torch.float16, torch.bfloat16, torch.float64) + FLOAT8


# Where inputs are made and the reference runs: the CPU, or the request's GPU.
DEVICE = torch.device("cpu")


def random_tensor(shape, dt):
    # Sensible ranges: N(0,1) for floats, full range for 8-bit ints, small
    # non-negative values for wider ints (often sizes or indices).
    if is_float(dt):
        return torch.randn(shape, dtype=torch.float32, device=DEVICE).to(dt)
    if dt == torch.bool:
        return torch.randint(0, 2, shape, dtype=torch.uint8, device=DEVICE).bool()
    if dt == torch.int8:
        return torch.randint(-128, 128, shape, dtype=torch.int8, device=DEVICE)
    if dt == torch.uint8:
        return torch.randint(0, 256, shape, dtype=torch.uint8, device=DEVICE)
    return torch.randint(0, 128, shape, dtype=dt, device=DEVICE)


def python_scalar(value, dt):
    if dt == torch.bool:
        return bool(value)
    if is_float(dt):
        return float(value)
    return int(value)


_safetensors_cache = {}


def load_safetensors(path, key):
    if path not in _safetensors_cache:
        try:
            with open(path, "rb") as f:
                n = struct.unpack("<Q", f.read(8))[0]
                header = json.loads(f.read(n))
                data = f.read()
        except OSError as e:
            raise OracleError("safetensors file %s: %s" % (path, e))
        _safetensors_cache[path] = (header, data)
    header, data = _safetensors_cache[path]
    if key not in header:
        raise OracleError("safetensors file %s has no tensor_key %r (has %s)"
                          % (path, key, sorted(k for k in header if k != "__metadata__")))
    meta = header[key]
    dt = SAFETENSORS_DTYPES.get(meta["dtype"])
    if dt is None:
        raise OracleError("safetensors %s[%s]: unsupported dtype %s" % (path, key, meta["dtype"]))
    start, end = meta["data_offsets"]
    buf = bytearray(data[start:end])
    t = torch.frombuffer(buf, dtype=dt) if len(buf) else torch.empty(0, dtype=dt)
    return t.reshape(meta["shape"]).clone()


def make_inputs(req, ns, w):
    """Inputs for one round, in definition order (tensors or Python scalars)."""
    specs = req["input_specs"]
    custom = {}
    if any(src["kind"] == "custom" for src in w["inputs"]):
        fn = ns.get(req["entrypoint"])
        if fn is None:
            raise OracleError("reference defines no custom_inputs_entrypoint %r" % req["entrypoint"])
        axes_and_scalars = dict(w["axes"])
        for spec, src in zip(specs, w["inputs"]):
            if src["kind"] == "scalar":
                axes_and_scalars[spec["name"]] = python_scalar(src["value"], DTYPES[spec["dtype"]])
        custom = fn(axes_and_scalars, DEVICE)
        if not isinstance(custom, dict):
            raise OracleError("custom_inputs_entrypoint %s returned %s, not a dict"
                              % (req["entrypoint"], type(custom).__name__))
    args = []
    for spec, src in zip(specs, w["inputs"]):
        dt = DTYPES[spec["dtype"]]
        shape = src["shape"]
        name = spec["name"]
        kind = src["kind"]
        if kind == "custom" or (name in custom and kind != "scalar"):
            if name not in custom:
                raise OracleError("custom_inputs_entrypoint did not return input %r" % name)
            v = custom[name]
        elif kind == "scalar":
            v = python_scalar(src["value"], dt) if spec["scalar"] else torch.full(
                shape, src["value"], dtype=dt, device=DEVICE)
        elif kind == "safetensors":
            v = load_safetensors(src["path"], src["tensor_key"]).to(DEVICE)
        else:
            if spec["scalar"]:
                v = python_scalar(torch.rand(()).item() if is_float(dt) else torch.randint(1, 8, ()).item(), dt)
            else:
                v = random_tensor(shape, dt)
        if spec["scalar"]:
            if isinstance(v, torch.Tensor):
                v = python_scalar(v.item(), dt)
        else:
            if not isinstance(v, torch.Tensor):
                v = torch.tensor(v, dtype=dt)
            if v.dtype != dt:
                v = v.to(dt)
            if list(v.shape) != list(shape):
                raise OracleError("input %r has shape %s, definition says %s"
                                  % (name, list(v.shape), shape))
            v = v.to(DEVICE).contiguous()
        args.append(v)
    return args


def normalise_outputs(req, result, w):
    specs = req["output_specs"]
    if isinstance(result, dict):
        result = [result[s["name"]] for s in specs]
    elif not isinstance(result, (tuple, list)):
        result = [result]
    if len(result) != len(specs):
        raise OracleError("reference run() returned %d outputs, definition has %d"
                          % (len(result), len(specs)))
    outs = []
    for spec, shape, v in zip(specs, w["output_shapes"], result):
        dt = DTYPES[spec["dtype"]]
        if not isinstance(v, torch.Tensor):
            v = torch.tensor(v, dtype=dt)
        v = v.detach().to(dt).contiguous()
        if list(v.shape) != list(shape):
            if v.numel() == 1 and int(torch.tensor(shape).prod().item() if shape else 1) == 1:
                v = v.reshape(shape)
            else:
                raise OracleError("reference output %r has shape %s, definition says %s"
                                  % (spec["name"], list(v.shape), shape))
        outs.append(v)
    return outs


def to_bytes(v, dt_name):
    dt = DTYPES[dt_name]
    if not isinstance(v, torch.Tensor):
        v = torch.tensor(v, dtype=dt)
    v = v.detach().to(dt).contiguous().cpu()
    if dt == torch.bfloat16:
        v = v.view(torch.int16)
    elif dt in FLOAT8:
        v = v.view(torch.uint8)
    elif dt == torch.bool:
        v = v.to(torch.uint8)
    return v.numpy().tobytes()


def time_reference(req, run, args):
    flush = torch.empty(int(req["flush_bytes"]), dtype=torch.uint8)
    samples = []
    keep = [None, None]  # Previous clones stay alive so each rep gets new addresses.
    total = int(req["warmups"]) + int(req["repetitions"])
    with torch.no_grad():
        for rep in range(total):
            fresh = [a.clone() if isinstance(a, torch.Tensor) else a for a in args]
            keep[rep % 2] = fresh
            flush.fill_(rep & 0xFF)  # After the clone: inputs start cold, as in the harness.
            t0 = time.perf_counter_ns()
            run(*fresh)
            t1 = time.perf_counter_ns()
            if rep >= int(req["warmups"]):
                samples.append(t1 - t0)
    samples.sort()
    n = len(samples)
    if n == 0:
        return 0.0, 0.0
    med = samples[n // 2] if n % 2 else 0.5 * (samples[n // 2 - 1] + samples[n // 2])
    p10 = samples[int(0.1 * (n - 1))]
    p90 = samples[int(round(0.9 * (n - 1)))]
    return float(med), float((p90 - p10) / med) if med > 0 else 0.0


def summarize(samples):
    """Median and (p90-p10)/median of a list of nanosecond samples."""
    samples = sorted(samples)
    n = len(samples)
    if n == 0:
        return 0.0, 0.0
    med = samples[n // 2] if n % 2 else 0.5 * (samples[n // 2 - 1] + samples[n // 2])
    p10 = samples[int(0.1 * (n - 1))]
    p90 = samples[int(round(0.9 * (n - 1)))]
    return float(med), float((p90 - p10) / med) if med > 0 else 0.0


def perturb(args, seed):
    """Changes exactly one element of one input tensor, in place on a copy.

    Floating inputs first (one element + 1, or doubled plus one where + 1
    rounds away); otherwise two differing elements of an integer input swap,
    which keeps the set of values (indices stay in range). Returns (args,
    {"input": i, "index": flat}) or (args, None) when nothing can change.
    """
    args = [a.clone() if isinstance(a, torch.Tensor) else a for a in args]
    tensors = [i for i, a in enumerate(args) if isinstance(a, torch.Tensor) and a.numel() > 0]
    floats = [i for i in tensors if is_float(args[i].dtype)]
    for i in floats + [i for i in tensors if i not in floats]:
        dt = args[i].dtype
        n = args[i].numel()
        k = (seed * 2654435761) % n
        if is_float(dt):
            # Through float64, where every float dtype round-trips exactly (and
            # element assignment works for fp8 too).
            work = args[i].to(torch.float64).reshape(-1)
            old = work[k].item()
            for new in (old + 1.0, old * 2.0 + 1.0, -old - 1.0):
                cand = torch.tensor([new], dtype=torch.float64).to(dt).to(torch.float64).item()
                if cand != old and cand == cand and abs(cand) != float("inf"):
                    work[k] = cand
                    args[i] = work.to(dt).reshape(args[i].shape).contiguous()
                    return args, {"input": i, "index": int(k)}
            continue
        flat = args[i].view(-1)
        others = (flat != flat[k]).nonzero()
        if others.numel() == 0:
            continue
        j = int(others[0].item())
        a, b = flat[k].clone(), flat[j].clone()
        flat[k], flat[j] = b, a
        return args, {"input": i, "index": int(k), "swapped_with": j}
    return args, None


def count_flops(run, args):
    """Flops of one call by FlopCounterMode (torch >= 2.1), else None."""
    try:
        from torch.utils.flop_counter import FlopCounterMode
    except Exception:  # noqa: BLE001 - older torch: no count
        return None
    try:
        fresh = [a.clone() if isinstance(a, torch.Tensor) else a for a in args]
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            run(*fresh)
        return int(counter.get_total_flops())
    except Exception:  # noqa: BLE001 - an op the counter cannot trace: no count
        return None


class CompileTimeout(Exception):
    pass


def _on_alarm(signum, frame):
    raise CompileTimeout()


def cuda_time(call, args, warmups, reps, flush):
    """CUDA-event time of call(*fresh_args) per repetition, in ns.

    Before each repetition: inputs cloned to fresh addresses (the previous
    clones stay alive, so the allocator cannot hand back the same ones) and
    the L2 flushed by zeroing `flush`; the device is idle when the clock starts.
    """
    start = torch.cuda.Event(enable_timing=True)
    end = torch.cuda.Event(enable_timing=True)
    keep = [None, None]
    samples = []
    with torch.no_grad():
        for rep in range(warmups + reps):
            fresh = [a.clone() if isinstance(a, torch.Tensor) else a for a in args]
            keep[rep % 2] = fresh
            flush.zero_()
            torch.cuda.synchronize()
            start.record()
            call(*fresh)
            end.record()
            torch.cuda.synchronize()
            if rep >= warmups:
                samples.append(start.elapsed_time(end) * 1e6)
    return samples


def outputs_close(a, b):
    try:
        for x, y in zip(a, b):
            if not torch.allclose(x.float(), y.float(), atol=1e-2, rtol=1e-2, equal_nan=False):
                return False
        return True
    except Exception:  # noqa: BLE001
        return False


def graph_kernel_time(run, args, reps, flush, notes):
    """The reference's own GPU time: one call captured in a CUDA graph and
    replayed (no Python or launch overhead), median over `reps`. Falls back
    to the first-to-last kernel span of one profiled call."""
    static = [a.clone() if isinstance(a, torch.Tensor) else a for a in args]
    # A reference that syncs with the host cannot be captured, and a capture
    # that fails midway leaves the CUDA RNG in capture mode, breaking every
    # later input generation: detect the sync first, in eager mode.
    if host_syncs(run, static):
        notes.append("the reference synchronises with the host; kernel span from torch.profiler")
    else:
        t = captured_time(run, static, reps, flush, notes)
        if t is not None:
            return t
    return profiled_span(run, args, flush, notes)


def host_syncs(run, args):
    """True when one eager call of `run` makes PyTorch synchronise with the host."""
    previous = torch.cuda.get_sync_debug_mode()
    try:
        torch.cuda.set_sync_debug_mode("error")
        with torch.no_grad():
            run(*[a.clone() if isinstance(a, torch.Tensor) else a for a in args])
        return False
    except RuntimeError:
        return True
    finally:
        torch.cuda.set_sync_debug_mode(previous)
        torch.cuda.synchronize()


def captured_time(run, static, reps, flush, notes):
    """Median replay time (ns) of one call captured in a CUDA graph, or None."""
    try:
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.no_grad():
            with torch.cuda.stream(side):  # warm-up off the capture, as CUDA graphs need
                for _ in range(3):
                    run(*static)
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                run(*static)
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        samples = []
        for rep in range(3 + reps):
            flush.zero_()
            torch.cuda.synchronize()
            start.record()
            graph.replay()
            end.record()
            torch.cuda.synchronize()
            if rep >= 3:
                samples.append(start.elapsed_time(end) * 1e6)
        del graph
        return summarize(samples)[0]
    except Exception as e:  # noqa: BLE001 - not capturable (CPU ops, ...)
        torch.cuda.synchronize()
        notes.append("CUDA graph capture failed (%s: %s); kernel span from torch.profiler"
                     % (type(e).__name__, str(e).splitlines()[0][:200] if str(e) else ""))
        return None


def profiled_span(run, args, flush, notes):
    """First-to-last kernel span (ns) of a profiled call, median of five."""
    try:
        from torch.profiler import ProfilerActivity, profile
        spans = []
        with torch.no_grad():
            for _ in range(5):
                fresh = [a.clone() if isinstance(a, torch.Tensor) else a for a in args]
                flush.zero_()
                torch.cuda.synchronize()
                with profile(activities=[ProfilerActivity.CUDA]) as prof:
                    run(*fresh)
                    torch.cuda.synchronize()
                ks = [e for e in prof.events()
                      if e.device_type == torch.autograd.DeviceType.CUDA]
                if ks:
                    t0 = min(e.time_range.start for e in ks)
                    t1 = max(e.time_range.end for e in ks)
                    spans.append((t1 - t0) * 1e3)  # us -> ns
        return summarize(spans)[0]
    except Exception as e:  # noqa: BLE001
        notes.append("profiler fallback failed: %s" % e)
        return 0.0


def definition_hash(req):
    d = {k: req.get(k) for k in ("reference", "entrypoint", "input_specs", "output_specs")}
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()


def workload_key(w):
    if w.get("uuid"):
        return str(w["uuid"])
    # No uuid: the workload's content, without per-job paths.
    ins = [{k: (os.path.basename(v) if k == "path" and v else v) for k, v in src.items()}
           for src in w.get("inputs", [])]
    d = {"axes": w.get("axes"), "inputs": ins, "output_shapes": w.get("output_shapes")}
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()


# Part of the T_b cache key: bump it when how T_b is measured changes (v2: the
# reference runs from a real module, so torch.compile works on it).
TIMING_METHOD = "cuda-events-l2flush-fresh-v2"


def cache_path(req, w, gpu_name):
    cache_dir = req.get("cache_dir")
    if not cache_dir:
        return None, None
    key = {"definition": definition_hash(req), "workload": workload_key(w), "gpu": gpu_name,
           "torch": torch.__version__, "cuda": torch.version.cuda, "method": TIMING_METHOD,
           "compile": bool(req.get("compile", True))}
    name = "tb-%s-%s.json" % (key["definition"][:16],
                              hashlib.sha256(json.dumps(key, sort_keys=True).encode())
                              .hexdigest()[:24])
    return os.path.join(cache_dir, name), key


TB_FIELDS = ("t_b_ns", "t_b_spread", "t_b_eager_ns", "t_b_compile_ns", "t_ref_kernel_ns")


def cache_load(path, key):
    try:
        with open(path) as f:
            doc = json.load(f)
        if doc.get("key") != key:
            return None
        vals = {k: float(doc[k]) for k in TB_FIELDS}
        if not vals["t_b_ns"] > 0 or any(v < 0 for v in vals.values()):
            return None
        vals["notes"] = [str(n) for n in doc.get("notes", [])]
        return vals
    except Exception:  # noqa: BLE001 - absent or unreadable: a miss
        return None


def cache_store(path, key, entry):
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        doc = {k: entry[k] for k in TB_FIELDS}
        doc["notes"] = entry.get("notes", [])
        doc["key"] = key
        tmp = "%s.%d.tmp" % (path, os.getpid())
        with open(tmp, "w") as f:
            json.dump(doc, f)
        os.replace(tmp, path)
    except OSError as e:
        sys.stderr.write("oracle: cannot write T_b cache %s: %s\n" % (path, e))


def time_reference_cuda(req, run, args, w, flush, gpu_name):
    """T_b on the GPU: eager and torch.compile, and the reference's own kernel
    time, or the cached figures for this (definition, workload, GPU, versions)."""
    path, key = cache_path(req, w, gpu_name)
    if path:
        hit = cache_load(path, key)
        if hit is not None:
            hit["cached"] = True
            return hit
    warmups = max(int(req["warmups"]), 10)
    reps = max(int(req["repetitions"]), 50)
    notes = []
    eager = cuda_time(run, args, warmups, reps, flush)
    t_eager, spread_eager = summarize(eager)
    t_compile, spread_compile = 0.0, 0.0
    if req.get("compile", True) and hasattr(torch, "compile"):
        budget = float(req.get("compile_timeout_s", 120))
        compiled = torch.compile(run)
        ok = False
        old = signal.signal(signal.SIGALRM, _on_alarm)
        signal.setitimer(signal.ITIMER_REAL, budget)
        try:
            with torch.no_grad():
                fresh = [a.clone() if isinstance(a, torch.Tensor) else a for a in args]
                got = normalise_outputs(req, compiled(*fresh), w)
                fresh = [a.clone() if isinstance(a, torch.Tensor) else a for a in args]
                want = normalise_outputs(req, run(*fresh), w)
            torch.cuda.synchronize()
            ok = True
        except CompileTimeout:
            notes.append("torch.compile took longer than %gs; T_b is eager only" % budget)
        except Exception as e:  # noqa: BLE001
            notes.append("torch.compile failed (%s: %s); T_b is eager only"
                         % (type(e).__name__, str(e).splitlines()[0][:300] if str(e) else ""))
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)
        if ok and not outputs_close(got, want):
            notes.append("torch.compile output differs from eager; T_b is eager only")
            ok = False
        if ok:
            t_compile, spread_compile = summarize(cuda_time(compiled, args, warmups, reps, flush))
    entry = {"t_b_eager_ns": t_eager, "t_b_compile_ns": t_compile}
    if t_compile > 0 and t_compile < t_eager:
        entry["t_b_ns"], entry["t_b_spread"] = t_compile, spread_compile
    else:
        entry["t_b_ns"], entry["t_b_spread"] = t_eager, spread_eager
    entry["t_ref_kernel_ns"] = graph_kernel_time(run, args, reps, flush, notes)
    entry["notes"] = notes
    if path:
        cache_store(path, key, entry)
    entry["cached"] = False
    return entry


def round_seed(req, wi, r):
    return (int(req["seed"]) * 1000003 + wi * 7919 + r) & 0x7FFFFFFFFFFFFFFF


def setup_device(req, manifest):
    """Selects the request's device; returns the L2 flush buffer (GPU) or None."""
    global DEVICE
    if req.get("device", "cpu") != "cuda":
        return None
    if not torch.cuda.is_available():
        raise OracleError("request says device cuda, but torch %s sees no GPU "
                          "(torch.cuda.is_available() is False)" % torch.__version__)
    idx = int(req.get("device_index", 0))
    if idx < 0 or idx >= torch.cuda.device_count():
        raise OracleError("device_index %d, but torch sees %d GPU(s)"
                          % (idx, torch.cuda.device_count()))
    torch.cuda.set_device(idx)
    DEVICE = torch.device("cuda", idx)
    props = torch.cuda.get_device_properties(idx)
    l2 = int(getattr(props, "L2_cache_size", 0) or (50 << 20))
    manifest["device"] = "cuda"
    manifest["gpu"] = props.name
    manifest["cuda"] = torch.version.cuda
    manifest["l2_bytes"] = l2
    # Zeroing 2x the L2 evicts whatever the last call left there.
    return torch.empty(2 * l2, dtype=torch.uint8, device=DEVICE)


def main():
    req_path = sys.argv[1]
    with open(req_path) as f:
        req = json.load(f)
    out_dir = req["out_dir"]
    manifest_path = os.path.join(out_dir, "oracle_manifest.json")
    torch.set_num_threads(int(req.get("threads") or os.cpu_count() or 1))
    manifest = {"workloads": [], "torch": torch.__version__, "python": sys.executable,
                "device": "cpu"}
    try:
        flush = setup_device(req, manifest)
        # A real module in sys.modules: torch.compile (dynamo) imports the
        # module a function's globals name, and fails on a bare exec dict.
        module = types.ModuleType("ratchet_reference")
        sys.modules["ratchet_reference"] = module
        ns = module.__dict__
        exec(compile(req["reference"], "definition.json:reference", "exec"), ns)
        run = ns.get("run")
        if run is None:
            raise OracleError("reference defines no run(...)")
        rounds = int(req["rounds"])
        round_specs = req.get("round_specs") or [{} for _ in range(rounds)]
        if len(round_specs) != rounds:
            raise OracleError("round_specs has %d entries, rounds is %d" % (len(round_specs), rounds))
        # "extra_rounds" (what ratchet-harness-cuda sends) are appended after
        # the ordinary rounds: round `rounds + k` is extra_rounds[k].
        round_specs = list(round_specs) + list(req.get("extra_rounds") or [])
        rounds = len(round_specs)
        for r, spec in enumerate(round_specs):
            p = spec.get("perturb_of")
            if p is not None and not (0 <= int(p) < rounds and int(p) != r
                                      and round_specs[int(p)].get("perturb_of") is None):
                raise OracleError("round %d: perturb_of %r must name another, unperturbed round"
                                  % (r, p))
        by_workload = req.get("rounds_by_workload")
        if by_workload is not None and (len(by_workload) != len(req["workloads"])
                                        or req.get("extra_rounds")):
            raise OracleError("rounds_by_workload needs one count per workload and no extra_rounds")
        for position, w in enumerate(req["workloads"]):
            wi = w["index"]
            sys.stderr.write("oracle: workload %d/%d\n" % (wi + 1, len(req["workloads"])))
            entry = {"rounds": []}
            timing_args = None
            workload_rounds = rounds
            if by_workload is not None:
                workload_rounds = max(1, min(rounds, int(by_workload[position])))
            for r in range(workload_rounds):
                p = round_specs[r].get("perturb_of")
                torch.manual_seed(round_seed(req, wi, int(p) if p is not None else r))
                args = make_inputs(req, ns, w)
                perturbed = None
                if p is not None:
                    args, perturbed = perturb(args, round_seed(req, wi, r))
                    if perturbed is None:
                        raise OracleError("workload %d round %d: no input element can change "
                                          "(perturb_of %d)" % (wi, r, int(p)))
                with torch.no_grad():
                    fresh = [a.clone() if isinstance(a, torch.Tensor) else a for a in args]
                    outs = normalise_outputs(req, run(*fresh), w)
                files = {"inputs": [], "outputs": []}
                if perturbed is not None:
                    files["perturb_of"] = int(p)
                    files["perturbed"] = perturbed
                for i, (spec, a) in enumerate(zip(req["input_specs"], args)):
                    name = "w%d_r%d_in%d.bin" % (wi, r, i)
                    with open(os.path.join(out_dir, name), "wb") as f:
                        f.write(to_bytes(a, spec["dtype"]))
                    files["inputs"].append(name)
                for j, (spec, o) in enumerate(zip(req["output_specs"], outs)):
                    name = "w%d_r%d_ref%d.bin" % (wi, r, j)
                    with open(os.path.join(out_dir, name), "wb") as f:
                        f.write(to_bytes(o, spec["dtype"]))
                    files["outputs"].append(name)
                entry["rounds"].append(files)
                if r == 0:
                    timing_args = args
            # Flops count even when T_b is not timed: a harness given a
            # stored T_b still needs them for T_sol.
            if timing_args is not None:
                flops = count_flops(run, timing_args)
                if flops is not None:
                    entry["flops"] = flops
            if not req.get("time_reference", True):
                timing_args = None
            if int(req["repetitions"]) > 0 and timing_args is not None:
                if flush is not None:
                    entry.update(time_reference_cuda(req, run, timing_args, w, flush,
                                                     manifest["gpu"]))
                else:
                    entry["t_b_ns"], entry["t_b_spread"] = time_reference(req, run, timing_args)
            else:
                entry["t_b_ns"], entry["t_b_spread"] = 0.0, 0.0
            manifest["workloads"].append(entry)
    except Exception as e:  # noqa: BLE001 - reported to the harness verbatim
        if isinstance(e, OracleError):
            manifest["error"] = str(e)
        else:
            manifest["error"] = "reference failed: %s: %s\n%s" % (
                type(e).__name__, e, traceback.format_exc(limit=6))
        with open(manifest_path, "w") as f:
            json.dump(manifest, f)
        return 1
    with open(manifest_path, "w") as f:
        json.dump(manifest, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
