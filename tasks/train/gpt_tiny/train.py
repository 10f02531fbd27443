"""Trains model.py's GPT on the token shards in $RATCHET_TRAIN_DATA.

One process per device, started torchrun-style (RANK, WORLD_SIZE, LOCAL_RANK,
MASTER_ADDR, MASTER_PORT); alone, it runs as a single process. Knobs come from
RATCHET_KNOB_<NAME> environment variables (README.md lists them). Training stops
at $RATCHET_BUDGET_SECONDS of its own clock (started after the untimed warm-up)
or at $RATCHET_MAX_STEPS; rank 0 then writes $RATCHET_CHECKPOINT. $RATCHET_SEED
(the job's fresh training seed), when set, is mixed into the initial weights'
seed and picks where in the shards the run starts. Events go to
the file descriptor $RATCHET_CONTROL_FD, one line each:
  phase warmup-begin | phase warmup-end | progress STEP LOSS TOKENS_PER_S | done STEPS
This script never sees validation data.
"""
import copy
import glob
import math
import os
import sys
import time

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import model as model_lib  # noqa: E402

PRESETS = {
    # Two CPU cores, about 20 s: the loss visibly falls.
    "tiny": dict(N_LAYER=2, N_HEAD=4, N_EMBD=128, SEQ_LEN=64, BATCH_SIZE=8, LR=3e-3,
                 WARMUP_STEPS=10, PRECISION="bf16"),
    # One H100 for five minutes: GPT-2 small's shape.
    "gpu": dict(N_LAYER=12, N_HEAD=12, N_EMBD=768, SEQ_LEN=1024, BATCH_SIZE=16, LR=1.5e-3,
                WARMUP_STEPS=200, PRECISION="bf16"),
}
KNOB_DEFAULTS = dict(
    PRESET="auto", SEED=1337, LR_SCALE=1.0, WARMUP_SCALE=1.0, DEPTH_SCALE=1.0, WIDTH_SCALE=1.0,
    BATCH_SCALE=1.0, WEIGHT_DECAY=0.1, SCHEDULE="cosine", OPTIMIZER="adamw",
    BETA1=0.9, BETA2=0.95, GRAD_CLIP=1.0, MIN_LR_FRACTION=0.1, TIE_EMBEDDINGS=1,
    COMPILE=0, UNTIMED_WARMUP_STEPS=0, PROGRESS_EVERY=10, **PRESETS["tiny"])
_HEADER_BYTES = 1024
_MAGIC = 20240520


def read_knobs():
    """Defaults, then the preset's values, then RATCHET_KNOB_<NAME> overrides;
    then the relative knobs scale the preset's values (one declaration of the
    search space serves every preset): LR_SCALE the learning rate,
    WARMUP_SCALE the warm-up, DEPTH_SCALE the layers, WIDTH_SCALE the heads
    (the head size stays), BATCH_SCALE the sequences per step."""
    env = lambda name: os.environ.get("RATCHET_KNOB_" + name)  # noqa: E731
    preset = env("PRESET") or KNOB_DEFAULTS["PRESET"]
    if preset == "auto":
        preset = "gpu" if torch.cuda.is_available() else "tiny"
    if preset not in PRESETS:
        raise SystemExit("RATCHET_KNOB_PRESET=%s: expected one of %s" % (preset, sorted(PRESETS)))
    knobs = dict(KNOB_DEFAULTS, **PRESETS[preset])
    for name, default in list(knobs.items()):
        raw = env(name)
        if raw is None:
            continue
        try:
            knobs[name] = type(default)(float(raw)) if isinstance(default, (int, float)) else raw
        except ValueError:
            raise SystemExit("RATCHET_KNOB_%s=%r: expected a number" % (name, raw))
    unknown = sorted(k[len("RATCHET_KNOB_"):] for k in os.environ
                     if k.startswith("RATCHET_KNOB_") and k[len("RATCHET_KNOB_"):] not in knobs)
    if unknown:
        raise SystemExit("unknown knobs: %s" % ", ".join(unknown))
    knobs["PRESET"] = preset
    knobs["LR"] *= knobs["LR_SCALE"]
    knobs["WARMUP_STEPS"] = max(1, int(round(knobs["WARMUP_STEPS"] * knobs["WARMUP_SCALE"])))
    if knobs["N_EMBD"] % knobs["N_HEAD"]:
        raise SystemExit("N_EMBD=%d is not a multiple of N_HEAD=%d" % (knobs["N_EMBD"], knobs["N_HEAD"]))
    head_size = knobs["N_EMBD"] // knobs["N_HEAD"]
    knobs["N_LAYER"] = max(1, int(round(knobs["N_LAYER"] * knobs["DEPTH_SCALE"])))
    knobs["N_HEAD"] = max(1, int(round(knobs["N_HEAD"] * knobs["WIDTH_SCALE"])))
    knobs["N_EMBD"] = knobs["N_HEAD"] * head_size
    knobs["BATCH_SIZE"] = max(1, int(round(knobs["BATCH_SIZE"] * knobs["BATCH_SCALE"])))
    return knobs


