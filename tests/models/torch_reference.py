#!/usr/bin/env python3
"""PyTorch reference for ztrain's whole-model and optimizer oracle tests.

Written from the model definitions (GPT-2, Llama as in Hugging Face transformers), independently
of ztrain's code. Runs in float64 so the reference is exact to far below ztrain's f32 tolerance.
Writes a safetensors file holding the inputs (weights with Hugging Face names, tokens, targets) and
the expected results ("ref.logits", "ref.loss", "ref.grad.<param>"), or for --adamw the initial
parameters, the gradients of every step and the parameters torch.optim.AdamW produced.

Usage: torch_reference.py gpt2|llama|adamw --out FILE [--seed N] [model sizes...]
"""
import argparse
import json
import math
import struct

import torch
import torch.nn.functional as F


def write_safetensors(path, tensors):
    """Minimal safetensors writer: header JSON, then the raw little-endian data."""
    names = {torch.float32: "F32", torch.int32: "I32", torch.int64: "I64"}
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        t = t.detach().contiguous().cpu()
        data = t.numpy().tobytes()
        header[name] = {"dtype": names[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    h = json.dumps(header).encode()
    h += b" " * ((8 - (8 + len(h)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def init_weights(shapes, gen):
    """Random f32-representable weights: matrices ~N(0, 0.1^2), gains ~1 + N(0, 0.1^2)."""
    params = {}
    for name, shape in shapes:
        w = torch.randn(*shape, generator=gen, dtype=torch.float32) * 0.1
        if name.endswith("norm.weight") or ".ln_" in name and name.endswith(".weight"):
            w = w + 1.0
        params[name] = w
    return params


def causal_attention(q, k, v):
    """q: [B, H, T, D], k/v: [B, H, T, D] -> [B, H, T, D]."""
    T = q.shape[2]
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    mask = torch.ones(T, T, dtype=torch.bool).tril()
    scores = scores.masked_fill(~mask, float("-inf"))
    return torch.softmax(scores, dim=-1) @ v


def gpt2_shapes(a):
    C, V = a.embd, a.vocab
    s = [("transformer.wte.weight", (V, C)), ("transformer.wpe.weight", (a.positions, C))]
    for l in range(a.layers):
        p = f"transformer.h.{l}."
        s += [(p + "ln_1.weight", (C,)), (p + "ln_1.bias", (C,)),
              (p + "attn.c_attn.weight", (C, 3 * C)), (p + "attn.c_attn.bias", (3 * C,)),
              (p + "attn.c_proj.weight", (C, C)), (p + "attn.c_proj.bias", (C,)),
              (p + "ln_2.weight", (C,)), (p + "ln_2.bias", (C,)),
              (p + "mlp.c_fc.weight", (C, 4 * C)), (p + "mlp.c_fc.bias", (4 * C,)),
              (p + "mlp.c_proj.weight", (4 * C, C)), (p + "mlp.c_proj.bias", (C,))]
    return s + [("transformer.ln_f.weight", (C,)), ("transformer.ln_f.bias", (C,))]


def gpt2_forward(p, tokens, a):
    B, T = tokens.shape
    C, H = a.embd, a.heads
    D = C // H
    eps = 1e-5
    x = p["transformer.wte.weight"][tokens] + p["transformer.wpe.weight"][:T]
    for l in range(a.layers):
        q = f"transformer.h.{l}."
        h = F.layer_norm(x, (C,), p[q + "ln_1.weight"], p[q + "ln_1.bias"], eps)
        qkv = h @ p[q + "attn.c_attn.weight"] + p[q + "attn.c_attn.bias"]
        qq, kk, vv = qkv.split(C, dim=2)
        heads = lambda t: t.view(B, T, H, D).transpose(1, 2)
        y = causal_attention(heads(qq), heads(kk), heads(vv)).transpose(1, 2).reshape(B, T, C)
        x = x + y @ p[q + "attn.c_proj.weight"] + p[q + "attn.c_proj.bias"]
        h = F.layer_norm(x, (C,), p[q + "ln_2.weight"], p[q + "ln_2.bias"], eps)
        f = F.gelu(h @ p[q + "mlp.c_fc.weight"] + p[q + "mlp.c_fc.bias"], approximate="tanh")
        x = x + f @ p[q + "mlp.c_proj.weight"] + p[q + "mlp.c_proj.bias"]
    x = F.layer_norm(x, (C,), p["transformer.ln_f.weight"], p["transformer.ln_f.bias"], eps)
    return x @ p["transformer.wte.weight"].t()


def llama_shapes(a):
    C, V, I = a.embd, a.vocab, a.intermediate
    D = C // a.heads
    s = [("model.embed_tokens.weight", (V, C))]
    for l in range(a.layers):
        p = f"model.layers.{l}."
        s += [(p + "input_layernorm.weight", (C,)),
              (p + "self_attn.q_proj.weight", (a.heads * D, C)),
              (p + "self_attn.k_proj.weight", (a.kv_heads * D, C)),
              (p + "self_attn.v_proj.weight", (a.kv_heads * D, C)),
              (p + "self_attn.o_proj.weight", (C, a.heads * D)),
              (p + "post_attention_layernorm.weight", (C,)),
              (p + "mlp.gate_proj.weight", (I, C)), (p + "mlp.up_proj.weight", (I, C)),
              (p + "mlp.down_proj.weight", (C, I))]
    return s + [("model.norm.weight", (C,)), ("lm_head.weight", (V, C))]


def rms_norm(x, w, eps):
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def llama_forward(p, tokens, a):
    B, T = tokens.shape
    C, H, Hkv = a.embd, a.heads, a.kv_heads
    D = C // H
    eps = 1e-6
    inv_freq = 1.0 / (a.theta ** (torch.arange(0, D, 2, dtype=torch.float64) / D))
    freqs = torch.outer(torch.arange(T, dtype=torch.float64), inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos()[None, None], emb.sin()[None, None]  # [1, 1, T, D]
    x = p["model.embed_tokens.weight"][tokens]
    for l in range(a.layers):
        q = f"model.layers.{l}."
        h = rms_norm(x, p[q + "input_layernorm.weight"], eps)
        qq = (h @ p[q + "self_attn.q_proj.weight"].t()).view(B, T, H, D).transpose(1, 2)
        kk = (h @ p[q + "self_attn.k_proj.weight"].t()).view(B, T, Hkv, D).transpose(1, 2)
        vv = (h @ p[q + "self_attn.v_proj.weight"].t()).view(B, T, Hkv, D).transpose(1, 2)
        qq = qq * cos + rotate_half(qq) * sin
        kk = kk * cos + rotate_half(kk) * sin
        kk = kk.repeat_interleave(H // Hkv, dim=1)
        vv = vv.repeat_interleave(H // Hkv, dim=1)
        y = causal_attention(qq, kk, vv).transpose(1, 2).reshape(B, T, H * D)
        x = x + y @ p[q + "self_attn.o_proj.weight"].t()
        h = rms_norm(x, p[q + "post_attention_layernorm.weight"], eps)
        g = F.silu(h @ p[q + "mlp.gate_proj.weight"].t()) * (h @ p[q + "mlp.up_proj.weight"].t())
        x = x + g @ p[q + "mlp.down_proj.weight"].t()
    x = rms_norm(x, p["model.norm.weight"], eps)
    return x @ p["lm_head.weight"].t()


def run_model(a):
    gen = torch.Generator().manual_seed(a.seed)
    shapes = gpt2_shapes(a) if a.model == "gpt2" else llama_shapes(a)
    weights = init_weights(shapes, gen)
    tokens = torch.randint(0, a.vocab, (a.batch, a.seq), generator=gen, dtype=torch.int64)
    targets = torch.randint(0, a.vocab, (a.batch, a.seq), generator=gen, dtype=torch.int64)
    targets[0, 0] = -100  # ignored positions take part in the check
    targets[-1, -1] = -100
    p = {k: v.double().requires_grad_(True) for k, v in weights.items()}
    logits = (gpt2_forward if a.model == "gpt2" else llama_forward)(p, tokens, a)
    loss = F.cross_entropy(logits.reshape(-1, a.vocab), targets.reshape(-1), ignore_index=-100)
    loss.backward()
    out = dict(weights)
    out["tokens"] = tokens.int()
    out["targets"] = targets.int()
    out["ref.logits"] = logits.detach().float()
    out["ref.loss"] = loss.detach().float().reshape(())
    for k, v in p.items():
        out["ref.grad." + k] = v.grad.float()
    write_safetensors(a.out, out)


def run_adamw(a):
    """torch.optim.AdamW in float32 on three tensors for a.steps steps with given gradients,
    optionally clipping the global gradient norm to a.clip first (clip_grad_norm_)."""
    gen = torch.Generator().manual_seed(a.seed)
    shapes = [("w", (5, 7)), ("b", (7,)), ("s", (1,))]
    params = {n: torch.randn(*s, generator=gen) for n, s in shapes}
    out = {"init." + n: t.clone() for n, t in params.items()}
    ps = [params[n].clone().requires_grad_(True) for n, _ in shapes]
    opt = torch.optim.AdamW(ps, lr=a.lr, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)
    for step in range(a.steps):
        for (n, s), p in zip(shapes, ps):
            g = torch.randn(*s, generator=gen) * (0.1 + step)
            out[f"grad.{step}.{n}"] = g.clone()
            p.grad = g
        if a.clip > 0:
            torch.nn.utils.clip_grad_norm_(ps, a.clip)
        opt.step()
    for (n, _), p in zip(shapes, ps):
        out["final." + n] = p.detach().clone()
        st = opt.state[p]
        out["exp_avg." + n] = st["exp_avg"].clone()
        out["exp_avg_sq." + n] = st["exp_avg_sq"].clone()
    write_safetensors(a.out, out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model", choices=["gpt2", "llama", "adamw"])
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--vocab", type=int, default=67)
    ap.add_argument("--positions", type=int, default=16)
    ap.add_argument("--embd", type=int, default=32)
    ap.add_argument("--intermediate", type=int, default=40)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--theta", type=float, default=10000.0)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--seq", type=int, default=9)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--lr", type=float, default=1e-2)
    ap.add_argument("--clip", type=float, default=0.0)
    a = ap.parse_args()
    torch.set_num_threads(1)
    if a.model == "adamw":
        run_adamw(a)
    else:
        run_model(a)


if __name__ == "__main__":
    main()
