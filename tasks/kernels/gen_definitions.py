#!/usr/bin/env python3
"""Writes definition.json and workload.jsonl of every problem in tasks/kernels/.

The JSON files are generated from this one place so that the references,
axes and workloads stay consistent; edit here and rerun:
    python3 tasks/kernels/gen_definitions.py
Workload uuids are derived from the problem name and axes (uuid5), so
rerunning without changes rewrites identical files.
"""
import json
import os
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
NS = uuid.UUID("6f1d2a5e-0c1b-4f55-9a57-3c8e7d1b9a01")

PROBLEMS = []


def problem(folder, name, op_type, description, tags, axes, inputs, outputs, reference,
            workloads, flops=None, unit=None, bytes_expr=None, entrypoint=None):
    PROBLEMS.append(dict(folder=folder, name=name, op_type=op_type, description=description,
                         tags=tags, axes=axes, inputs=inputs, outputs=outputs,
                         reference=reference.lstrip("\n"), workloads=workloads, flops=flops,
                         unit=unit, bytes_expr=bytes_expr, entrypoint=entrypoint))


def var(desc):
    return {"type": "var", "description": desc}


def const(v, desc):
    return {"type": "const", "value": v, "description": desc}


def expr(e, desc):
    return {"type": "expr", "expression": e, "description": desc}


def t(shape, dtype, desc):
    return {"shape": shape, "dtype": dtype, "description": desc}


RANDOM = {"type": "random"}
CUSTOM = {"type": "custom"}


def scalar(v):
    return {"type": "scalar", "value": v}


# ---------------------------------------------------------------- GEMM
problem(
    "gemm_bf16", "gemm_bf16_linear", "gemm",
    "Linear layer without bias, y = x @ weight^T, bfloat16 in and out with float32 "
    "accumulation (the projections of Llama-3-8B/70B: fused QKV, gate/up, down, o_proj).",
    ["status:verified", "device:cuda", "ratchet:builtin", "model:llama-3-8b", "model:llama-3-70b"],
    {"M": var("tokens (batch x sequence)"), "N": var("output features"),
     "K": var("input features, the reduction dimension")},
    {"x": t(["M", "K"], "bfloat16", "activations, row-major"),
     "weight": t(["N", "K"], "bfloat16", "nn.Linear weight, row-major [out_features, in_features]")},
    {"y": t(["M", "N"], "bfloat16", "x @ weight^T")},
    '''
import torch


@torch.no_grad()
def run(x, weight):
    # y[m, n] = sum_k x[m, k] * weight[n, k]; bf16 operands, fp32 accumulation.
    y = torch.matmul(x, weight.T)
    return y
''',
    [{"M": 16, "N": 28672, "K": 4096},    # 8B decode step, fused gate_up, 16 sequences
     {"M": 2048, "N": 6144, "K": 4096},   # 8B prefill, fused QKV (4096 + 2*1024)
     {"M": 4096, "N": 4096, "K": 14336},  # 8B down_proj
     {"M": 4096, "N": 8192, "K": 8192}],  # 70B o_proj
    flops="2 * M * N * K", unit="tensor")

# ---------------------------------------------------------------- reduction
problem(
    "logsumexp_bf16", "logsumexp_bf16_vocab", "reduction",
    "Row-wise log-sum-exp of bfloat16 logits over the vocabulary, in float32 (the "
    "normaliser of a softmax / cross-entropy over an LLM's output logits).",
    ["status:verified", "device:cuda", "ratchet:builtin", "model:llama-3-8b"],
    {"T": var("tokens"), "V": var("vocabulary size")},
    {"logits": t(["T", "V"], "bfloat16", "output logits")},
    {"lse": t(["T"], "float32", "log(sum(exp(logits), -1))")},
    '''
import torch


@torch.no_grad()
def run(logits):
    x = logits.to(torch.float32)
    m = x.max(dim=-1, keepdim=True).values
    s = torch.exp(x - m).sum(dim=-1)
    lse = m.squeeze(-1) + torch.log(s)
    return lse
''',
    [{"T": 256, "V": 128256}, {"T": 1024, "V": 128256}, {"T": 4096, "V": 128256},
     {"T": 4096, "V": 32000}],
    flops="4 * T * V", unit="simt")

