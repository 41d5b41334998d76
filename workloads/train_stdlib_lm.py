"""Train the shipped small language model on Python's own standard-library source (seeded, CPU, offline).

    python workloads/train_stdlib_lm.py

Reads ``workloads/stdlib_lm.yaml`` (the shape: a Llama-style decoder with grouped-query attention, SwiGLU,
RoPE, RMSNorm) and writes ``stdlib_lm.npz`` (float16 weights, Hugging Face Llama names), ``stdlib_lm.txt``
(the held-out text: calibration, then evaluation) and ``stdlib_lm.json`` (corpus, seed, steps, float
perplexity, torch and Python versions). The corpus is the source of :data:`TRAIN_MODULES` as this Python
ships them; the held-out text is the start of :data:`HELD_OUT_MODULES`, which training never sees. One
thread, deterministic algorithms: rerunning on the same torch and Python gives the same weights.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import math
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from hwsim.llm.config import load_lm_config  # noqa: E402
from hwsim.llm.model import encode  # noqa: E402

SEED = 0
STEPS = 400
BATCH = 12
SEQ = 128
LR = 3e-3
TRAIN_MODULES = (
    "argparse",
    "textwrap",
    "string",
    "shlex",
    "difflib",
    "calendar",
    "fractions",
    "heapq",
    "bisect",
    "functools",
    "contextlib",
    "dataclasses",
    "enum",
    "csv",
    "configparser",
    "pprint",
    "random",
    "queue",
    "shutil",
    "tempfile",
    "fnmatch",
    "glob",
    "locale",
    "gettext",
    "inspect",
    "ast",
    "tokenize",
    "typing",
    "pathlib",
    "subprocess",
)
HELD_OUT_MODULES = ("statistics", "zipfile")
CALIBRATION_CHARS = 8192
EVAL_CHARS = 32768


def module_text(name: str) -> str:
    """The source of stdlib module ``name`` (a package's ``__init__``)."""
    return Path(importlib.import_module(name).__file__).read_text(encoding="utf-8")


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.weight, self.eps = nn.Parameter(torch.ones(dim)), eps

    def forward(self, x):
        return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + self.eps) * self.weight


def rope(x, theta: float):
    """HF rotate-half RoPE on x [B, heads, T, dim]."""
    t, dim = x.shape[-2:]
    inv = 1.0 / theta ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim)
    ang = torch.cat([torch.outer(torch.arange(t, dtype=torch.float64), inv)] * 2, -1).to(x.dtype)
    half = dim // 2
    return x * ang.cos() + torch.cat([-x[..., half:], x[..., :half]], -1) * ang.sin()


class Block(nn.Module):
    def __init__(self, s):
        super().__init__()
        self.s = s
        self.input_layernorm = RMSNorm(s.hidden, s.norm_eps)
        self.post_attention_layernorm = RMSNorm(s.hidden, s.norm_eps)
        self.self_attn = nn.ModuleDict(
            {
                "q_proj": nn.Linear(s.hidden, s.heads * s.dim, bias=False),
                "k_proj": nn.Linear(s.hidden, s.kv_heads * s.dim, bias=False),
                "v_proj": nn.Linear(s.hidden, s.kv_heads * s.dim, bias=False),
                "o_proj": nn.Linear(s.heads * s.dim, s.hidden, bias=False),
            }
        )
        self.mlp = nn.ModuleDict(
            {
                "gate_proj": nn.Linear(s.hidden, s.ffn, bias=False),
                "up_proj": nn.Linear(s.hidden, s.ffn, bias=False),
                "down_proj": nn.Linear(s.ffn, s.hidden, bias=False),
            }
        )

    def forward(self, x):
        s, a = self.s, self.self_attn
        b, t, _ = x.shape
        h = self.input_layernorm(x)
        q = a["q_proj"](h).view(b, t, s.heads, s.dim).transpose(1, 2)
        k = a["k_proj"](h).view(b, t, s.kv_heads, s.dim).transpose(1, 2)
        v = a["v_proj"](h).view(b, t, s.kv_heads, s.dim).transpose(1, 2)
        q, k = rope(q, s.rope_theta), rope(k, s.rope_theta)
        k, v = k.repeat_interleave(s.group, 1), v.repeat_interleave(s.group, 1)
        ctx = nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + a["o_proj"](ctx.transpose(1, 2).reshape(b, t, -1))
        h = self.post_attention_layernorm(x)
        m = self.mlp
        return x + m["down_proj"](nn.functional.silu(m["gate_proj"](h)) * m["up_proj"](h))


