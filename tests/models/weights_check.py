#!/usr/bin/env python3
"""PyTorch-side checks for ztrain's weight export and loading (run by tests/models/weights_test.cc).

Independent of ztrain's C++ code: a small safetensors reader written here from the format's
description, parameter names and shapes written from transformers' GPT2LMHeadModel and
LlamaForCausalLM, and torch's own float conversions (round to nearest even).

  weights_check.py check DIR --reference REF --dtype f32|bf16|f16 [--shards N]
      DIR is an export (config.json + model.safetensors, or shards + index). Checks the layout,
      the index, the "format": "pt" metadata transformers requires, that the tensors are exactly
      the parameters config.json describes, with its shapes, and that each value equals torch's
      conversion of the same tensor in REF (an f32 safetensors file) to DTYPE, bit for bit.
  weights_check.py write-halves --out PREFIX [--seed N]
      Writes PREFIX.{f32,bf16,f16,f16w}.safetensors, each holding tensor "x": random values plus
      exact rounding ties, overflow and subnormal cases; the bf16/f16 files rounded by torch, f16w
      the f16 values widened back to f32.
Exits 0 on success; on failure prints the reason and exits 1.
"""
import argparse
import json
import os
import re
import struct
import sys

import numpy as np
import torch

NP_DTYPES = {"F32": np.float32, "F16": np.float16, "BF16": np.uint16, "I32": np.int32, "I64": np.int64,
             "U8": np.uint8}
SIZES = {"F32": 4, "F16": 2, "BF16": 2, "I32": 4, "I64": 8, "U8": 1}


def fail(msg):
    print("weights_check: " + msg)
    sys.exit(1)


def read_safetensors(path):
    """Returns (metadata, {name: (dtype, numpy array)}); checks the layout strictly."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        fail(f"{path}: shorter than 8 bytes")
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    body = data[8 + n:]
    tensors, ranges = {}, []
    for name, e in header.items():
        b, end = e["data_offsets"]
        count = int(np.prod(e["shape"], dtype=np.int64))
        if end - b != count * SIZES[e["dtype"]]:
            fail(f"{path}: {name} has {end - b} bytes for shape {e['shape']} {e['dtype']}")
        arr = np.frombuffer(body[b:end], dtype=NP_DTYPES[e["dtype"]]).reshape(e["shape"])
        tensors[name] = (e["dtype"], arr)
        ranges.append((b, end))
    pos = 0
    for b, end in sorted(ranges):
        if b != pos:
            fail(f"{path}: data ranges are not contiguous at byte {b}")
        pos = end
    if pos != len(body):
        fail(f"{path}: {len(body) - pos} trailing bytes")
    return meta, tensors


def expected_shapes(cfg):
    """Parameter names and shapes of the transformers model for config.json `cfg`."""
    if cfg["model_type"] == "gpt2":
        C, V, P = cfg["n_embd"], cfg["vocab_size"], cfg["n_positions"]
        s = {"transformer.wte.weight": [V, C], "transformer.wpe.weight": [P, C],
             "transformer.ln_f.weight": [C], "transformer.ln_f.bias": [C]}
        for l in range(cfg["n_layer"]):
            p = f"transformer.h.{l}."
            s.update({p + "ln_1.weight": [C], p + "ln_1.bias": [C], p + "ln_2.weight": [C], p + "ln_2.bias": [C],
                      p + "attn.c_attn.weight": [C, 3 * C], p + "attn.c_attn.bias": [3 * C],
                      p + "attn.c_proj.weight": [C, C], p + "attn.c_proj.bias": [C],
                      p + "mlp.c_fc.weight": [C, 4 * C], p + "mlp.c_fc.bias": [4 * C],
                      p + "mlp.c_proj.weight": [4 * C, C], p + "mlp.c_proj.bias": [C]})
        return s
    if cfg["model_type"] == "llama":
        C, V, I = cfg["hidden_size"], cfg["vocab_size"], cfg["intermediate_size"]
        H, KV = cfg["num_attention_heads"], cfg.get("num_key_value_heads") or cfg["num_attention_heads"]
        D = C // H
        s = {"model.embed_tokens.weight": [V, C], "model.norm.weight": [C]}
        if not cfg.get("tie_word_embeddings", False):
            s["lm_head.weight"] = [V, C]
        for l in range(cfg["num_hidden_layers"]):
            p = f"model.layers.{l}."
            s.update({p + "input_layernorm.weight": [C], p + "post_attention_layernorm.weight": [C],
                      p + "self_attn.q_proj.weight": [H * D, C], p + "self_attn.k_proj.weight": [KV * D, C],
                      p + "self_attn.v_proj.weight": [KV * D, C], p + "self_attn.o_proj.weight": [C, H * D],
                      p + "mlp.gate_proj.weight": [I, C], p + "mlp.up_proj.weight": [I, C],
                      p + "mlp.down_proj.weight": [C, I]})
        return s
    fail(f"unknown model_type {cfg['model_type']}")


def torch_bits(f32_array, dtype):
    """torch's conversion of an f32 array to `dtype`, as the stored bit pattern."""
    t = torch.from_numpy(np.array(f32_array, dtype=np.float32, copy=True))
    if dtype == "bf16":
        return t.to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
    if dtype == "f16":
        return t.to(torch.float16).view(torch.int16).numpy().view(np.uint16)
    return t.numpy().view(np.uint32)


