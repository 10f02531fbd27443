"""Hosts a candidate's model for evaluate.py, in a process of its own.

Everything the candidate wrote runs here, never in evaluate.py: this process
imports the candidate's model.py, loads the checkpoint, and answers forward
requests. Whatever it sends back is treated as the candidate's output and
checked by evaluate.py, so nothing here needs to be trusted.

Protocol (fds passed by evaluate.py; integers little-endian):
  message   = kind (4 bytes) + payload length (uint64) + payload
  RDY  host -> evaluator, payload JSON {"torch": version}
  FWD  evaluator -> host, payload uint32 B, uint32 T, then B*T int32 tokens
  LOG  host -> evaluator, payload uint32 B, T, V: logits[..., :50257] as
       float32 written at the start of the shared logits buffer
  BAD  host -> evaluator, payload text: the forward returned no logits tensor
  ERR  host -> evaluator, payload text: the last line of a traceback
  BYE  evaluator -> host: exit
"""
import argparse
import importlib.util
import json
import mmap
import os
import struct
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pinned  # noqa: E402 - ratchet's, imported before any candidate path is on sys.path

HEADER = struct.Struct("<4sQ")
VOCAB_SIZE = 50257


def read_exact(fd, n):
    chunks = []
    while n:
        chunk = os.read(fd, min(n, 1 << 24))
        if not chunk:
            raise EOFError("evaluator closed the pipe")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def send(fd, kind, payload=b""):
    data = HEADER.pack(kind, len(payload)) + payload
    while data:
        data = data[os.write(fd, data):]


def last_line(exc):
    lines = traceback.format_exception_only(type(exc), exc)
    return lines[-1].strip() if lines else type(exc).__name__


def load_model(model_dir, checkpoint, device):
    import torch
    kwargs = {"map_location": "cpu"}
    if "weights_only" in torch.load.__code__.co_varnames:
        # Unpickling may run code, but so may model.py: this process is the
        # candidate's anyway. torch 1.13's weights-only loader refuses floats.
        kwargs["weights_only"] = False
    state = torch.load(checkpoint, **kwargs)
    if not isinstance(state, dict) or "config" not in state or "state_dict" not in state:
        raise ValueError("checkpoint must be a dict with 'config' and 'state_dict'")
    sys.path.insert(0, model_dir)  # model.py may import its sibling files
    spec = importlib.util.spec_from_file_location("candidate_model",
                                                  os.path.join(model_dir, "model.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.build_model(state["config"])
    model.load_state_dict(state["state_dict"])
    return model.to(device).eval()


def serve(model, device, requests, responses, logits_buffer):
    import numpy as np
    import torch
    while True:
        kind, length = HEADER.unpack(read_exact(requests, HEADER.size))
        payload = read_exact(requests, length)
        if kind == b"BYE\0":
            return
        batch, seq_len = struct.unpack_from("<II", payload)
        tokens = np.frombuffer(payload, dtype="<i4", offset=8).reshape(batch, seq_len)
        idx = torch.from_numpy(tokens.astype(np.int64)).to(device)
        try:
            with torch.no_grad():
                logits = model(idx)
        except Exception as exc:  # noqa: BLE001 - reported, not hidden
            send(responses, b"ERR\0", ("forward raised " + last_line(exc)).encode())
            continue
        if type(logits) is not torch.Tensor or logits.dim() != 3:
            what = type(logits).__name__
            if isinstance(logits, torch.Tensor):
                what = "a tensor of shape %s" % list(logits.shape)
            send(responses, b"BAD\0", ("forward returned %s, expected logits [B, T, V]"
                                       % what).encode())
            continue
        b, t, v = logits.shape
        if v >= VOCAB_SIZE and b * t * VOCAB_SIZE * 4 <= len(logits_buffer):
            # One copy, from the device (and dtype) the model answered in
            # straight into the shared buffer: a batch's logits are 1.6 GB.
            view = np.frombuffer(logits_buffer, dtype=np.float32, count=b * t * VOCAB_SIZE)
            torch.from_numpy(view).view(b, t, VOCAB_SIZE).copy_(logits.detach()[..., :VOCAB_SIZE])
        send(responses, b"LOG\0", struct.pack("<III", b, t, v))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--request-fd", type=int, required=True)
    parser.add_argument("--response-fd", type=int, required=True)
    parser.add_argument("--logits-fd", type=int, required=True)
    parser.add_argument("--logits-bytes", type=int, required=True)
    args = parser.parse_args()
    os.dup2(2, 1)  # the candidate's prints go to the log, never into the protocol
    logits_buffer = mmap.mmap(args.logits_fd, args.logits_bytes)
    try:
        import torch
        pinned.pin(logits_buffer, args.device)  # before the candidate's code runs
        model = load_model(os.path.abspath(args.model_dir), args.checkpoint, args.device)
    except BaseException as exc:  # noqa: BLE001 - any failure of candidate code
        traceback.print_exc()
        send(args.response_fd, b"ERR\0", last_line(exc).encode())
        return 1
    send(args.response_fd, b"RDY\0", json.dumps({"torch": torch.__version__}).encode())
    serve(model, args.device, args.request_fd, args.response_fd, logits_buffer)
    return 0


if __name__ == "__main__":
    sys.exit(main())
