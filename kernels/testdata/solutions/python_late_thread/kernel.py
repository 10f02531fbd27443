# Thread injection: returns at once and writes the outputs from a thread
# after the call has answered (SOL-ExecBench's thread-injection guard).
import threading
import time


def _finish(a, b, alpha, c, head_sum):
    time.sleep(0.002)
    c.copy_(a + alpha * b)
    h = c.shape[0] // 2
    head_sum.copy_(c[:h] + c[h:2 * h])


def run(a, b, alpha, c, head_sum):
    threading.Thread(target=_finish, args=(a, b, alpha, c, head_sum)).start()
