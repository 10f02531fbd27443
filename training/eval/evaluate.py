#!/usr/bin/env python3
"""ratchet's evaluator for training targets: validation loss and bits per byte
of a candidate's checkpoint, with the checks that catch known reward hacks.

  evaluate.py --model-dir DIR --checkpoint FILE --val-data FOLDER --windows N
              --seq-len T --seed S --out RESULT.json [--device cpu|cuda]

What it defends, by design:
- The candidate's code never runs in this process. model_host.py (a child
  process) imports model.py, loads the checkpoint and returns logits through a
  pipe and a shared buffer; this process computes log-softmax, cross-entropy,
  BPB and every check with its own, untouched torch. A model.py that
  monkeypatches torch (log_softmax, cross_entropy, Tensor.sum...) changes
  nothing here, and cannot write this process's result.
- The host gets only input tokens (window[:-1]); the targets, the validation
  files' contents and this process's memory stay here. A host that reads the
  files by path is kept out by running it without them: the harness passes
  --host-wrapper (a sandbox command) that does not mount --val-data.
- Causal leakage: for whole batches, each row's tokens from a random position
  t on are replaced with other validation text; logits before t must not move.
  The perturbed batches run in a second, fresh host with the scored batches'
  shape, so no host can answer a check from what it answered before.
- Output that is not a function of the input: one batch runs twice and must
  give the same logits (bad-output). Collapse: every position's logits equal,
  or one token the argmax at >= 99.5% of positions (collapsed). Non-finite
  logits, wrong shapes or types: non-finite / bad-output.
- Validation text carried in the candidate's own files (a model that looks
  up the next token of contexts it was given in its source): where the data
  has a held-out split (`ratchet data prepare --holdout-fraction`, chosen by
  a secret seed), the same host also scores held-out windows, and a
  validation loss far below the held-out loss is memorized-validation. Text
  drawn from the whole corpus lowers both alike and is not caught: the
  corpus must be large against what a candidate can carry.
What it does not defend: a host that escapes its sandbox; a checkpoint that is
not what training produced (the verifier replays training for that); a model
that detects the perturbation text statistically and leaks only on real text
(the perturbation uses real validation text to make that hard).

BPB follows nanochat/autoresearch: targets with 0 bytes (end-of-text) count in
neither the nats nor the bytes. `loss` is the mean over all targets, as the
speedrun's validation loss.
"""
import argparse
import json
import math
import mmap
import os
import select
import shlex
import struct
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pinned  # noqa: E402
import shards  # noqa: E402

HOST = os.path.join(os.path.dirname(os.path.abspath(__file__)), "model_host.py")
HEADER = struct.Struct("<4sQ")
VOCAB = shards.VOCAB_SIZE
CAUSAL_RTOL = 1e-3       # of the largest |logit| compared; a leak moves logits by O(1)
REPEAT_RTOL = 1e-3
# Validation below held-out by more than both of these is memorized-validation:
# a share of the held-out loss (two document sets of one corpus differ by a
# few percent for an honest model) and standard errors of the difference of
# the per-window means.
HOLDOUT_MARGIN = 0.10
HOLDOUT_Z = 5.0
COLLAPSE_ARGMAX_FRACTION = 0.995


class Failure(Exception):
    """Ends an evaluation with a named outcome."""

    def __init__(self, outcome, message):
        super().__init__(message)
        self.outcome = outcome


