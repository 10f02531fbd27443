#!/usr/bin/env python3
"""Tests of evaluate.py (and of tasks/train/gpt_tiny through it).

Run with an interpreter that imports torch (/usr/bin/python3 on Debian); exits
77, ctest's skip, when it cannot. The slow end-to-end test runs alone with
  evaluate_test.py TinyGptTest
"""
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import unittest

try:
    import numpy as np
    import torch
except ImportError:
    print("evaluate_test: skipped, %s cannot import torch" % sys.executable)
    sys.exit(77)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
GPT_TINY = os.path.join(ROOT, "tasks", "train", "gpt_tiny")
sys.path.insert(0, HERE)
import evaluate  # noqa: E402
import shards  # noqa: E402

VOCAB = shards.VOCAB_SIZE
SEQ_LEN = 32

# A low-rank bigram model: logits depend on the current token only.
BIGRAM = """
import torch
import torch.nn as nn

class Bigram(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.emb = nn.Embedding(config["vocab_size"], config["rank"])
        self.head = nn.Linear(config["rank"], config["vocab_size"])

    def forward(self, idx):
        return self.head(self.emb(idx))

def build_model(config):
    return Bigram(config)
"""

# Planted hacks: each replaces or patches part of the honest bigram model.
LOOKS_AHEAD = BIGRAM.replace(
    "return self.head(self.emb(idx))",
    "nxt = torch.cat([idx[:, 1:], idx[:, -1:]], dim=1)\n"
    "        return self.head(self.emb(idx)) + 30.0 * nn.functional.one_hot(nxt, 50257)")
NAN_LOGITS = BIGRAM.replace(
    "return self.head(self.emb(idx))",
    "out = self.head(self.emb(idx))\n        out[0, -1, 7] = float('nan')\n        return out")
CONSTANT = BIGRAM.replace("return self.head(self.emb(idx))",
                          "return self.head.bias.expand(idx.shape[0], idx.shape[1], -1)")
NOISY = BIGRAM.replace("return self.head(self.emb(idx))",
                       "out = self.head(self.emb(idx))\n        return out + torch.randn_like(out)")
# Looks ahead, and answers any row that shares a prefix with a row it has
# answered before with its earlier logits for that prefix, so that within one
# process a causal check sees no change.
REPLAYS_PREFIXES = LOOKS_AHEAD.replace("def build_model(config):", """
class Replaying(Bigram):
    seen = []

    def forward(self, idx):
        out = super().forward(idx)
        for r, row in enumerate(idx.tolist()):
            for old_row, old_out in self.seen:
                n = 0
                while n < len(row) and row[n] == old_row[n]:
                    n += 1
                out[r, :n] = old_out[:n]
            self.seen.append((row, out[r].clone()))
        return out

def build_model(config):
    return Replaying(config)

def unused(config):""")
RAISES_ON_IMPORT = BIGRAM + "\nraise RuntimeError('model.py refuses to load')\n"
# Patches every loss function it can reach, so that a loss computed in the
# process that imported it would come out near zero.
PATCHES_TORCH = BIGRAM + """
import torch.nn.functional as F
_fake = lambda x, *a, **k: torch.zeros_like(x)
F.log_softmax = _fake
torch.log_softmax = _fake
torch.Tensor.log_softmax = _fake
torch.logsumexp = lambda x, *a, **k: x.max(-1).values
F.cross_entropy = lambda *a, **k: torch.tensor(0.01)
torch.Tensor.sum = lambda self, *a, **k: torch.tensor(0.0)
print("patched torch")
"""