def stored_bits(dt, arr):
    return arr.view(np.uint32) if dt == "F32" else arr.view(np.uint16)


def check(a):
    files = sorted(os.listdir(a.dir))
    cfg_path = os.path.join(a.dir, "config.json")
    if not os.path.exists(cfg_path):
        fail("no config.json in the export")
    with open(cfg_path) as f:
        cfg = json.load(f)
    arch = {"gpt2": "GPT2LMHeadModel", "llama": "LlamaForCausalLM"}[cfg["model_type"]]
    if cfg.get("architectures") != [arch]:
        fail(f"config.json architectures {cfg.get('architectures')} is not [{arch}]")
    torch_dtype = {"f32": "float32", "bf16": "bfloat16", "f16": "float16"}[a.dtype]
    if cfg.get("torch_dtype") != torch_dtype:
        fail(f"config.json torch_dtype {cfg.get('torch_dtype')} is not {torch_dtype}")
    index_path = os.path.join(a.dir, "model.safetensors.index.json")
    tensors = {}
    if os.path.exists(index_path):
        if "model.safetensors" in files:
            fail("both model.safetensors and an index: transformers would load the stale single file")
        with open(index_path) as f:
            index = json.load(f)
        shard_names = sorted(set(index["weight_map"].values()))
        n = len(shard_names)
        want = [f"model-{i + 1:05d}-of-{n:05d}.safetensors" for i in range(n)]
        if shard_names != want:
            fail(f"shard names {shard_names} are not {want}")
        stray = [f for f in files if re.fullmatch(r"model-\d{5}-of-\d{5}\.safetensors", f) and f not in want]
        if stray:
            fail(f"stale shards left in the export: {stray}")
        if a.shards and n != a.shards:
            fail(f"{n} shards, expected {a.shards}")
        total = 0
        for shard in shard_names:
            meta, ts = read_safetensors(os.path.join(a.dir, shard))
            if meta.get("format") != "pt":
                fail(f"{shard}: metadata {meta} lacks format=pt")
            for name, (dt, arr) in ts.items():
                if index["weight_map"].get(name) != shard:
                    fail(f"{name} is in {shard} but the index says {index['weight_map'].get(name)}")
                tensors[name] = (dt, arr)
                total += arr.nbytes
        if set(index["weight_map"]) != set(tensors):
            fail("the index names tensors that no shard holds")
        if index["metadata"]["total_size"] != total:
            fail(f"index total_size {index['metadata']['total_size']} != {total} bytes of tensors")
    else:
        if a.shards and a.shards != 1:
            fail(f"single file, expected {a.shards} shards")
        meta, tensors = read_safetensors(os.path.join(a.dir, "model.safetensors"))
        if meta.get("format") != "pt":
            fail(f"model.safetensors metadata {meta} lacks format=pt")
    shapes = expected_shapes(cfg)
    if set(shapes) != set(tensors):
        fail(f"tensor names differ from the config's model: missing {sorted(set(shapes) - set(tensors))[:5]}, "
             f"extra {sorted(set(tensors) - set(shapes))[:5]}")
    _, ref = read_safetensors(a.reference)
    want_dt = {"f32": "F32", "bf16": "BF16", "f16": "F16"}[a.dtype]
    for name, (dt, arr) in sorted(tensors.items()):
        if list(arr.shape) != shapes[name]:
            fail(f"{name} has shape {list(arr.shape)}, config.json implies {shapes[name]}")
        if dt != want_dt:
            fail(f"{name} is {dt}, expected {want_dt}")
        expect = torch_bits(ref[name][1], a.dtype)
        got = stored_bits(dt, arr)
        bad = np.flatnonzero(expect.reshape(-1) != got.reshape(-1))
        if bad.size:
            i = bad[0]
            fail(f"{name}[{i}]: stored bits {got.reshape(-1)[i]:#x}, torch rounds "
                 f"{ref[name][1].reshape(-1)[i]!r} to {expect.reshape(-1)[i]:#x} ({bad.size} differ)")
    print(f"weights_check: {len(tensors)} tensors OK")