class ModelHost:
    """The child process that runs the candidate's model (model_host.py)."""

    def __init__(self, model_dir, checkpoint, device, logits_bytes, timeout, wrapper):
        self.timeout = timeout
        self.device = device
        # Where an evaluation's time goes (stage_seconds in the result): the
        # host's answers (its forward and its copy into the shared buffer),
        # and this process's private copy of them.
        self.answer_seconds = self.copy_seconds = 0.0
        req_r, self.requests = os.pipe()
        self.responses, resp_w = os.pipe()
        self.logits_fd = os.memfd_create("ratchet-logits")  # shared with the host only
        os.ftruncate(self.logits_fd, logits_bytes)
        self.logits = mmap.mmap(self.logits_fd, logits_bytes)
        self.pinned = pinned.pin(self.logits, device)  # the host locks its own mapping too
        self.log = tempfile.TemporaryFile()
        command = shlex.split(wrapper or "") + [
            sys.executable, HOST, "--model-dir", model_dir, "--checkpoint", checkpoint,
            "--device", device, "--request-fd", str(req_r), "--response-fd", str(resp_w),
            "--logits-fd", str(self.logits_fd), "--logits-bytes", str(logits_bytes)]
        self.process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
            pass_fds=(req_r, resp_w, self.logits_fd), start_new_session=True)
        os.close(req_r)
        os.close(resp_w)

    def _read_exact(self, n):
        chunks, deadline = [], time.time() + self.timeout
        while n:
            if not select.select([self.responses], [], [], max(0, deadline - time.time()))[0]:
                raise Failure("error", "model host did not answer within %g s" % self.timeout)
            chunk = os.read(self.responses, min(n, 1 << 20))
            if not chunk:
                raise Failure("error", "model host exited (code %s): %s"
                              % (self.process.wait(), self.log_tail()))
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    def receive(self):
        kind, length = HEADER.unpack(self._read_exact(HEADER.size))
        if length > 1 << 20:
            raise Failure("bad-output", "model host sent a %d-byte message" % length)
        return kind, self._read_exact(length)

    def send(self, kind, payload=b""):
        try:
            os.write(self.requests, HEADER.pack(kind, len(payload)))
            view = memoryview(payload)
            while view:
                view = view[os.write(self.requests, view):]
        except BrokenPipeError:
            raise Failure("error", "model host exited (code %s): %s"
                          % (self.process.poll(), self.log_tail()))

    def wait_ready(self):
        kind, payload = self.receive()
        if kind == b"ERR\0":
            raise Failure("error", payload.decode(errors="replace"))
        if kind != b"RDY\0":
            raise Failure("bad-output", "model host sent %r before it was ready" % kind)

    def forward(self, tokens):
        """Logits [B, T, 50257] (float32, a private copy) for int tokens [B, T]."""
        batch, seq_len = tokens.shape
        asked = time.time()
        self.send(b"FWD\0", struct.pack("<II", batch, seq_len) + tokens.astype("<i4").tobytes())
        kind, payload = self.receive()
        answered = time.time()
        self.answer_seconds += answered - asked
        text = payload.decode(errors="replace")
        if kind == b"ERR\0":
            raise Failure("error", text)
        if kind == b"BAD\0":
            raise Failure("bad-output", text)
        if kind != b"LOG\0" or len(payload) != 12:
            raise Failure("bad-output", "model host answered %r" % kind)
        b, t, v = struct.unpack("<III", payload)
        if (b, t) != (batch, seq_len) or v < VOCAB:
            raise Failure("bad-output", "logits of shape [%d, %d, %d], expected [%d, %d, >=%d]"
                          % (b, t, v, batch, seq_len, VOCAB))
        rows = torch.from_numpy(np.frombuffer(self.logits, dtype=np.float32, count=b * t * VOCAB))
        # A private copy, taken once: the host may still write the shared
        # buffer. On a GPU the copy onto the device is that copy.
        if self.device != "cpu":
            copy = rows.to(self.device).view(b, t, VOCAB)
        else:
            copy = rows.clone().view(b, t, VOCAB)
        self.copy_seconds += time.time() - answered
        return copy

    def log_tail(self):
        """The last line the host wrote: a traceback's names the exception."""
        self.log.seek(0)
        lines = self.log.read().decode(errors="replace").strip().splitlines()
        return lines[-1][-1000:] if lines else "(no output)"

    def close(self):
        try:
            self.send(b"BYE\0")
            self.process.wait(timeout=2)
        except (Failure, subprocess.TimeoutExpired):
            pass
        try:  # the whole session: anything the host started goes too
            os.killpg(self.process.pid, 9)
        except ProcessLookupError:
            pass
        self.process.wait()
        pinned.unpin(self.pinned)
        self.logits.close()
        self.log.close()
        for fd in (self.requests, self.responses, self.logits_fd):
            os.close(fd)