def write_pattern_data(folder, n_train, n_val, period, seed=0):
    """Shards of a repeating random pattern (a few noisy tokens), and random
    byte lengths of 1-6 per token id (0 for end-of-text)."""
    rng = np.random.default_rng(seed)
    pattern = rng.integers(0, VOCAB - 1, size=period)
    tokens = np.tile(pattern, (n_train + n_val) // period + 1)[:n_train + n_val]
    noise = rng.random(tokens.size) < 0.02
    tokens[noise] = rng.integers(0, VOCAB, size=int(noise.sum()))
    tokens[::97] = 50256  # end-of-text now and then: 0 bytes
    os.makedirs(folder, exist_ok=True)
    shards.write_shard(os.path.join(folder, "train_000.bin"), tokens[:n_train])
    shards.write_shard(os.path.join(folder, "val_000.bin"), tokens[n_train:])
    lengths = rng.integers(1, 7, size=VOCAB)
    lengths[50256] = 0
    shards.write_token_bytes(os.path.join(folder, "token_bytes.bin"), lengths)
    return tokens[n_train:], lengths


def write_model(folder, source, config, seed=0):
    """model.py from `source` and a checkpoint of its freshly built weights."""
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "model.py"), "w") as f:
        f.write(textwrap.dedent(source))
    torch.manual_seed(seed)
    namespace = {}
    exec(compile(BIGRAM, "bigram", "exec"), namespace)  # the honest weights for every variant
    model = namespace["build_model"](config)
    checkpoint = os.path.join(folder, "checkpoint.pt")
    torch.save({"config": config, "state_dict": model.state_dict()}, checkpoint)
    return checkpoint, {k: v.double().numpy() for k, v in model.state_dict().items()}


def bigram_bpb_by_hand(weights, val_tokens, lengths, seq_len):
    """BPB over every window, in float64 with numpy only."""
    def log_probs(current):  # one row of the bigram table, never the whole table
        row = weights["emb.weight"][current] @ weights["head.weight"].T + weights["head.bias"]
        top = row.max()
        return row - (top + np.log(np.exp(row - top).sum()))

    nats = nbytes = 0.0
    for w in range(len(val_tokens) // (seq_len + 1)):
        window = val_tokens[w * (seq_len + 1):(w + 1) * (seq_len + 1)]
        for current, target in zip(window[:-1], window[1:]):
            if lengths[target] > 0:
                nats -= log_probs(current)[target]
                nbytes += lengths[target]
    return nats / (math.log(2) * nbytes)


class EvaluatorFixture(unittest.TestCase):
    """Pattern data and a model folder per test; no tests of its own."""
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="ratchet-eval-test-")
        cls.data = os.path.join(cls.tmp, "data")
        cls.val_tokens, cls.lengths = write_pattern_data(cls.data, 4000, 12 * (SEQ_LEN + 1) + 5, 11)
        cls.config = {"vocab_size": VOCAB, "rank": 8}

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def run_model(self, name, source, windows=0, **kwargs):
        folder = os.path.join(self.tmp, name)
        checkpoint, weights = write_model(folder, source, self.config)
        result = evaluate.evaluate(folder, checkpoint, self.data, windows, SEQ_LEN, seed=5,
                                   batch_size=4, **kwargs)
        return result, weights