class ControlChannel:
    """Writes events to $RATCHET_CONTROL_FD on rank 0; silent elsewhere."""

    def __init__(self, rank):
        fd = os.environ.get("RATCHET_CONTROL_FD")
        self.stream = os.fdopen(int(fd), "w", buffering=1) if fd and rank == 0 else None

    def send(self, *words):
        if self.stream:
            self.stream.write(" ".join(str(w) for w in words) + "\n")


class ShardStream:
    """Batches of (inputs, targets) from train_*.bin. Each step takes world *
    B * T + 1 consecutive tokens; rank r uses its own B * T + 1 of them."""

    def __init__(self, folder, batch, seq_len, rank, world, seed=None):
        self.paths = sorted(glob.glob(os.path.join(folder, "train_*.bin")))
        if not self.paths:
            raise SystemExit("no train_*.bin in %s" % folder)
        self.batch, self.seq_len, self.rank, self.world = batch, seq_len, rank, world
        self.shard_index, self.pos = -1, 0
        rng = np.random.default_rng([seed, 0x5EED]) if seed is not None else None
        if rng is not None:  # a per-run start: another shard, another offset
            self.shard_index = int(rng.integers(len(self.paths))) - 1
        self._next_shard()
        if rng is not None:
            room = len(self.tokens) - world * batch * seq_len - 1
            self.pos = int(rng.integers(room + 1)) if room > 0 else 0

    def _next_shard(self):
        self.shard_index = (self.shard_index + 1) % len(self.paths)
        path = self.paths[self.shard_index]
        header = np.fromfile(path, dtype="<i4", count=3)
        if header[0] != _MAGIC:
            raise SystemExit("%s: not a token shard" % path)
        self.tokens = np.memmap(path, dtype="<u2", mode="r", offset=_HEADER_BYTES,
                                shape=(int(header[2]),))
        self.pos = 0
        if len(self.tokens) < self.world * self.batch * self.seq_len + 1:
            raise SystemExit("%s: too few tokens for one step" % path)

    def next(self, device):
        span = self.batch * self.seq_len
        if self.pos + self.world * span + 1 > len(self.tokens):
            self._next_shard()
        start = self.pos + self.rank * span
        chunk = torch.from_numpy(self.tokens[start:start + span + 1].astype(np.int64))
        self.pos += self.world * span
        x = chunk[:-1].view(self.batch, self.seq_len)
        y = chunk[1:].view(self.batch, self.seq_len)
        return x.to(device, non_blocking=True), y.to(device, non_blocking=True)


def make_optimizer(model, knobs):
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": knobs["WEIGHT_DECAY"]},
              {"params": no_decay, "weight_decay": 0.0}]
    if knobs["OPTIMIZER"] == "adamw":
        return torch.optim.AdamW(groups, lr=knobs["LR"], betas=(knobs["BETA1"], knobs["BETA2"]))
    if knobs["OPTIMIZER"] == "sgd":
        return torch.optim.SGD(groups, lr=knobs["LR"], momentum=knobs["BETA1"], nesterov=True)
    raise SystemExit("RATCHET_KNOB_OPTIMIZER=%s: expected adamw or sgd" % knobs["OPTIMIZER"])


def lr_factor(knobs, step, progress):
    """Linear warm-up over WARMUP_STEPS, then decay by `progress` in [0, 1]:
    the larger of the step and wall-clock fractions of the run."""
    if step < knobs["WARMUP_STEPS"]:
        return (step + 1) / knobs["WARMUP_STEPS"]
    floor = knobs["MIN_LR_FRACTION"]
    if knobs["SCHEDULE"] == "constant":
        return 1.0
    if knobs["SCHEDULE"] == "linear":
        return floor + (1 - floor) * (1 - progress)
    if knobs["SCHEDULE"] == "cosine":
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))
    raise SystemExit("RATCHET_KNOB_SCHEDULE=%s: expected cosine, linear or constant"
                     % knobs["SCHEDULE"])


def run_seed():
    """$RATCHET_SEED as an int (every rank gets the same), or None when unset."""
    raw = os.environ.get("RATCHET_SEED", "")
    if not raw:
        return None
    try:
        return int(raw) % (1 << 64)
    except ValueError:
        raise SystemExit("RATCHET_SEED=%r: expected an integer" % raw)