# ---------------------------------------------------------------- normalization
problem(
    "rmsnorm_bf16", "rmsnorm_bf16", "rmsnorm",
    "RMSNorm over the hidden dimension, y = x / sqrt(mean(x^2) + eps) * weight, bfloat16 in "
    "and out, statistics in float32 (Llama-3-8B/70B, eps 1e-5).",
    ["status:verified", "device:cuda", "ratchet:builtin", "model:llama-3-8b", "model:llama-3-70b"],
    {"T": var("tokens"), "H": var("hidden size")},
    {"hidden_states": t(["T", "H"], "bfloat16", "rows to normalise"),
     "weight": t(["H"], "bfloat16", "per-channel scale"),
     "eps": t(None, "float32", "added to the mean square")},
    {"output": t(["T", "H"], "bfloat16", "normalised and scaled rows")},
    '''
import torch


@torch.no_grad()
def run(hidden_states, weight, eps):
    x = hidden_states.to(torch.float32)
    inv_rms = torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + eps)
    y = (x * inv_rms) * weight.to(torch.float32)
    return y.to(hidden_states.dtype)
''',
    [{"T": 4096, "H": 4096}, {"T": 8192, "H": 4096}, {"T": 2048, "H": 8192},
     {"T": 8192, "H": 8192}],
    flops="4 * T * H", unit="simt", )

problem(
    "layernorm_bf16", "layernorm_bf16", "layernorm",
    "LayerNorm over the hidden dimension with affine weight and bias, bfloat16 in and out, "
    "mean and variance in float32 (GPT-J/Falcon/ViT-style models).",
    ["status:verified", "device:cuda", "ratchet:builtin"],
    {"T": var("tokens"), "H": var("hidden size")},
    {"hidden_states": t(["T", "H"], "bfloat16", "rows to normalise"),
     "weight": t(["H"], "bfloat16", "per-channel scale (gamma)"),
     "bias": t(["H"], "bfloat16", "per-channel shift (beta)"),
     "eps": t(None, "float32", "added to the variance")},
    {"output": t(["T", "H"], "bfloat16", "normalised rows")},
    '''
import torch


@torch.no_grad()
def run(hidden_states, weight, bias, eps):
    x = hidden_states.to(torch.float32)
    mean = x.mean(dim=-1, keepdim=True)
    xc = x - mean
    var = (xc * xc).mean(dim=-1, keepdim=True)
    y = xc * torch.rsqrt(var + eps)
    y = y * weight.to(torch.float32) + bias.to(torch.float32)
    return y.to(hidden_states.dtype)
''',
    [{"T": 4096, "H": 4096}, {"T": 8192, "H": 4096}, {"T": 4096, "H": 8192},
     {"T": 8192, "H": 2048}],
    flops="7 * T * H", unit="simt")