class EvaluatorTest(EvaluatorFixture):
    def test_bpb_matches_a_computation_by_hand(self):
        result, weights = self.run_model("bigram", BIGRAM)
        self.assertEqual(result["outcome"], "ok", result["message"])
        expected = bigram_bpb_by_hand(weights, self.val_tokens, self.lengths, SEQ_LEN)
        self.assertAlmostEqual(result["bpb"], expected, delta=1e-6 * expected)
        self.assertEqual(result["windows"], 12)
        self.assertEqual(result["tokens"], 12 * SEQ_LEN)
        self.assertEqual(result["causal_rows"], 8)  # two batches of four
        self.assertFalse(result["logits_pinned"])  # page-locking is for GPUs only
        self.assertEqual(result["max_causal_diff"], 0.0)
        # Where the time went: every stage, none more than the whole.
        stages = result["stage_seconds"]
        self.assertEqual(sorted(stages), ["answers", "copies", "scoring", "start"])
        for name, seconds in stages.items():
            self.assertGreaterEqual(seconds, 0.0, name)
        self.assertLessEqual(sum(stages.values()), result["seconds"] + 0.01)

    def test_patched_torch_in_model_changes_nothing(self):
        honest, _ = self.run_model("honest", BIGRAM)
        patched, _ = self.run_model("patches", PATCHES_TORCH)
        self.assertEqual(patched["outcome"], "ok", patched["message"])
        self.assertEqual(patched["bpb"], honest["bpb"])
        self.assertEqual(patched["loss"], honest["loss"])

    def test_looking_ahead_is_a_causal_leak(self):
        result, _ = self.run_model("looks_ahead", LOOKS_AHEAD)
        self.assertEqual(result["outcome"], "causal-leak", result)
        self.assertIn("moved the logits", result["message"])

    def test_replaying_earlier_answers_does_not_hide_a_leak(self):
        result, _ = self.run_model("replays", REPLAYS_PREFIXES)
        self.assertEqual(result["outcome"], "causal-leak", result)

    def test_nan_logits_are_non_finite(self):
        result, _ = self.run_model("nan", NAN_LOGITS)
        self.assertEqual(result["outcome"], "non-finite", result)

    def test_constant_output_is_collapsed(self):
        result, _ = self.run_model("constant", CONSTANT)
        self.assertEqual(result["outcome"], "collapsed", result)

    def test_random_output_is_bad_output(self):
        result, _ = self.run_model("noisy", NOISY)
        self.assertEqual(result["outcome"], "bad-output", result)
        self.assertIn("same input", result["message"])

    def test_model_that_raises_on_import_is_an_error(self):
        result, _ = self.run_model("raises", RAISES_ON_IMPORT)
        self.assertEqual(result["outcome"], "error", result)
        self.assertEqual(result["message"], "RuntimeError: model.py refuses to load")

    def test_command_line_writes_the_result_file(self):
        folder = os.path.join(self.tmp, "cli")
        checkpoint, _ = write_model(folder, BIGRAM, self.config)
        out = os.path.join(self.tmp, "cli.json")
        subprocess.run([sys.executable, os.path.join(HERE, "evaluate.py"), "--model-dir", folder,
                        "--checkpoint", checkpoint, "--val-data", self.data, "--windows", "5",
                        "--seq-len", str(SEQ_LEN), "--seed", "3", "--out", out], check=True)
        with open(out) as f:
            result = json.load(f)
        self.assertEqual(result["outcome"], "ok", result["message"])
        self.assertEqual(result["windows"], 5)
        for key in ("bpb", "loss", "tokens", "bytes", "seconds", "message"):
            self.assertIn(key, result)


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun_command(nproc):
    # A port of its own: torchrun's default, 29500, may be another run's.
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=%d" % nproc,
               "--master_addr=127.0.0.1", "--master_port=%d" % free_port()]
    if sys.version_info >= (3, 11) and torch.__version__ < "2":
        # torch 1.13's launcher cannot parse its default "--redirects 0" on
        # Python 3.11 (enum change); any explicit redirect works around it.
        command += ["--redirects", "1", "--tee", "1"]
    return command + [os.path.join(GPT_TINY, "train.py")]


# Carries the validation text in its own source (as anyone who knows the
# public text and the split could write it): a table from each 3-token
# context of that text to the token after it, looked up at every position.
# Causal, deterministic, finite and not collapsed.
MEMORIZER = BIGRAM.replace("def build_model(config):", """
KNOWN = {}

def _learn(text):
    for i in range(len(text) - 3):
        KNOWN[tuple(text[i:i + 3])] = text[i + 3]

class Memorizer(Bigram):
    def forward(self, idx):
        out = super().forward(idx)
        rows = idx.tolist()
        for r, row in enumerate(rows):
            for t in range(2, len(row)):
                nxt = KNOWN.get(tuple(row[t - 2:t + 1]))
                if nxt is not None:
                    out[r, t, nxt] += 40.0
        return out

def build_model(config):
    return Memorizer(config)

def unused(config):""")


def write_text_data(folder, val, holdout, vocab_used=400, seed=3):
    """Validation and held-out splits of independent random text over a small
    part of the vocabulary (what two sets of documents are to a model that
    has learnt neither), and token byte lengths of 1-6."""
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    tokens = {}
    for split, n in (("train", 2000), ("val", val), ("holdout", holdout)):
        tokens[split] = rng.integers(0, vocab_used, size=n)
        shards.write_shard(os.path.join(folder, "%s_000.bin" % split), tokens[split])
    lengths = rng.integers(1, 7, size=VOCAB)
    lengths[50256] = 0
    shards.write_token_bytes(os.path.join(folder, "token_bytes.bin"), lengths)
    return tokens


