#!/usr/bin/env python3
# PyTorch FSDP2 peer for ztrain's Llama-8B-shape ZeRO-3 benchmark (case c), written for this
# project. A Llama of configs/llama-8b-shape.json's shape (RMSNorm, RoPE theta from the config,
# grouped-query attention through SDPA, SwiGLU MLP, untied LM head), ztrain's initialisation
# (N(0, 0.02), o_proj/down_proj scaled by 1/sqrt(2 n_layer), unit norm gains), random tokens.
# Started by torchrun (one process per GPU): fully_shard on every block, then on the root, with
# MixedPrecisionPolicy(param_dtype=bf16, reduce_dtype=f32): f32 sharded parameters (the masters)
# and AdamW states, bf16 compute, f32 gradient reduce-scatter. --mode compile compiles each block
# with torch.compile before sharding (as torchtitan does). Without torchrun (world 1, unless
# --fsdp) the model runs unsharded (smoke tests of the model code only).
# Reported: rank 0's median step, tokens/s per GPU, TFLOP/s per GPU (ztrain's flop convention),
# peak memory = the largest torch.cuda.max_memory_allocated over ranks after the model is sharded.
# Invariant: rank 0 prints one BENCH_RESULT JSON line (see _common.py), also on failure.
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


class RMSNorm(nn.Module):
    def __init__(self, d, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x):
        x32 = x.float()
        y = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * y.to(x.dtype)


def rope_tables(T, D, theta, device):
    inv = 1.0 / (theta ** (torch.arange(0, D, 2, device=device, dtype=torch.float64) / D))
    f = torch.outer(torch.arange(T, device=device, dtype=torch.float64), inv)
    emb = torch.cat((f, f), dim=-1)  # (T, D), HF's rotate-half layout
    return emb.cos().float(), emb.sin().float()


def apply_rope(x, cos, sin):  # x: (B, H, T, D)
    h = x.shape[-1] // 2
    rot = torch.cat((-x[..., h:], x[..., :h]), dim=-1)
    return (x * cos + rot * sin).to(x.dtype)


def attention(q, k, v):  # (B, H, T, D), (B, Hkv, T, D)
    if hasattr(F, "scaled_dot_product_attention"):
        if k.shape[1] != q.shape[1]:
            try:
                return F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
            except TypeError:  # torch < 2.5
                pass
        rep = q.shape[1] // k.shape[1]
        k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    rep = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
    T = q.shape[-2]
    att = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
    mask = torch.ones(T, T, dtype=torch.bool, device=q.device).tril()
    return att.masked_fill(~mask, float("-inf")).softmax(-1) @ v


