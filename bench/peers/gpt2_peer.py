#!/usr/bin/env python3
# PyTorch peer for ztrain's GPT-2 benchmark (case a), written for this project: the model of
# configs/gpt2-124m.json (pre-LN, learned positions, GELU tanh, tied embeddings, no dropout, vocab
# 50257 unpadded), ztrain's initialisation (src/models/init.cc: N(0, 0.02) weights, residual output
# projections scaled by 1/sqrt(2 n_layer), zero biases, unit norm gains), AdamW with the
# hyper-parameters of the ztrain run.json given by --run-json, on random tokens.
# Precision: --dtype bf16 is torch.autocast(bfloat16) over f32 parameters (the f32 parameters are
# the master weights; AdamW updates them in f32); ztrain keeps bf16 parameters plus f32 masters.
# Invariant: prints one BENCH_RESULT JSON line (see _common.py), also on failure.
import argparse
import json
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402


def causal_attention(q, k, v):
    """q, k, v: (B, H, T, D). Flash/efficient SDPA where torch has it (2.x), else the math."""
    if hasattr(F, "scaled_dot_product_attention"):
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    T = q.shape[-2]
    att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(q.shape[-1]))
    mask = torch.ones(T, T, dtype=torch.bool, device=q.device).tril()
    att = att.masked_fill(~mask, float("-inf")).softmax(-1)
    return att @ v


class Block(nn.Module):
    def __init__(self, c, h, eps):
        super().__init__()
        self.n_head = h
        self.ln_1 = nn.LayerNorm(c, eps=eps)
        self.c_attn = nn.Linear(c, 3 * c)
        self.attn_proj = nn.Linear(c, c)
        self.ln_2 = nn.LayerNorm(c, eps=eps)
        self.c_fc = nn.Linear(c, 4 * c)
        self.mlp_proj = nn.Linear(4 * c, c)

    def forward(self, x):
        B, T, Cc = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(Cc, dim=2)
        q, k, v = (t.view(B, T, self.n_head, Cc // self.n_head).transpose(1, 2) for t in (q, k, v))
        a = causal_attention(q, k, v).transpose(1, 2).reshape(B, T, Cc)
        x = x + self.attn_proj(a)
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class GPT2(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        c, eps = cfg["n_embd"], cfg.get("layer_norm_epsilon", 1e-5)
        self.wte = nn.Embedding(cfg["vocab_size"], c)
        self.wpe = nn.Embedding(cfg["n_positions"], c)
        self.h = nn.ModuleList(Block(c, cfg["n_head"], eps) for _ in range(cfg["n_layer"]))
        self.ln_f = nn.LayerNorm(c, eps=eps)

    def forward(self, idx, targets):
        T = idx.shape[1]
        pos = torch.arange(T, device=idx.device)
        x = self.wte(idx) + self.wpe(pos)
        for blk in self.h:
            x = blk(x)
        logits = F.linear(self.ln_f(x), self.wte.weight)  # tied LM head
        return F.cross_entropy(logits.float().view(-1, logits.shape[-1]), targets.view(-1))


def init_like_ztrain(model, n_layer, std=0.02):
    """src/models/init.cc: biases 0, norm gains 1, other weights N(0, std^2), the residual output
    projections (attn.c_proj, mlp.c_proj) with std / sqrt(2 n_layer)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(".bias"):
                p.zero_()
            elif ".ln_" in name or name.startswith("ln_"):
                p.fill_(1.0)
            elif name.endswith("attn_proj.weight") or name.endswith("mlp_proj.weight"):
                p.normal_(0.0, std / math.sqrt(2.0 * n_layer))
            else:
                p.normal_(0.0, std)


def linear_params(cfg):
    c, L = cfg["n_embd"], cfg["n_layer"]
    return L * 12 * c * c + cfg["vocab_size"] * c  # blocks' matmuls + the tied LM head


def make_optimizer(model, hp, device):
    kw = dict(lr=hp["lr"], betas=hp["betas"], eps=hp["eps"], weight_decay=hp["weight_decay"])
    if device == "cuda":
        kw["fused"] = True
    return torch.optim.AdamW(model.parameters(), **kw)


def main(args):
    torch.manual_seed(args.seed)
    with open(args.model_config) as f:
        cfg = json.load(f)
    dev = torch.device(args.device)
    if args.device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = args.tf32
        torch.backends.cudnn.allow_tf32 = args.tf32
    model = GPT2(cfg).to(dev)
    init_like_ztrain(model, cfg["n_layer"])
    hp = C.hyper_params(args.run_json)
    opt = make_optimizer(model, hp, args.device)
    fwd = torch.compile(model) if args.mode == "compile" else model
    B, T, V = args.batch, args.seq, cfg["vocab_size"]
    g = torch.Generator(device="cpu").manual_seed(args.seed)
    seqs = [torch.randint(0, V, (B, T + 1), generator=g) for _ in range(4)]
    pool = [(s[:, :-1].contiguous().to(dev), s[:, 1:].contiguous().to(dev)) for s in seqs]
    amp = torch.autocast(device_type=args.device, dtype=torch.bfloat16, enabled=args.dtype == "bf16")

    def step(i):
        x, y = pool[i % len(pool)]
        with amp:
            loss = fwd(x, y)
        loss.backward()
        if hp["clip"] > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), hp["clip"])
        opt.step()
        opt.zero_grad(set_to_none=True)
        step.loss = loss.detach()

    sync = torch.cuda.synchronize if args.device == "cuda" else (lambda: None)
    if args.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times, first, t0, t1 = C.timed_loop(step, args.warmup, args.steps, sync)
    name = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"
    fpt = C.transformer_flops_per_token(linear_params(cfg), cfg["n_layer"], T, cfg["n_embd"])
    res = C.summarize(times, B * T, fpt, C.peak_flops(name, args.dtype))
    res.update({
        "system": "pytorch " + args.mode, "mode": args.mode, "dtype": args.dtype, "batch": B, "seq": T,
        "precision_note": "autocast bf16, f32 parameters and AdamW" if args.dtype == "bf16" else "f32",
        "tf32": bool(args.tf32), "n_params": sum(p.numel() for p in model.parameters()),
        "flops_per_token": fpt, "first_step_s": first, "window_unix": [t0, t1],
        "final_loss": float(step.loss), "hyper_params": hp, "device_name": name,
        "torch": torch.__version__,
        "peak_mem_bytes": torch.cuda.max_memory_allocated() if args.device == "cuda" else None,
    })
    return res


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__)
    C.add_common_args(p)
    p.add_argument("--model-config", default=os.path.join(C.REPO, "configs", "gpt2-124m.json"))
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--seq", type=int, default=1024)
    p.add_argument("--dtype", default="bf16", choices=["bf16", "fp32"])
    p.add_argument("--tf32", action="store_true", help="allow TF32 matmuls in fp32")
    a = p.parse_args()
    sys.exit(C.run_main("gpt2_peer", main, a))