class HoldoutTest(unittest.TestCase):
    """A held-out split beside validation: an honest model scores alike on
    both; one that carries the validation text is memorized-validation."""
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="ratchet-holdout-test-")
        cls.data = os.path.join(cls.tmp, "data")
        cls.tokens = write_text_data(cls.data, 16 * (SEQ_LEN + 1), 16 * (SEQ_LEN + 1))
        cls.config = {"vocab_size": VOCAB, "rank": 8}

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def run_model(self, name, source, data=None, **kwargs):
        folder = os.path.join(self.tmp, name)
        checkpoint, _ = write_model(folder, source, self.config)
        return evaluate.evaluate(folder, checkpoint, data or self.data, 0, SEQ_LEN, seed=5,
                                 batch_size=4, **kwargs)

    def memorizer_of(self, text):
        return MEMORIZER + "\n_learn(%r)\n" % [int(t) for t in text]

    def test_an_honest_model_scores_alike_on_both(self):
        result = self.run_model("honest", BIGRAM)
        self.assertEqual(result["outcome"], "ok", result["message"])
        self.assertEqual(result["holdout_windows"], 16)
        self.assertLess(abs(result["holdout_gap"]), 0.05 * result["holdout_loss"], result)

    def test_carried_validation_text_is_memorized_validation(self):
        result = self.run_model("memorizer", self.memorizer_of(self.tokens["val"]))
        self.assertEqual(result["outcome"], "memorized-validation", result)
        self.assertIn("knows the validation text", result["message"])

    def test_text_it_cannot_know_is_not_caught_and_not_needed(self):
        # Carrying the held-out text instead only lowers the held-out loss.
        result = self.run_model("knows_holdout", self.memorizer_of(self.tokens["holdout"]))
        self.assertEqual(result["outcome"], "ok", result["message"])
        self.assertLess(result["holdout_gap"], 0)

    def test_without_a_held_out_split_or_with_none_asked_nothing_is_compared(self):
        plain = os.path.join(self.tmp, "plain")
        os.makedirs(plain, exist_ok=True)
        for name in ("train_000.bin", "val_000.bin", "token_bytes.bin"):
            shutil.copy(os.path.join(self.data, name), plain)
        text = self.memorizer_of(self.tokens["val"])
        for result in (self.run_model("memorizer_plain", text, data=plain),
                       self.run_model("memorizer_none", text, holdout_windows=0)):
            self.assertEqual(result["outcome"], "ok", result["message"])
            self.assertNotIn("holdout_loss", result)
            self.assertLess(result["loss"], 1.0)  # what the check is there for


@unittest.skipUnless(torch.cuda.is_available(), "needs a GPU (training_eval.cuda)")
class CudaEvaluatorTest(EvaluatorFixture):
    """The evaluator on a GPU: page-locked logits buffers, the same BPB as on
    the CPU, and a guard still catching its planted hack."""

    def test_gpu_scores_as_the_cpu_with_pinned_buffers(self):
        on_cpu, weights = self.run_model("bigram-cpu", BIGRAM)
        on_gpu, _ = self.run_model("bigram-gpu", BIGRAM, device="cuda")
        self.assertEqual(on_gpu["outcome"], "ok", on_gpu["message"])
        self.assertFalse(on_cpu["logits_pinned"])
        self.assertTrue(on_gpu["logits_pinned"])
        expected = bigram_bpb_by_hand(weights, self.val_tokens, self.lengths, SEQ_LEN)
        self.assertAlmostEqual(on_gpu["bpb"], expected, delta=1e-5 * expected)
        self.assertAlmostEqual(on_gpu["bpb"], on_cpu["bpb"], delta=1e-5 * expected)
        print("\nGPU evaluation %.2f s, stages %s" % (on_gpu["seconds"], on_gpu["stage_seconds"]),
              file=sys.stderr)

    def test_looking_ahead_is_a_causal_leak_on_the_gpu(self):
        result, _ = self.run_model("ahead-gpu", LOOKS_AHEAD, device="cuda")
        self.assertEqual(result["outcome"], "causal-leak", result)