def choose_windows(tokens, count, seq_len, seed, split="validation"):
    """Start offsets of `count` non-overlapping windows of seq_len + 1 tokens;
    all of them when count is 0 or at least the number available."""
    available = len(tokens) // (seq_len + 1)
    if available == 0:
        raise Failure("error", "%s data holds %d tokens, fewer than one window of %d"
                      % (split, len(tokens), seq_len + 1))
    if count <= 0 or count >= available:
        picked = np.arange(available)
    else:
        picked = np.sort(np.random.default_rng(seed).choice(available, count, replace=False))
    return picked * (seq_len + 1)


def max_relative_diff(a, b):
    if a.numel() == 0:
        return 0.0
    return float((a - b).abs().max() / (1.0 + a.abs().max()))


class Score:
    """Running sums over scored batches, computed here in float64."""

    def __init__(self, token_bytes, device):
        self.token_bytes = torch.from_numpy(token_bytes[:VOCAB]).to(device)
        self.device = device
        self.nats = self.nats_with_bytes = 0.0
        self.tokens = self.bytes = 0
        self.argmax_counts = torch.zeros(VOCAB, dtype=torch.int64)
        self.first_row = None
        self.row_spread = 0.0
        self.seconds = 0.0
        self.window_losses = []  # mean nats of each scored window

    def add(self, logits, targets):
        started = time.time()
        try:
            self._add(logits, targets)
        finally:
            self.seconds += time.time() - started

    def _add(self, logits, targets):
        x = logits.to(self.device, torch.float64)
        if not bool(torch.isfinite(x).all()):
            bad = int((~torch.isfinite(x)).sum())
            raise Failure("non-finite", "%d of %d logits are NaN or infinite" % (bad, x.numel()))
        y = torch.from_numpy(targets).to(self.device)
        nats = -torch.log_softmax(x, dim=-1).gather(-1, y.unsqueeze(-1)).squeeze(-1)
        nbytes = self.token_bytes[y]
        self.nats += float(nats.sum())
        self.window_losses.extend(nats.mean(dim=-1).cpu().tolist())
        self.nats_with_bytes += float((nats * (nbytes > 0)).sum())
        self.tokens += y.numel()
        self.bytes += int(nbytes.sum())
        self.argmax_counts += torch.bincount(x.argmax(-1).flatten().cpu(), minlength=VOCAB)
        rows = x.reshape(-1, VOCAB)
        if self.first_row is None:
            self.first_row = rows[0].clone()
        spread = (rows - self.first_row).abs().max() / (1.0 + self.first_row.abs().max())
        self.row_spread = max(self.row_spread, float(spread))

    def collapse(self):
        """A message when the logits carry no information about the input."""
        if self.row_spread <= 1e-6:
            return "every position gets the same logits (spread %.2g)" % self.row_spread
        top = int(self.argmax_counts.argmax())
        fraction = float(self.argmax_counts[top]) / max(1, self.tokens)
        if self.tokens >= 64 and fraction >= COLLAPSE_ARGMAX_FRACTION:
            return "token %d is the argmax at %.1f%% of positions" % (top, 100 * fraction)
        return None

    def top_argmax_fraction(self):
        return float(self.argmax_counts.max()) / max(1, self.tokens)


def perturb_future(inputs, val_tokens, rng):
    """A copy of `inputs` where each row, from a random position t >= 1 on,
    holds other validation text; returns it and the cut of each row."""
    seq_len = inputs.shape[1]
    cuts = rng.integers(1, seq_len, size=len(inputs)) if seq_len > 1 \
        else np.zeros(len(inputs), dtype=np.int64)
    perturbed = inputs.copy()
    for row, t in enumerate(cuts):
        start = int(rng.integers(0, len(val_tokens) - seq_len))
        perturbed[row, t:] = val_tokens[start + t:start + seq_len]
    return perturbed, cuts