class TinyLlama(nn.Module):
    """The Llama-style decoder ``spec`` describes (SwiGLU, RMSNorm, untied head)."""

    def __init__(self, s):
        super().__init__()
        self.embed_tokens = nn.Embedding(s.vocab, s.hidden)
        self.layers = nn.ModuleList(Block(s) for _ in range(s.layers))
        self.norm = RMSNorm(s.hidden, s.norm_eps)
        self.lm_head = nn.Linear(s.hidden, s.vocab, bias=False)

    def forward(self, tokens):
        x = self.embed_tokens(tokens)
        for layer in self.layers:
            x = layer(x)
        return self.lm_head(self.norm(x))

    def hf_state(self) -> dict[str, np.ndarray]:
        """Weights under Hugging Face Llama names."""
        out = {}
        for k, v in self.state_dict().items():
            name = k if k.startswith("lm_head") else "model." + k
            out[name] = v.detach().numpy()
        return out


def perplexity(model: nn.Module, ids: np.ndarray) -> float:
    """exp(mean next-token NLL) over non-overlapping windows of SEQ tokens."""
    n = len(ids) // SEQ
    x = torch.from_numpy(ids[: n * SEQ].reshape(n, SEQ))
    with torch.no_grad():
        logits = model(x)[:, :-1]
        nll = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1))
    return float(math.exp(nll))


def main() -> None:
    spec = load_lm_config(HERE / "stdlib_lm.yaml")
    torch.manual_seed(SEED)
    torch.set_num_threads(1)  # faster than 2 on a shared 2-core machine
    torch.use_deterministic_algorithms(True)
    corpus = "\n".join(module_text(m) for m in TRAIN_MODULES)
    held = "\n".join(module_text(m) for m in HELD_OUT_MODULES)[: CALIBRATION_CHARS + EVAL_CHARS]
    ids = encode(corpus)
    model = TinyLlama(spec)
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.01, betas=(0.9, 0.95))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, LR, total_steps=STEPS, pct_start=0.05)
    rng = np.random.default_rng(SEED)
    start = time.time()
    for step in range(STEPS):
        at = rng.integers(0, len(ids) - SEQ - 1, BATCH)
        batch = torch.from_numpy(np.stack([ids[i : i + SEQ + 1] for i in at]))
        logits = model(batch[:, :-1])
        loss = nn.functional.cross_entropy(logits.reshape(-1, spec.vocab), batch[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 100 == 0:
            print(f"step {step} loss {loss.item():.3f} ({time.time() - start:.0f} s)", flush=True)
    state = {k: v.astype(np.float16) for k, v in model.hf_state().items()}
    np.savez(HERE / spec.weights, **state)
    (HERE / spec.eval_text).write_text(held, encoding="utf-8")
    model.load_state_dict(
        {(k.removeprefix("model.")): torch.from_numpy(v.astype(np.float32)) for k, v in state.items()}
    )
    eval_ids = encode(held[CALIBRATION_CHARS:])
    record = {
        "model": spec.weights,
        "config": "stdlib_lm.yaml",
        "parameters": spec.parameters(),
        "corpus": f"Python {platform.python_version()} standard library source: {', '.join(TRAIN_MODULES)}",
        "corpus_chars": len(corpus),
        "corpus_sha256": hashlib.sha256(corpus.encode()).hexdigest()[:16],
        "held_out": f"{', '.join(HELD_OUT_MODULES)}: first {CALIBRATION_CHARS} characters calibrate, "
        f"the next {EVAL_CHARS} evaluate ({spec.eval_text})",
        "seed": SEED,
        "steps": STEPS,
        "batch": BATCH,
        "sequence": SEQ,
        "optimizer": f"AdamW lr {LR} one-cycle, weight decay 0.01, clip 1.0",
        "torch": torch.__version__,
        "python": platform.python_version(),
        "train_seconds": round(time.time() - start, 1),
        "float16_eval_perplexity": round(perplexity(model, eval_ids), 4),
    }
    (HERE / "stdlib_lm.json").write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