# ---------------------------------------------------------------- attention components
problem(
    "causal_softmax_bf16", "attention_causal_softmax_bf16", "attention",
    "Scaled, causally masked softmax over attention scores (the middle of unfused "
    "attention): probs = softmax(scores * scale + causal_mask) per query row, bfloat16 "
    "in and out, float32 inside; masked entries are exactly 0.",
    ["status:verified", "device:cuda", "ratchet:builtin", "model:llama-3-8b"],
    {"BH": var("batch x heads"), "S": var("sequence length (queries = keys)")},
    {"scores": t(["BH", "S", "S"], "bfloat16", "q @ k^T before scaling"),
     "scale": t(None, "float32", "1/sqrt(head_dim)")},
    {"probs": t(["BH", "S", "S"], "bfloat16", "row-wise softmax, 0 above the diagonal")},
    '''
import torch


@torch.no_grad()
def run(scores, scale):
    S = scores.shape[-1]
    x = scores.to(torch.float32) * scale
    future = torch.triu(torch.ones(S, S, dtype=torch.bool, device=scores.device), diagonal=1)
    x = x.masked_fill(future, float("-inf"))
    m = x.max(dim=-1, keepdim=True).values
    e = torch.exp(x - m)
    probs = e / e.sum(dim=-1, keepdim=True)
    return probs.to(scores.dtype)
''',
    [{"BH": 32, "S": 1024}, {"BH": 32, "S": 2048}, {"BH": 8, "S": 4096}],
    flops="2 * BH * S * S", unit="simt",
    # A kernel need not read the masked half: bytes = the causal triangle read
    # (incl. diagonal) + the whole output written.
    bytes_expr="BH * S * (S + 1) + 2 * BH * S * S")
for w in PROBLEMS[-1]["workloads"]:
    w["_scalars"] = {"scale": 0.08838834764831845}  # 1/sqrt(128)

problem(
    "rope_bf16", "rope_neox_bf16_d128", "rope",
    "Rotary position embedding (rotate-half / NeoX layout, as in Llama-3) applied to the "
    "query and key heads of a prefill batch; cos/sin tables in float32 from rope_theta "
    "500000, bfloat16 q/k in and out.",
    ["status:verified", "device:cuda", "ratchet:builtin", "model:llama-3-8b", "model:llama-3-70b"],
    {"T": var("tokens"), "Hq": var("query heads"), "Hkv": var("key/value heads"),
     "D": const(128, "head dimension"), "half": expr("D // 2", "rotated pairs per head")},
    {"q": t(["T", "Hq", "D"], "bfloat16", "queries"),
     "k": t(["T", "Hkv", "D"], "bfloat16", "keys"),
     "cos": t(["T", "half"], "float32", "cos(position * inv_freq)"),
     "sin": t(["T", "half"], "float32", "sin(position * inv_freq)")},
    {"q_out": t(["T", "Hq", "D"], "bfloat16", "rotated queries"),
     "k_out": t(["T", "Hkv", "D"], "bfloat16", "rotated keys")},
    '''
import torch


def make_inputs(axes_and_scalars, device):
    T, Hq, Hkv, D = (axes_and_scalars[a] for a in ("T", "Hq", "Hkv", "D"))
    q = torch.randn(T, Hq, D, device=device).to(torch.bfloat16)
    k = torch.randn(T, Hkv, D, device=device).to(torch.bfloat16)
    # Positions of a packed prefill batch: a random start offset per call.
    start = int(torch.randint(0, 4096, (1,)).item())
    pos = torch.arange(start, start + T, device=device, dtype=torch.float32)
    inv_freq = 1.0 / (500000.0 ** (torch.arange(0, D, 2, device=device, dtype=torch.float32) / D))
    ang = pos[:, None] * inv_freq[None, :]
    return {"q": q, "k": k, "cos": torch.cos(ang), "sin": torch.sin(ang)}


def rotate(x, cos, sin):
    half = x.shape[-1] // 2
    xf = x.to(torch.float32)
    x1 = xf[..., :half]
    x2 = xf[..., half:]
    c = cos[:, None, :]
    s = sin[:, None, :]
    out = torch.cat([x1 * c - x2 * s, x2 * c + x1 * s], dim=-1)
    return out.to(x.dtype)


@torch.no_grad()
def run(q, k, cos, sin):
    return rotate(q, cos, sin), rotate(k, cos, sin)
''',
    [{"T": 4096, "Hq": 32, "Hkv": 8}, {"T": 8192, "Hq": 32, "Hkv": 8},
     {"T": 2048, "Hq": 64, "Hkv": 8}, {"T": 8192, "Hq": 64, "Hkv": 8}],
    flops="3 * T * (Hq + Hkv) * D", unit="simt", entrypoint="make_inputs")

