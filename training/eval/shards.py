"""Token shards in the speedrun's format, and the token byte-length table.

A shard is a header of 256 little-endian int32 (magic 20240520, version 1,
token count, the rest zero) followed by the tokens as little-endian uint16
GPT-2 ids. `token_bytes.bin` holds one little-endian uint16 per vocabulary id:
the UTF-8 length of that token's text (0 for end-of-text, 50256).
"""
import glob
import os

import numpy as np

MAGIC = 20240520
VERSION = 1
HEADER_INTS = 256
HEADER_BYTES = HEADER_INTS * 4
VOCAB_SIZE = 50257  # GPT-2; ids >= this never occur in a shard


class ShardError(ValueError):
    pass


def write_shard(path, tokens):
    """Writes `tokens` (ints in [0, 65535]) as one shard, atomically."""
    tokens = np.asarray(tokens)
    if tokens.ndim != 1:
        raise ShardError("tokens must be one-dimensional")
    if tokens.size and (tokens.min() < 0 or tokens.max() > 0xFFFF):
        raise ShardError("token ids must fit uint16")
    header = np.zeros(HEADER_INTS, dtype="<i4")
    header[0], header[1], header[2] = MAGIC, VERSION, tokens.size
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(header.tobytes())
        f.write(tokens.astype("<u2").tobytes())
    os.replace(tmp, path)


def read_shard(path):
    """The tokens of one shard as a read-only uint16 array (memory-mapped)."""
    size = os.path.getsize(path)
    if size < HEADER_BYTES:
        raise ShardError("%s: shorter than the 1024-byte header" % path)
    header = np.fromfile(path, dtype="<i4", count=HEADER_INTS)
    if header[0] != MAGIC:
        raise ShardError("%s: magic %d, expected %d" % (path, header[0], MAGIC))
    if header[1] != VERSION:
        raise ShardError("%s: version %d, expected %d" % (path, header[1], VERSION))
    count = int(header[2])
    if count < 0 or size != HEADER_BYTES + 2 * count:
        raise ShardError("%s: header says %d tokens, file holds %d bytes of tokens"
                         % (path, count, size - HEADER_BYTES))
    if count == 0:
        return np.zeros(0, dtype=np.uint16)
    return np.memmap(path, dtype="<u2", mode="r", offset=HEADER_BYTES, shape=(count,))


def shard_paths(folder, split):
    """`split`_*.bin in `folder`, in name order (the order they are read in)."""
    return sorted(glob.glob(os.path.join(folder, "%s_*.bin" % split)))


def read_split(folder, split):
    """All tokens of one split, shards concatenated in name order."""
    paths = shard_paths(folder, split)
    if not paths:
        raise ShardError("no %s_*.bin in %s" % (split, folder))
    parts = [read_shard(p) for p in paths]
    return np.concatenate(parts) if len(parts) > 1 else np.array(parts[0])


def write_token_bytes(path, lengths):
    lengths = np.asarray(lengths)
    if lengths.ndim != 1 or lengths.size < VOCAB_SIZE:
        raise ShardError("token_bytes needs one length per id, at least %d" % VOCAB_SIZE)
    with open(path + ".tmp", "wb") as f:
        f.write(lengths.astype("<u2").tobytes())
    os.replace(path + ".tmp", path)


def read_token_bytes(path):
    """Byte length per vocabulary id, as int64 (at least VOCAB_SIZE entries)."""
    lengths = np.fromfile(path, dtype="<u2").astype(np.int64)
    if lengths.size < VOCAB_SIZE:
        raise ShardError("%s: %d entries, expected at least %d" % (path, lengths.size, VOCAB_SIZE))
    return lengths


def write_repeating_pattern(folder, period=61, tokens=100000, seed=0):
    """A data folder for tests: one token pattern repeated (a model learns it
    fast), 80% of it as train_000000.bin and the rest as val_000000.bin, and
    a token_bytes.bin of random lengths 1-6 (0 for end-of-text)."""
    rng = np.random.default_rng(seed)
    pattern = rng.integers(0, 50256, size=period)
    stream = np.tile(pattern, tokens // period + 1)[:tokens]
    cut = tokens * 4 // 5
    os.makedirs(folder)
    write_shard(os.path.join(folder, "train_000000.bin"), stream[:cut])
    write_shard(os.path.join(folder, "val_000000.bin"), stream[cut:])
    lengths = rng.integers(1, 7, size=50257)
    lengths[50256] = 0
    write_token_bytes(os.path.join(folder, "token_bytes.bin"), lengths)

