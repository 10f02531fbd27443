# Tampers with every clock it can reach, then takes 5 ms a call: none of
# them is the one that times it.
import time

_frozen = time.perf_counter()
time.perf_counter = lambda: _frozen
time.perf_counter_ns = lambda: 0
time.monotonic = lambda: _frozen
time.time = lambda: _frozen


def run(a, b, alpha, c, head_sum):
    end = time.thread_time() + 0.005  # CPU time: sleeping would not count
    while time.thread_time() < end:
        pass
    c.copy_(a + alpha * b)
    h = c.shape[0] // 2
    head_sum.copy_(c[:h] + c[h:2 * h])