problem(
    "decode_attention_bf16", "gqa_decode_bf16_hq32_hkv8_d128", "attention",
    "Single-query (decode) grouped-query attention over a contiguous KV cache, Llama-3-8B "
    "geometry (32 query heads, 8 KV heads, head_dim 128): out = softmax(q k^T * scale) v "
    "per query head, bfloat16 in and out, float32 inside.",
    ["status:verified", "device:cuda", "ratchet:builtin", "model:llama-3-8b"],
    {"B": var("sequences in the decode batch"), "S": var("cached tokens per sequence"),
     "Hq": const(32, "query heads"), "Hkv": const(8, "key/value heads"),
     "D": const(128, "head dimension")},
    {"q": t(["B", "Hq", "D"], "bfloat16", "one query per sequence and head"),
     "k_cache": t(["B", "S", "Hkv", "D"], "bfloat16", "keys"),
     "v_cache": t(["B", "S", "Hkv", "D"], "bfloat16", "values"),
     "scale": t(None, "float32", "softmax scale, 1/sqrt(D)")},
    {"out": t(["B", "Hq", "D"], "bfloat16", "attention output")},
    '''
import torch


@torch.no_grad()
def run(q, k_cache, v_cache, scale):
    B, Hq, D = q.shape
    Hkv = k_cache.shape[2]
    group = Hq // Hkv
    k = k_cache.to(torch.float32).repeat_interleave(group, dim=2)  # [B, S, Hq, D]
    v = v_cache.to(torch.float32).repeat_interleave(group, dim=2)
    scores = torch.einsum("bhd,bshd->bhs", q.to(torch.float32), k) * scale
    m = scores.max(dim=-1, keepdim=True).values
    p = torch.exp(scores - m)
    p = p / p.sum(dim=-1, keepdim=True)
    out = torch.einsum("bhs,bshd->bhd", p, v)
    return out.to(q.dtype)
''',
    [{"B": 16, "S": 4096}, {"B": 64, "S": 1024}, {"B": 1, "S": 32768}, {"B": 32, "S": 8192}],
    flops="4 * B * Hq * S * D", unit="simt")
for w in PROBLEMS[-1]["workloads"]:
    w["_scalars"] = {"scale": 0.08838834764831845}

# ---------------------------------------------------------------- quantization
problem(
    "fp8_quant_bf16", "quant_fp8_e4m3_per_token_bf16", "quantization",
    "Dynamic per-token FP8 quantisation of activations (as before an FP8 GEMM): "
    "scale = max|x| / 448 per row, q = clamp(x / scale, -448, 448) in float8_e4m3fn.",
    ["status:verified", "device:cuda", "ratchet:builtin", "quantization:float8_e4m3fn"],
    {"T": var("tokens"), "H": var("features")},
    {"x": t(["T", "H"], "bfloat16", "activations")},
    {"q": t(["T", "H"], "float8_e4m3fn", "quantised activations"),
     "scale": t(["T"], "float32", "per-token dequantisation scale")},
    '''
import torch

FP8_MAX = 448.0  # largest finite float8_e4m3fn


@torch.no_grad()
def run(x):
    xf = x.to(torch.float32)
    amax = xf.abs().amax(dim=-1, keepdim=True).clamp(min=1e-12)
    scale = amax / FP8_MAX
    q = (xf / scale).clamp(-FP8_MAX, FP8_MAX).to(torch.float8_e4m3fn)
    return q, scale.squeeze(-1)
''',
    [{"T": 4096, "H": 4096}, {"T": 8192, "H": 4096}, {"T": 4096, "H": 14336},
     {"T": 8192, "H": 8192}],
    flops="3 * T * H", unit="simt")

