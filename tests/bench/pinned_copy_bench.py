"""Times one batch of logits crossing the shared buffer, pageable against
page-locked (training/eval/pinned.py), both ways, in the same run.

  python3 tests/bench/pinned_copy_bench.py [--mib 1571] [--reps 10]

A memfd mapping the size of one batch's logits (8 x 1,024 x 50,257 float32)
is filled with random numbers (never zeros), then copied device->buffer (the
model host's side) and buffer->device (the evaluator's) `reps` times after a
warm-up, each copy synchronised; medians are printed with their ratio.
"""
import argparse
import mmap
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "training", "eval"))
import pinned  # noqa: E402
import torch  # noqa: E402


def median_seconds(copy, reps):
    copy()  # warm-up
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        copy()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(buffer, gpu, reps, lock):
    address = pinned.pin(buffer, "cuda") if lock else None
    if lock and address is None:
        return None
    host = torch.frombuffer(buffer, dtype=torch.float32)
    to_host = median_seconds(lambda: host.copy_(gpu), reps)
    to_device = median_seconds(lambda: gpu.copy_(host), reps)
    assert torch.equal(host[:4096].cuda(), gpu[:4096])
    del host
    pinned.unpin(address)
    return to_host, to_device


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=1571)
    parser.add_argument("--reps", type=int, default=10)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("pinned_copy_bench: no GPU, skipped")
        return 77
    size = args.mib << 20
    fd = os.memfd_create("ratchet-bench-logits")
    os.ftruncate(fd, size)
    buffer = mmap.mmap(fd, size)
    gpu = torch.randn(size // 4, device="cuda")
    rows = [("pageable", measure(buffer, gpu, args.reps, False)),
            ("page-locked", measure(buffer, gpu, args.reps, True))]
    print(f"{torch.cuda.get_device_name()}: {args.mib} MiB, median of {args.reps}")
    print(f"{'buffer':<12} {'device->buffer':>16} {'buffer->device':>16}")
    for name, got in rows:
        if got is None:
            print(f"{name:<12} {'(could not lock)':>16}")
            continue
        print(f"{name:<12} {got[0] * 1e3:>10.1f} ms {size / got[0] / 1e9:>4.0f}GB/s"
              f" {got[1] * 1e3:>8.1f} ms {size / got[1] / 1e9:>4.0f}GB/s")
    if rows[1][1] is not None:
        print(f"ratio pageable/page-locked: device->buffer x{rows[0][1][0] / rows[1][1][0]:.2f},"
              f" buffer->device x{rows[0][1][1] / rows[1][1][1]:.2f}")
    buffer.close()
    os.close(fd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