def main():
    knobs = read_knobs()
    seed = run_seed()
    rank = int(os.environ.get("RANK", 0))
    world = int(os.environ.get("WORLD_SIZE", 1))
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(local_rank)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    device = torch.device("cuda", local_rank) if cuda else torch.device("cpu")
    distributed = world > 1
    if distributed:
        dist.init_process_group("nccl" if cuda else "gloo")
    control = ControlChannel(rank)
    budget = float(os.environ.get("RATCHET_BUDGET_SECONDS", "inf"))
    max_steps = int(os.environ.get("RATCHET_MAX_STEPS", 0)) or None
    if budget == float("inf") and max_steps is None:
        raise SystemExit("set RATCHET_BUDGET_SECONDS or RATCHET_MAX_STEPS")
    data_dir = os.environ.get("RATCHET_TRAIN_DATA")
    if not data_dir:
        raise SystemExit("set RATCHET_TRAIN_DATA to the folder of train_*.bin")

    # The same initial weights on every rank; another run seed, other weights.
    weights_seed = knobs["SEED"]
    if seed is not None:
        mixed = np.random.SeedSequence([seed, knobs["SEED"] % (1 << 64)])
        weights_seed = int(mixed.generate_state(1, np.uint64)[0]) >> 1
    torch.manual_seed(weights_seed)
    config = model_lib.full_config(dict(
        n_layer=knobs["N_LAYER"], n_head=knobs["N_HEAD"], n_embd=knobs["N_EMBD"],
        tie_embeddings=bool(knobs["TIE_EMBEDDINGS"])))
    raw_model = model_lib.build_model(config).to(device)
    model = raw_model
    if knobs["COMPILE"] and hasattr(torch, "compile"):
        model = torch.compile(model)
    if distributed:
        model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[local_rank] if cuda else None)
    optimizer = make_optimizer(raw_model, knobs)
    autocast_dtype = {"fp32": None, "bf16": torch.bfloat16}.get(knobs["PRECISION"], "bad")
    if autocast_dtype == "bad":
        raise SystemExit("RATCHET_KNOB_PRECISION=%s: expected fp32 or bf16" % knobs["PRECISION"])
    data = ShardStream(data_dir, knobs["BATCH_SIZE"], knobs["SEQ_LEN"], rank, world, seed)

    def train_step(step, progress):
        for group in optimizer.param_groups:
            group["lr"] = knobs["LR"] * lr_factor(knobs, step, progress)
        x, y = data.next(device)
        if autocast_dtype is None:
            logits = model(x)
        else:
            with torch.autocast(device.type, dtype=autocast_dtype):
                logits = model(x)
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)).float(), y.view(-1))
        loss.backward()
        if knobs["GRAD_CLIP"] > 0:
            torch.nn.utils.clip_grad_norm_(raw_model.parameters(), knobs["GRAD_CLIP"])
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss

    # Untimed warm-up (compilation, kernel selection); every trace of it is undone.
    control.send("phase", "warmup-begin")
    if knobs["UNTIMED_WARMUP_STEPS"] > 0:
        initial = (copy.deepcopy(raw_model.state_dict()), copy.deepcopy(optimizer.state_dict()))
        saved_pos = (data.shard_index, data.pos)
        for i in range(knobs["UNTIMED_WARMUP_STEPS"]):
            train_step(i, 0.0)
        raw_model.load_state_dict(initial[0])
        optimizer.load_state_dict(initial[1])
        data.shard_index = saved_pos[0] - 1
        data._next_shard()
        data.pos = saved_pos[1]
    if cuda:
        torch.cuda.synchronize()
    control.send("phase", "warmup-end")

    start = time.time()
    last_report, last_step = start, 0
    tokens_per_step = world * knobs["BATCH_SIZE"] * knobs["SEQ_LEN"]
    step = 0
    while True:
        elapsed = time.time() - start
        progress = max(elapsed / budget, step / max_steps if max_steps else 0.0)
        # Every rank must stop at the same step: rank 0's clock decides.
        stop = torch.tensor([1 if progress >= 1.0 else 0], device=device)
        if distributed:
            dist.broadcast(stop, 0)
        if stop.item():
            break
        loss = train_step(step, min(progress, 1.0))
        step += 1
        if step % knobs["PROGRESS_EVERY"] == 0:
            now = time.time()
            rate = (step - last_step) * tokens_per_step / max(now - last_report, 1e-9)
            control.send("progress", step, "%.4f" % loss.item(), "%.0f" % rate)
            last_report, last_step = now, step

    if rank == 0:
        checkpoint = os.environ.get("RATCHET_CHECKPOINT")
        if checkpoint:
            state = {k: v.detach().float().cpu() for k, v in raw_model.state_dict().items()}
            torch.save({"config": raw_model.config, "state_dict": state, "steps": step,
                        "knobs": knobs, "seed": seed}, checkpoint + ".tmp")
            os.replace(checkpoint + ".tmp", checkpoint)
    if distributed:
        dist.barrier()
        dist.destroy_process_group()
    control.send("done", step)
    leave()


def leave():
    """Exits at once. torch 1.13's gloo process group can hang in the DDP
    reducer's destructor (it joins a thread that waits for the GIL this thread
    holds): at interpreter exit, and as soon as main()'s locals are freed when
    it returns (a rank hung there in about one two-rank run in 25 on two busy
    cores). The work is done and saved, so no destructor runs."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
    leave()