# ---------------------------------------------------------------- fused operators
problem(
    "swiglu_bf16", "swiglu_bf16", "fused",
    "SwiGLU activation of a fused gate/up projection (vLLM's silu_and_mul): "
    "out = silu(x[:, :I]) * x[:, I:], bfloat16 in and out, float32 inside "
    "(Llama-3-8B I = 14336, 70B I = 28672).",
    ["status:verified", "device:cuda", "ratchet:builtin", "model:llama-3-8b", "model:llama-3-70b"],
    {"T": var("tokens"), "I": var("intermediate size"), "I2": expr("2 * I", "gate and up, concatenated")},
    {"x": t(["T", "I2"], "bfloat16", "[gate | up] output of the fused projection")},
    {"out": t(["T", "I"], "bfloat16", "silu(gate) * up")},
    '''
import torch


@torch.no_grad()
def run(x):
    I = x.shape[-1] // 2
    gate = x[:, :I].to(torch.float32)
    up = x[:, I:].to(torch.float32)
    silu = gate / (1.0 + torch.exp(-gate))
    return (silu * up).to(x.dtype)
''',
    [{"T": 2048, "I": 14336}, {"T": 8192, "I": 14336}, {"T": 4096, "I": 28672}],
    flops="5 * T * I", unit="simt")

problem(
    "add_rmsnorm_bf16", "fused_add_rmsnorm_bf16", "fused",
    "Residual add fused with RMSNorm (vLLM's fused_add_rms_norm, out of place): "
    "residual_out = x + residual (rounded to bfloat16), output = RMSNorm(residual_out) * "
    "weight; bfloat16 in and out, statistics in float32.",
    ["status:verified", "device:cuda", "ratchet:builtin", "model:llama-3-8b", "model:llama-3-70b"],
    {"T": var("tokens"), "H": var("hidden size")},
    {"x": t(["T", "H"], "bfloat16", "sub-layer output"),
     "residual": t(["T", "H"], "bfloat16", "residual stream"),
     "weight": t(["H"], "bfloat16", "RMSNorm weight"),
     "eps": t(None, "float32", "added to the mean square")},
    {"output": t(["T", "H"], "bfloat16", "normalised residual stream"),
     "residual_out": t(["T", "H"], "bfloat16", "x + residual")},
    '''
import torch


@torch.no_grad()
def run(x, residual, weight, eps):
    r = (x.to(torch.float32) + residual.to(torch.float32)).to(x.dtype)
    rf = r.to(torch.float32)
    inv_rms = torch.rsqrt(rf.pow(2).mean(dim=-1, keepdim=True) + eps)
    y = (rf * inv_rms) * weight.to(torch.float32)
    return y.to(x.dtype), r
''',
    [{"T": 2048, "H": 4096}, {"T": 8192, "H": 4096}, {"T": 4096, "H": 8192}],
    flops="5 * T * H", unit="simt")

# ---------------------------------------------------------------- others
problem(
    "embedding_bf16", "embedding_gather_bf16", "gather",
    "Token embedding lookup: out[t, :] = table[ids[t], :], bfloat16 table of a "
    "128256-token (Llama-3) or 32000-token (Llama-2) vocabulary.",
    ["status:verified", "device:cuda", "ratchet:builtin", "model:llama-3-8b", "model:llama-2-70b"],
    {"T": var("tokens"), "V": var("vocabulary size"), "H": var("hidden size")},
    {"ids": t(["T"], "int64", "token ids in [0, V)"),
     "table": t(["V", "H"], "bfloat16", "embedding table")},
    {"out": t(["T", "H"], "bfloat16", "gathered rows")},
    '''
import torch


def make_inputs(axes_and_scalars, device):
    T, V, H = axes_and_scalars["T"], axes_and_scalars["V"], axes_and_scalars["H"]
    ids = torch.randint(0, V, (T,), dtype=torch.int64, device=device)
    table = torch.randn(V, H, device=device).to(torch.bfloat16)
    return {"ids": ids, "table": table}


@torch.no_grad()
def run(ids, table):
    assert int(ids.min()) >= 0 and int(ids.max()) < table.shape[0]
    return table[ids]
''',
    [{"T": 4096, "V": 128256, "H": 4096}, {"T": 8192, "V": 128256, "H": 4096},
     {"T": 8192, "V": 32000, "H": 8192}],
    # Only the gathered rows are read, not the whole table.
    bytes_expr="8 * T + 2 * 2 * T * H", entrypoint="make_inputs")