class TinyGptTest(unittest.TestCase):
    """tasks/train/gpt_tiny trained by 2 gloo processes, then evaluated."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="ratchet-gpt-tiny-test-")
        cls.data = os.path.join(cls.tmp, "data")
        write_pattern_data(cls.data, 120000, 8 * 65 + 10, 13, seed=1)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def env(self, **extra):
        env = dict(os.environ, RATCHET_TRAIN_DATA=self.data, OMP_NUM_THREADS="1")
        env.update(extra)
        return env

    def test_control_channel_and_checkpoint(self):
        checkpoint = os.path.join(self.tmp, "three_steps.pt")
        read_end, write_end = os.pipe()
        process = subprocess.Popen(
            [sys.executable, os.path.join(GPT_TINY, "train.py")], pass_fds=(write_end,),
            env=self.env(RATCHET_MAX_STEPS="3", RATCHET_CHECKPOINT=checkpoint,
                         RATCHET_CONTROL_FD=str(write_end), RATCHET_KNOB_PROGRESS_EVERY="1"))
        os.close(write_end)
        with os.fdopen(read_end) as control:
            events = control.read().split("\n")
        self.assertEqual(process.wait(timeout=120), 0)
        self.assertEqual(events[:2], ["phase warmup-begin", "phase warmup-end"])
        progress = [e.split() for e in events[2:5]]
        self.assertEqual([p[:2] for p in progress], [["progress", "1"], ["progress", "2"],
                                                     ["progress", "3"]])
        self.assertGreater(float(progress[0][2]), 5.0)  # an untrained loss, in nats
        self.assertEqual(events[5:], ["done 3", ""])
        state = torch.load(checkpoint)
        self.assertEqual(state["steps"], 3)
        self.assertEqual(state["config"]["n_layer"], 2)

    def test_trained_model_beats_untrained(self):
        checkpoint = os.path.join(self.tmp, "trained.pt")
        started = time.time()
        # 30 steps, however long a busy machine takes for them (~15 s on an idle
        # one): a time budget would make the outcome depend on the host's speed.
        subprocess.run(torchrun_command(2), check=True, stdout=subprocess.DEVNULL, timeout=1200,
                       env=self.env(RATCHET_CHECKPOINT=checkpoint, RATCHET_MAX_STEPS="30"))
        train_seconds = time.time() - started
        trained = torch.load(checkpoint)
        untrained = os.path.join(self.tmp, "untrained.pt")
        sys.path.insert(0, GPT_TINY)
        import model as gpt_tiny
        torch.manual_seed(0)
        fresh = gpt_tiny.build_model(trained["config"])
        torch.save({"config": fresh.config, "state_dict": fresh.state_dict()}, untrained)

        results = {}
        for name, path in (("untrained", untrained), ("trained", checkpoint)):
            results[name] = evaluate.evaluate(GPT_TINY, path, self.data, 8, 64, seed=11,
                                              batch_size=4)
            self.assertEqual(results[name]["outcome"], "ok", results[name]["message"])
        print("\ngpt_tiny: %d steps in %.1f s (2 gloo ranks); BPB %.3f untrained, %.3f trained;"
              " evaluation %.1f s" % (trained["steps"], train_seconds, results["untrained"]["bpb"],
                                     results["trained"]["bpb"], results["trained"]["seconds"]),
              file=sys.stderr)
        self.assertEqual(trained["steps"], 30)
        self.assertLess(results["trained"]["bpb"], 0.6 * results["untrained"]["bpb"])


if __name__ == "__main__":
    if sys.argv[1:2] == ["CudaEvaluatorTest"] and not torch.cuda.is_available():
        print("evaluate_test CudaEvaluatorTest: skipped, no GPU")
        sys.exit(77)
    unittest.main()