class Block(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d, f = cfg["hidden_size"], cfg["intermediate_size"]
        self.h, self.hkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
        self.hd = cfg.get("head_dim") or d // self.h
        self.input_layernorm = RMSNorm(d, cfg["rms_norm_eps"])
        self.q_proj = nn.Linear(d, self.h * self.hd, bias=False)
        self.k_proj = nn.Linear(d, self.hkv * self.hd, bias=False)
        self.v_proj = nn.Linear(d, self.hkv * self.hd, bias=False)
        self.o_proj = nn.Linear(self.h * self.hd, d, bias=False)
        self.post_attention_layernorm = RMSNorm(d, cfg["rms_norm_eps"])
        self.gate_proj = nn.Linear(d, f, bias=False)
        self.up_proj = nn.Linear(d, f, bias=False)
        self.down_proj = nn.Linear(f, d, bias=False)

    def forward(self, x, cos, sin):
        B, T, _ = x.shape
        a = self.input_layernorm(x)
        q = self.q_proj(a).view(B, T, self.h, self.hd).transpose(1, 2)
        k = self.k_proj(a).view(B, T, self.hkv, self.hd).transpose(1, 2)
        v = self.v_proj(a).view(B, T, self.hkv, self.hd).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        o = attention(q, k, v).transpose(1, 2).reshape(B, T, self.h * self.hd)
        x = x + self.o_proj(o)
        m = self.post_attention_layernorm(x)
        return x + self.down_proj(F.silu(self.gate_proj(m)) * self.up_proj(m))


class Llama(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.embed_tokens = nn.Embedding(cfg["vocab_size"], cfg["hidden_size"])
        self.layers = nn.ModuleList(Block(cfg) for _ in range(cfg["num_hidden_layers"]))
        self.norm = RMSNorm(cfg["hidden_size"], cfg["rms_norm_eps"])
        self.lm_head = nn.Linear(cfg["hidden_size"], cfg["vocab_size"], bias=False)

    def forward(self, idx, targets):
        T = idx.shape[1]
        hd = self.cfg.get("head_dim") or self.cfg["hidden_size"] // self.cfg["num_attention_heads"]
        cos, sin = rope_tables(T, hd, self.cfg["rope_theta"], idx.device)
        x = self.embed_tokens(idx)
        for blk in self.layers:
            x = blk(x, cos.to(x.dtype), sin.to(x.dtype))
        logits = self.lm_head(self.norm(x))
        return F.cross_entropy(logits.float().view(-1, logits.shape[-1]), targets.reshape(-1))


def init_like_ztrain(model, n_layer, std=0.02):
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.fill_(1.0)
            elif name.endswith("o_proj.weight") or name.endswith("down_proj.weight"):
                p.normal_(0.0, std / math.sqrt(2.0 * n_layer))
            else:
                p.normal_(0.0, std)


def linear_params(cfg):
    d, f, L = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"]
    hd = cfg.get("head_dim") or d // cfg["num_attention_heads"]
    attn = 2 * d * cfg["num_attention_heads"] * hd + 2 * d * cfg["num_key_value_heads"] * hd
    return L * (attn + 3 * d * f) + cfg["vocab_size"] * d


def clip_grads(model, max_norm):
    params = [p for p in model.parameters() if p.grad is not None]
    if hasattr(torch.nn.utils, "get_total_norm"):  # torch >= 2.6: DTensor-aware, as torchtitan
        norm = torch.nn.utils.get_total_norm([p.grad for p in params], foreach=True)
        if hasattr(norm, "full_tensor"):
            norm = norm.full_tensor()
        torch.nn.utils.clip_grads_with_norm_(params, max_norm, norm, foreach=True)
    else:
        torch.nn.utils.clip_grad_norm_(params, max_norm)


def main(args):
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if rank != 0:
        args.out = ""
    with open(args.model_config) as f:
        cfg = json.load(f)
    for k, v in (("num_hidden_layers", args.layers), ("hidden_size", args.hidden),
                 ("intermediate_size", args.intermediate)):
        if v:
            cfg[k] = v
    if args.device == "cuda":
        torch.cuda.set_device(local)
        dev = torch.device("cuda", local)
    else:
        dev = torch.device("cpu")
    sharded = world > 1 or args.fsdp
    if sharded:
        dist.init_process_group("nccl" if args.device == "cuda" else "gloo")
    torch.manual_seed(args.seed)  # the same full init on every rank before sharding
    # Built directly on the device where torch can (2.x: torch.device is a context manager), so
    # no rank holds the full f32 model in host memory; sharding frees the unsharded copy.
    with torch.device(dev) if hasattr(torch.device, "__enter__") else _Null():
        model = Llama(cfg)
    model.to(dev)
    init_like_ztrain(model, cfg["num_hidden_layers"])
    n_params = sum(p.numel() for p in model.parameters())
    if args.mode == "compile":
        for i, blk in enumerate(model.layers):
            model.layers[i] = torch.compile(blk)
    if sharded:
        try:
            from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard
        except ImportError:
            from torch.distributed._composable.fsdp import MixedPrecisionPolicy, fully_shard
        mp = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
        for blk in model.layers:
            fully_shard(blk, mp_policy=mp)
        fully_shard(model, mp_policy=mp)
    hp = C.hyper_params(args.run_json)
    opt = torch.optim.AdamW(model.parameters(), lr=hp["lr"], betas=hp["betas"], eps=hp["eps"],
                            weight_decay=hp["weight_decay"], foreach=True)
    B, T, V = args.batch, args.seq, cfg["vocab_size"]
    g = torch.Generator(device="cpu").manual_seed(args.seed * 1000 + rank)
    seqs = [torch.randint(0, V, (B, T + 1), generator=g) for _ in range(2)]
    pool = [(s[:, :-1].contiguous().to(dev), s[:, 1:].contiguous().to(dev)) for s in seqs]
    # Unsharded runs (smoke) use autocast for bf16; sharded runs get bf16 from the policy.
    amp = torch.autocast(device_type=args.device, dtype=torch.bfloat16,
                         enabled=not sharded and args.dtype == "bf16")

    def step(i):
        x, y = pool[i % len(pool)]
        with amp:
            loss = model(x, y)
        loss.backward()
        if hp["clip"] > 0:
            clip_grads(model, hp["clip"])
        opt.step()
        opt.zero_grad(set_to_none=True)
        step.loss = loss.detach()

    sync = torch.cuda.synchronize if args.device == "cuda" else (lambda: None)
    if args.device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    times, first, t0, t1 = C.timed_loop(step, args.warmup, args.steps, sync)
    peak = torch.cuda.max_memory_allocated() if args.device == "cuda" else 0
    if sharded:
        t = torch.tensor([float(peak)], device=dev, dtype=torch.float64)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        peak = int(t.item())
        dist.barrier()
        dist.destroy_process_group()
    if rank != 0:
        return None
    name = torch.cuda.get_device_name(dev) if args.device == "cuda" else "cpu"
    hd = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
    fpt = C.transformer_flops_per_token(linear_params(cfg), cfg["num_hidden_layers"], T,
                                        cfg["num_attention_heads"] * hd)
    res = C.summarize(times, B * T, fpt, C.peak_flops(name, args.dtype))
    res["tokens_per_s_per_gpu"] = res["tokens_per_s"]
    res.update({
        "system": "FSDP2 " + args.mode if sharded else "unsharded " + args.mode,
        "mode": args.mode, "dtype": args.dtype, "batch": B, "seq": T, "world_size": world,
        "precision_note": "FSDP2 MixedPrecisionPolicy(param bf16, reduce f32), f32 sharded params "
                          "and AdamW (foreach)" if sharded else args.dtype,
        "n_params": n_params, "flops_per_token": fpt, "first_step_s": first,
        "window_unix": [t0, t1], "final_loss": float(step.loss), "hyper_params": hp,
        "device_name": name, "torch": torch.__version__,
        "peak_mem_bytes": peak if args.device == "cuda" else None,
        "peak_mem_note": "max over ranks of max_memory_allocated after sharding",
    })
    return res


class _Null:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    C.add_common_args(p)
    p.add_argument("--model-config", default=os.path.join(C.REPO, "configs", "llama-8b-shape.json"))
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--seq", type=int, default=2048)
    p.add_argument("--dtype", default="bf16", choices=["bf16", "fp32"])
    p.add_argument("--fsdp", action="store_true", help="shard even with one process (tests)")
    p.add_argument("--layers", type=int, default=0, help="override num_hidden_layers (smoke)")
    p.add_argument("--hidden", type=int, default=0, help="override hidden_size (smoke)")
    p.add_argument("--intermediate", type=int, default=0, help="override intermediate_size (smoke)")
    a = p.parse_args()
    sys.exit(C.run_main("fsdp2_llama", main, a))