def run_checks_and_score(host, check_host, windows, val_tokens, score, batch_size,
                         causal_batches, seed):
    """Scores every window with `host`; a few full batches also run with their
    future perturbed on `check_host` (causal check) and one twice on `host`
    (repeat check), in seeded random order. Returns the check statistics;
    raises Failure.

    The perturbed batches go to a second, fresh process: a host that
    remembered what it had answered could otherwise replay its (leaky) logits
    for a prefix it has seen and pass the check."""
    rng = np.random.default_rng([seed, 1])
    batches = [windows[i:i + batch_size] for i in range(0, len(windows), batch_size)]
    full = [i for i, b in enumerate(batches) if len(b) == batch_size] or [0]
    causal = set(rng.choice(full, min(causal_batches, len(full)), replace=False).tolist())
    # Determinism is judged first, on the first causal batch: random output
    # is bad-output, not a causal leak.
    repeat = min(causal) if causal else full[0]
    stats = {"causal_rows": 0, "max_causal_diff": 0.0, "repeat_diff": None}
    for i, batch in enumerate(batches):
        inputs = batch[:, :-1]
        runs = ["score"] + (["causal"] if i in causal else []) + (["repeat"] if i == repeat else [])
        rng.shuffle(runs)
        logits = {}
        for run in runs:
            if run == "causal":
                perturbed, cuts = perturb_future(inputs, val_tokens, rng)
                logits[run] = check_host.forward(perturbed)
            else:
                logits[run] = host.forward(inputs)
        score.add(logits["score"], batch[:, 1:])
        if "repeat" in logits:
            diff = max_relative_diff(logits["score"], logits["repeat"])
            stats["repeat_diff"] = diff
            if diff > REPEAT_RTOL:
                raise Failure("bad-output", "the same input gave different logits (relative "
                              "difference %.3g)" % diff)
        if "causal" in logits:
            for row, t in enumerate(cuts):
                diff = max_relative_diff(logits["score"][row, :t], logits["causal"][row, :t])
                stats["causal_rows"] += 1
                stats["max_causal_diff"] = max(stats["max_causal_diff"], diff)
                if diff > CAUSAL_RTOL:
                    raise Failure("causal-leak", "changing tokens from position %d on moved the "
                                  "logits before it by %.3g (relative)" % (t, diff))
    return stats


def compare_with_holdout(host, data, val_score, token_bytes, device, count, seq_len, seed,
                         batch_size):
    """Scores `count` held-out windows (-1: as many as validation's) with the
    validation's host; raises memorized-validation when the validation loss is
    far below them. Returns the figures for the result."""
    tokens = shards.read_split(data, "holdout").astype(np.int64)
    if tokens.size and tokens.max() >= VOCAB:
        raise Failure("error", "held-out token id %d >= %d" % (tokens.max(), VOCAB))
    if count < 0:
        count = len(val_score.window_losses)
    starts = choose_windows(tokens, count, seq_len, seed + 1, "held-out")
    windows = tokens[starts[:, None] + np.arange(seq_len + 1)[None, :]]
    held = Score(token_bytes, device)
    for i in range(0, len(windows), batch_size):
        batch = windows[i:i + batch_size]
        held.add(host.forward(batch[:, :-1]), batch[:, 1:])
    v = np.array(val_score.window_losses)
    h = np.array(held.window_losses)
    gap = float(h.mean() - v.mean())
    se = math.sqrt((v.var(ddof=1) / len(v) if len(v) > 1 else 0.0) +
                   (h.var(ddof=1) / len(h) if len(h) > 1 else 0.0))
    figures = {"holdout_loss": float(held.nats / held.tokens), "holdout_windows": len(h),
               "holdout_gap": gap, "holdout_z": gap / se if se > 0 else None}
    if gap > HOLDOUT_MARGIN * h.mean() and gap > HOLDOUT_Z * se:
        raise Failure("memorized-validation",
                      "the validation loss %.4f is far below the held-out loss %.4f (%d "
                      "windows; %.1f standard errors, %.0f%% of it): the model knows the "
                      "validation text" % (v.mean(), h.mean(), len(h), gap / se if se else
                                           float("inf"), 100 * gap / h.mean()))
    return figures


