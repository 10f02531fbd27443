# Destination passing: inputs, then the outputs to write.
import os

import torch

from helpers import half_sum


def run(a, b, alpha, c, head_sum):
    assert isinstance(alpha, float), type(alpha)  # "shape": null arrives as a number
    if os.environ.get("RATCHET_KNOB_SCALE_FIRST") == "1":
        torch.add(a, b * alpha, out=c)
    else:
        torch.add(a, b, alpha=alpha, out=c)
    head_sum.copy_(half_sum(c))
