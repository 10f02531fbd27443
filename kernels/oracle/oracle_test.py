#!/usr/bin/env python3
"""The oracle's request/manifest protocol on the CPU (any torch, 1.13 on up).

Run with an interpreter that imports torch; exits 77 (ctest's skip) when it
cannot. kernels/sol/gpu_check.sh covers the GPU path on a GPU machine.
"""
import json
import os
import struct
import subprocess
import sys
import tempfile
import unittest

try:
    import torch  # noqa: F401
except Exception:  # noqa: BLE001
    print("oracle_test: skipped, %s cannot import torch" % sys.executable)
    sys.exit(77)

ORACLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "oracle.py")

REFERENCE = """
import torch
def run(a, b, idx):
    return a + b, idx * 2
"""


def request(out_dir, **extra):
    req = {
        "reference": REFERENCE, "entrypoint": "", "seed": 5, "rounds": 3,
        "warmups": 1, "repetitions": 3, "flush_bytes": 1 << 16, "out_dir": out_dir,
        "threads": 1,
        "input_specs": [{"name": "a", "dtype": "float32", "scalar": False},
                        {"name": "b", "dtype": "bfloat16", "scalar": False},
                        {"name": "idx", "dtype": "int32", "scalar": False}],
        "output_specs": [{"name": "c", "dtype": "float32", "scalar": False},
                         {"name": "d", "dtype": "int32", "scalar": False}],
        "workloads": [
            {"index": i, "axes": {"N": n},
             "inputs": [{"kind": "random", "value": 0, "path": "", "tensor_key": "",
                         "shape": [n]} for _ in range(3)],
             "output_shapes": [[n], [n]]}
            for i, n in enumerate((8, 33))],
    }
    req.update(extra)
    return req


def run_oracle(req):
    path = os.path.join(req["out_dir"], "req.json")
    with open(path, "w") as f:
        json.dump(req, f)
    p = subprocess.run([sys.executable, ORACLE, path], capture_output=True, text=True,
                       timeout=300)
    with open(os.path.join(req["out_dir"], "oracle_manifest.json")) as f:
        return p.returncode, json.load(f), p.stderr