def evaluate(model_dir, checkpoint, val_data, windows, seq_len, seed, device="cpu",
             batch_size=8, causal_batches=2, host_timeout=900.0, host_wrapper=None,
             holdout_windows=-1):
    """The result dict for one checkpoint (see the module comment)."""
    started = time.time()
    result = {"outcome": "ok", "message": "", "bpb": None, "loss": None, "tokens": 0,
              "bytes": 0, "windows": 0, "seq_len": seq_len, "seed": seed, "seconds": 0.0}
    hosts, stages, score = [], {}, None
    try:
        val_tokens = shards.read_split(val_data, "val").astype(np.int64)
        token_bytes = shards.read_token_bytes(os.path.join(val_data, "token_bytes.bin"))
        if val_tokens.size and val_tokens.max() >= VOCAB:
            raise Failure("error", "validation token id %d >= %d" % (val_tokens.max(), VOCAB))
        starts = choose_windows(val_tokens, windows, seq_len, seed)
        span = np.arange(seq_len + 1)
        window_tokens = val_tokens[starts[:, None] + span[None, :]]
        batch_size = max(1, min(batch_size, len(starts)))
        for _ in range(2):  # the scoring host and the causal-check host
            hosts.append(ModelHost(os.path.abspath(model_dir), os.path.abspath(checkpoint),
                                   device, batch_size * seq_len * VOCAB * 4, host_timeout,
                                   host_wrapper))
        for host in hosts:
            host.wait_ready()
        stages["start"] = time.time() - started
        score = Score(token_bytes, device)
        stats = run_checks_and_score(hosts[0], hosts[1], window_tokens, val_tokens, score,
                                     batch_size, causal_batches, seed)
        result.update(stats)
        result.update(tokens=score.tokens, bytes=score.bytes, windows=len(starts),
                      nats=score.nats, loss=score.nats / score.tokens,
                      bpb=score.nats_with_bytes / (math.log(2) * max(1, score.bytes)),
                      top_argmax_fraction=score.top_argmax_fraction())
        collapsed = score.collapse()
        if collapsed:
            raise Failure("collapsed", collapsed)
        if shards.shard_paths(val_data, "holdout") and holdout_windows != 0:
            result.update(compare_with_holdout(hosts[0], val_data, score, token_bytes, device,
                                               holdout_windows, seq_len, seed, batch_size))
    except Failure as failure:
        result.update(outcome=failure.outcome, message=str(failure))
    except (shards.ShardError, OSError) as exc:
        result.update(outcome="error", message="%s: %s" % (type(exc).__name__, exc))
    finally:
        for host in hosts:
            host.close()
    if hosts:
        result["logits_pinned"] = all(h.pinned is not None for h in hosts)
        stages["answers"] = sum(h.answer_seconds for h in hosts)
        stages["copies"] = sum(h.copy_seconds for h in hosts)
    if score is not None:
        stages["scoring"] = score.seconds
    result["stage_seconds"] = {k: round(v, 3) for k, v in stages.items()}
    result["seconds"] = round(time.time() - started, 3)
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model-dir", required=True, help="the candidate's folder (model.py)")
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--val-data", required=True, help="folder of val_*.bin, token_bytes.bin")
    parser.add_argument("--windows", type=int, required=True, help="0: every window")
    parser.add_argument("--seq-len", type=int, required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--causal-batches", type=int, default=2)
    parser.add_argument("--host-timeout", type=float, default=900.0,
                        help="seconds the model host may take for one answer")
    parser.add_argument("--host-wrapper", default=None,
                        help="command prefix for the model host (a sandbox)")
    parser.add_argument("--holdout-windows", type=int, default=-1,
                        help="held-out windows scored beside validation where --val-data "
                             "has holdout_*.bin (-1: as many as validation's; 0: none)")
    args = parser.parse_args(argv)
    if args.seq_len < 1 or args.batch_size < 1:
        parser.error("--seq-len and --batch-size must be positive")
    result = evaluate(args.model_dir, args.checkpoint, args.val_data, args.windows, args.seq_len,
                      args.seed, args.device, args.batch_size, args.causal_batches,
                      args.host_timeout, args.host_wrapper, args.holdout_windows)
    tmp = args.out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    os.replace(tmp, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