def write_safetensors(path, tensors):
    names = {torch.float32: "F32", torch.bfloat16: "BF16", torch.float16: "F16"}
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name, t in tensors.items():
        raw = t.contiguous().view(torch.int32 if t.dtype == torch.float32 else torch.int16).numpy().tobytes()
        header[name] = {"dtype": names[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    h = json.dumps(header).encode()
    h += b" " * ((8 - (8 + len(h)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def write_halves(a):
    gen = torch.Generator().manual_seed(a.seed)
    rnd = torch.randn(512, generator=gen) * torch.logspace(-9, 6, 512)
    hi = torch.randint(0, 0x7F80, (256,), generator=gen, dtype=torch.int64)  # finite: no NaN payloads
    # bf16 ties: low 16 bits exactly 0x8000 (both parities of the kept part); f16 ties in the normal
    # range: low 13 bits exactly 0x1000 with exponents inside f16's range.
    bf16_ties = ((hi << 16) | 0x8000).to(torch.int32).view(torch.float32)
    exp = torch.randint(103, 142, (256,), generator=gen, dtype=torch.int64)
    mant = torch.randint(0, 1 << 10, (256,), generator=gen, dtype=torch.int64)
    f16_ties = ((exp << 23) | (mant << 13) | 0x1000).to(torch.int32).view(torch.float32)
    special = torch.tensor([0.0, -0.0, 1.0, -2.5, 65504.0, 65519.0, 65520.0, 1e5, -1e5, 3.0e38, 3.4e38,
                            float("inf"), float("-inf"), 1e-8, 6e-8, 2.98e-8, 1e-40, -1e-45, 1.00390625,
                            1.01171875])
    x = torch.cat([rnd, bf16_ties, -bf16_ties, f16_ties, -f16_ties, special]).reshape(-1, 4)
    write_safetensors(a.out + ".f32.safetensors", {"x": x})
    write_safetensors(a.out + ".bf16.safetensors", {"x": x.to(torch.bfloat16)})
    write_safetensors(a.out + ".f16.safetensors", {"x": x.to(torch.float16)})
    write_safetensors(a.out + ".f16w.safetensors", {"x": x.to(torch.float16).to(torch.float32)})
    print(f"weights_check: wrote {x.numel()} values")


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("check")
    c.add_argument("dir")
    c.add_argument("--reference", required=True)
    c.add_argument("--dtype", choices=["f32", "bf16", "f16"], required=True)
    c.add_argument("--shards", type=int, default=0)
    w = sub.add_parser("write-halves")
    w.add_argument("--out", required=True)
    w.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    check(a) if a.cmd == "check" else write_halves(a)


if __name__ == "__main__":
    main()
