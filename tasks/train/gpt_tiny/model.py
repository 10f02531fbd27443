"""A compact GPT: token embedding, rotary positions, pre-norm blocks of causal
self-attention and an MLP, a final norm and a (tied by default) output head.

The evaluator loads this file by path and calls `build_model(config)` with the
config dict stored in the checkpoint, then `model(idx)` with idx LongTensor
[B, T]; the forward returns logits [B, T, vocab_size] (vocab_size >= 50257).
Runs on torch 1.13 and 2.x.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

DEFAULT_CONFIG = {
    "vocab_size": 50304,   # GPT-2's 50257 padded to a multiple of 128
    "n_layer": 2,
    "n_head": 4,
    "n_embd": 128,
    "mlp_ratio": 4,
    "tie_embeddings": True,
    "rope_base": 10000.0,
}

_HAS_SDPA = hasattr(F, "scaled_dot_product_attention")


def full_config(config):
    """`config` with every missing key set to its default."""
    merged = dict(DEFAULT_CONFIG)
    merged.update(config or {})
    return merged


def rms_norm(x, eps=1e-6):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)


def rotary_tables(seq_len, head_dim, base, device):
    inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, 2, device=device).float() / head_dim))
    angles = torch.outer(torch.arange(seq_len, device=device).float(), inv_freq)
    return angles.cos()[None, None], angles.sin()[None, None]  # [1, 1, T, head_dim/2]


def apply_rotary(x, cos, sin):
    x1, x2 = x.float().chunk(2, dim=-1)
    rotated = torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)
    return rotated.type_as(x)


class CausalSelfAttention(nn.Module):
    def __init__(self, n_embd, n_head):
        super().__init__()
        assert n_embd % n_head == 0, "n_embd must be a multiple of n_head"
        self.n_head = n_head
        self.qkv = nn.Linear(n_embd, 3 * n_embd, bias=False)
        self.proj = nn.Linear(n_embd, n_embd, bias=False)

    def forward(self, x, cos, sin):
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        shape = (B, T, self.n_head, C // self.n_head)
        q, k, v = (t.view(shape).transpose(1, 2) for t in (q, k, v))  # [B, H, T, D]
        q, k = apply_rotary(rms_norm(q), cos, sin), apply_rotary(rms_norm(k), cos, sin)
        if _HAS_SDPA:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            scores = (q @ k.transpose(-2, -1)) / math.sqrt(q.size(-1))
            future = torch.ones(T, T, dtype=torch.bool, device=x.device).triu(1)
            scores = scores.masked_fill(future, float("-inf"))
            y = F.softmax(scores.float(), dim=-1).type_as(v) @ v
        return self.proj(y.transpose(1, 2).reshape(B, T, C))


class MLP(nn.Module):
    def __init__(self, n_embd, ratio):
        super().__init__()
        self.up = nn.Linear(n_embd, ratio * n_embd, bias=False)
        self.down = nn.Linear(ratio * n_embd, n_embd, bias=False)

    def forward(self, x):
        return self.down(F.gelu(self.up(x)))


class Block(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.attn = CausalSelfAttention(cfg["n_embd"], cfg["n_head"])
        self.mlp = MLP(cfg["n_embd"], cfg["mlp_ratio"])

    def forward(self, x, cos, sin):
        x = x + self.attn(rms_norm(x), cos, sin)
        return x + self.mlp(rms_norm(x))


class GPT(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = full_config(config)
        cfg = self.config
        self.wte = nn.Embedding(cfg["vocab_size"], cfg["n_embd"])
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg["n_layer"]))
        self.lm_head = nn.Linear(cfg["n_embd"], cfg["vocab_size"], bias=False)
        if cfg["tie_embeddings"]:
            self.lm_head.weight = self.wte.weight
        self._init_weights()

    def _init_weights(self):
        std = 0.02
        # Residual outputs start small so that deep stacks begin near identity.
        proj_std = std / math.sqrt(2 * self.config["n_layer"])
        for name, p in self.named_parameters():
            if name.endswith("proj.weight") or name.endswith("down.weight"):
                nn.init.normal_(p, 0.0, proj_std)
            else:
                nn.init.normal_(p, 0.0, std)

    def forward(self, idx):
        B, T = idx.shape
        head_dim = self.config["n_embd"] // self.config["n_head"]
        cos, sin = rotary_tables(T, head_dim, self.config["rope_base"], idx.device)
        x = self.wte(idx)
        for block in self.blocks:
            x = block(x, cos, sin)
        return self.lm_head(rms_norm(x)).float()


def build_model(config):
    return GPT(config)