problem(
    "argmax_bf16", "argmax_bf16_vocab", "reduction",
    "Greedy decoding: index of the largest logit per row over the vocabulary (int64). "
    "Inputs come from a custom entrypoint that plants one clear maximum per row, so the "
    "answer is unique and must match exactly.",
    ["status:verified", "device:cuda", "ratchet:builtin", "model:llama-3-8b"],
    {"B": var("rows (sequences x draft tokens)"), "V": var("vocabulary size")},
    {"logits": t(["B", "V"], "bfloat16", "output logits")},
    {"index": t(["B"], "int64", "argmax over the last dimension")},
    '''
import torch


def make_inputs(axes_and_scalars, device):
    B, V = axes_and_scalars["B"], axes_and_scalars["V"]
    logits = torch.randn(B, V, device=device)
    # One planted maximum per row, well above the N(0, 1) background (< 8
    # with overwhelming probability), at a random column with a random value.
    col = torch.randint(0, V, (B,), device=device)
    val = 8.0 + 8.0 * torch.rand(B, device=device)
    logits[torch.arange(B, device=device), col] = val
    return {"logits": logits.to(torch.bfloat16)}


@torch.no_grad()
def run(logits):
    return torch.argmax(logits, dim=-1)
''',
    [{"B": 256, "V": 128256}, {"B": 1024, "V": 128256}, {"B": 4096, "V": 128256}],
    flops="B * V", unit="simt", entrypoint="make_inputs")
for w in PROBLEMS[-1]["workloads"]:
    w["_tolerance"] = {"atol": 0, "rtol": 0}


def write(p):
    d = os.path.join(HERE, p["folder"])
    os.makedirs(d, exist_ok=True)
    defn = {
        "name": p["name"],
        "op_type": p["op_type"],
        "description": p["description"],
        "tags": p["tags"],
        "axes": p["axes"],
        "custom_inputs_entrypoint": p["entrypoint"],
        "inputs": p["inputs"],
        "outputs": p["outputs"],
        "reference": p["reference"],
        "constraints": [],
    }
    if p["name"] == "gqa_decode_bf16_hq32_hkv8_d128":
        defn["constraints"] = ["Hq % Hkv == 0"]
    ext = {}
    if p["flops"]:
        ext["flops"] = p["flops"]
    if p["unit"]:
        ext["unit"] = p["unit"]
    if p["bytes_expr"]:
        ext["bytes"] = p["bytes_expr"]
    if ext:
        defn["ratchet"] = ext
    with open(os.path.join(d, "definition.json"), "w") as f:
        json.dump(defn, f, indent=2)
        f.write("\n")
    lines = []
    for w in p["workloads"]:
        scalars = w.get("_scalars", {})
        tol = w.get("_tolerance")
        axes = {k: v for k, v in w.items() if not k.startswith("_")}
        inputs = {}
        for name, spec in p["inputs"].items():
            if p["entrypoint"]:
                inputs[name] = CUSTOM
            elif spec["shape"] is None:
                inputs[name] = scalar(scalars.get(name, 1e-5))
            else:
                inputs[name] = RANDOM
        key = p["name"] + ":" + ",".join("%s=%d" % kv for kv in sorted(axes.items()))
        line = {"uuid": str(uuid.uuid5(NS, key)), "axes": axes, "inputs": inputs}
        if tol is not None:
            line["tolerance"] = tol
        lines.append(json.dumps(line))
    with open(os.path.join(d, "workload.jsonl"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    for p in PROBLEMS:
        write(p)
        print("wrote %s (%s, %d workloads)" % (p["folder"], p["name"], len(p["workloads"])))