def floats(path, fmt="f"):
    with open(path, "rb") as f:
        data = f.read()
    size = struct.calcsize(fmt)
    return list(struct.unpack("<%d%s" % (len(data) // size, fmt), data))


def bf16s(path):
    # bf16 is the top half of a float32.
    return [struct.unpack("<f", struct.pack("<I", h << 16))[0] for h in floats(path, "H")]


class OracleProtocolTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def test_inputs_references_and_timing(self):
        rc, m, err = run_oracle(request(self.dir))
        self.assertEqual(rc, 0, err)
        self.assertNotIn("error", m)
        self.assertEqual(m["device"], "cpu")
        self.assertEqual(len(m["workloads"]), 2)
        for wi, n in ((0, 8), (1, 33)):
            w = m["workloads"][wi]
            self.assertEqual(len(w["rounds"]), 3)
            self.assertGreater(w["t_b_ns"], 0)
            for rnd in w["rounds"]:
                a = floats(os.path.join(self.dir, rnd["inputs"][0]))
                b = bf16s(os.path.join(self.dir, rnd["inputs"][1]))
                idx = floats(os.path.join(self.dir, rnd["inputs"][2]), "i")
                c = floats(os.path.join(self.dir, rnd["outputs"][0]))
                d = floats(os.path.join(self.dir, rnd["outputs"][1]), "i")
                self.assertEqual(len(a), n)
                for x, y, z in zip(a, b, c):
                    self.assertAlmostEqual(x + y, z, places=5)
                self.assertEqual(d, [2 * v for v in idx])
            # Fresh inputs every round.
            r0 = floats(os.path.join(self.dir, w["rounds"][0]["inputs"][0]))
            r1 = floats(os.path.join(self.dir, w["rounds"][1]["inputs"][0]))
            self.assertNotEqual(r0, r1)

    def test_same_seed_same_inputs(self):
        rc, m1, _ = run_oracle(request(self.dir))
        first = floats(os.path.join(self.dir, m1["workloads"][1]["rounds"][2]["inputs"][0]))
        rc, m2, _ = run_oracle(request(self.dir))
        again = floats(os.path.join(self.dir, m2["workloads"][1]["rounds"][2]["inputs"][0]))
        self.assertEqual(first, again)

    def test_perturb_of_changes_exactly_one_element(self):
        req = request(self.dir, round_specs=[{}, {}, {"perturb_of": 0}])
        rc, m, err = run_oracle(req)
        self.assertEqual(rc, 0, err)
        for w in m["workloads"]:
            a0 = [floats(os.path.join(self.dir, f)) if i != 1 else
                  bf16s(os.path.join(self.dir, f)) for i, f in enumerate(w["rounds"][0]["inputs"])]
            a2 = [floats(os.path.join(self.dir, f)) if i != 1 else
                  bf16s(os.path.join(self.dir, f)) for i, f in enumerate(w["rounds"][2]["inputs"])]
            diffs = [(i, k) for i in range(2) for k in range(len(a0[i])) if a0[i][k] != a2[i][k]]
            self.assertEqual(len(diffs), 1, diffs)
            self.assertEqual(a0[2], a2[2])
            self.assertEqual(w["rounds"][2]["perturb_of"], 0)
            self.assertEqual(w["rounds"][2]["perturbed"]["input"], diffs[0][0])
            self.assertEqual(w["rounds"][2]["perturbed"]["index"], diffs[0][1])
            # The reference is recomputed on the perturbed inputs.
            c2 = floats(os.path.join(self.dir, w["rounds"][2]["outputs"][0]))
            c0 = floats(os.path.join(self.dir, w["rounds"][0]["outputs"][0]))
            self.assertNotEqual(c0, c2)

    def test_extra_rounds_are_appended(self):
        rc, m, err = run_oracle(request(self.dir, rounds=2, extra_rounds=[{"perturb_of": 1}]))
        self.assertEqual(rc, 0, err)
        w = m["workloads"][0]
        self.assertEqual(len(w["rounds"]), 3)
        self.assertEqual(w["rounds"][2]["perturb_of"], 1)
        self.assertNotIn("perturb_of", w["rounds"][1])

    def test_perturb_of_integer_only_inputs_swaps(self):
        req = request(self.dir, reference="import torch\ndef run(a, b, idx):\n"
                      "    return a.float() + 0, idx * 2\n", round_specs=[{}, {"perturb_of": 0}, {}])
        for spec in req["input_specs"][:2]:
            spec["dtype"] = "int64"
        req["input_specs"][0]["dtype"] = "int32"
        rc, m, err = run_oracle(req)
        self.assertEqual(rc, 0, err)
        p = m["workloads"][1]["rounds"][1]["perturbed"]
        self.assertIn("swapped_with", p)

    def test_without_reference_timing(self):
        # The harness's screen: one round of one workload, references only.
        req = request(self.dir, rounds=1, time_reference=False)
        req["workloads"] = req["workloads"][1:]
        rc, m, err = run_oracle(req)
        self.assertEqual(rc, 0, err)
        self.assertEqual(len(m["workloads"]), 1)
        w = m["workloads"][0]
        self.assertEqual(w["t_b_ns"], 0)
        self.assertNotIn("flops", w)
        self.assertEqual(len(w["rounds"]), 1)
        rnd = w["rounds"][0]
        self.assertEqual(rnd["inputs"][0], "w1_r0_in0.bin")
        a = floats(os.path.join(self.dir, rnd["inputs"][0]))
        b = bf16s(os.path.join(self.dir, rnd["inputs"][1]))
        c = floats(os.path.join(self.dir, rnd["outputs"][0]))
        self.assertEqual(len(c), 33)
        for x, y, z in zip(a, b, c):
            self.assertAlmostEqual(x + y, z, places=5)

    def test_bad_round_specs_are_errors(self):
        for specs in ([{}, {"perturb_of": 1}, {}], [{}, {"perturb_of": 7}, {}], [{}]):
            rc, m, _ = run_oracle(request(self.dir, round_specs=specs))
            self.assertEqual(rc, 1)
            self.assertIn("error", m)

    def test_cuda_request_without_gpu_says_so(self):
        if torch.cuda.is_available():
            self.skipTest("this machine has a GPU")
        rc, m, _ = run_oracle(request(self.dir, device="cuda", device_index=0))
        self.assertEqual(rc, 1)
        self.assertIn("no GPU", m["error"])

    def test_reference_failure_is_reported(self):
        rc, m, _ = run_oracle(request(self.dir, reference="def run(a, b, idx):\n    raise ValueError('boom')\n"))
        self.assertEqual(rc, 1)
        self.assertIn("boom", m["error"])


if __name__ == "__main__":
    unittest.main()
