#!/usr/bin/env python3
"""ratchet reference oracle: one process per harness run.

Reads a request JSON (written by ratchet-harness), and for every workload and
round generates inputs from the seed, runs the definition's PyTorch reference
`run(...)`, writes inputs and reference outputs as raw little-endian files,
and times the reference (T_b) the way the harness times a candidate: warm-ups,
then repetitions each preceded by cloning the inputs to fresh addresses and
then writing a buffer of 2x the last-level cache; median and (p90-p10)/median.

Usage: oracle.py REQUEST.json
Exit status: 0 manifest written; 3 torch cannot be imported (the harness then
tries another interpreter); 1 the reference or its inputs failed (the manifest
holds "error").
"""
import json
import os
import struct
import sys
import time
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
SAFETENSORS_DTYPES = {
    "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64,
    "I8": torch.int8, "U8": torch.uint8, "I32": torch.int32, "I64": torch.int64,
    "BOOL": torch.bool, "I16": torch.int16,
}


class OracleError(Exception):
    pass


def is_float(dt):
    return dt in (torch.float32, torch.float16, torch.bfloat16, torch.float64)


def random_tensor(shape, dt):
    # Sensible ranges: N(0,1) for floats, full range for 8-bit ints, small
    # non-negative values for wider ints (often sizes or indices).
    if is_float(dt):
        return torch.randn(shape, dtype=torch.float32).to(dt)
    if dt == torch.bool:
        return torch.randint(0, 2, shape, dtype=torch.uint8).bool()
    if dt == torch.int8:
        return torch.randint(-128, 128, shape, dtype=torch.int8)
    if dt == torch.uint8:
        return torch.randint(0, 256, shape, dtype=torch.uint8)
    return torch.randint(0, 128, shape, dtype=dt)


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
        custom = fn(axes_and_scalars, torch.device("cpu"))
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
            v = python_scalar(src["value"], dt) if spec["scalar"] else torch.full(shape, src["value"], dtype=dt)
        elif kind == "safetensors":
            v = load_safetensors(src["path"], src["tensor_key"])
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
            v = v.contiguous()
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


def main():
    req_path = sys.argv[1]
    with open(req_path) as f:
        req = json.load(f)
    out_dir = req["out_dir"]
    manifest_path = os.path.join(out_dir, "oracle_manifest.json")
    torch.set_num_threads(int(req.get("threads") or os.cpu_count() or 1))
    manifest = {"workloads": [], "torch": torch.__version__, "python": sys.executable}
    try:
        ns = {"__name__": "ratchet_reference"}
        exec(compile(req["reference"], "definition.json:reference", "exec"), ns)
        run = ns.get("run")
        if run is None:
            raise OracleError("reference defines no run(...)")
        for w in req["workloads"]:
            wi = w["index"]
            sys.stderr.write("oracle: workload %d/%d\n" % (wi + 1, len(req["workloads"])))
            entry = {"rounds": []}
            timing_args = None
            for r in range(int(req["rounds"])):
                torch.manual_seed((int(req["seed"]) * 1000003 + wi * 7919 + r) & 0x7FFFFFFFFFFFFFFF)
                args = make_inputs(req, ns, w)
                with torch.no_grad():
                    fresh = [a.clone() if isinstance(a, torch.Tensor) else a for a in args]
                    outs = normalise_outputs(req, run(*fresh), w)
                files = {"inputs": [], "outputs": []}
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
            if int(req["repetitions"]) > 0 and timing_args is not None:
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
