#!/usr/bin/env python3
# Checks that the peers compute ztrain's models: tests/models/torch_reference.py (the float64
# oracle ztrain's own model tests are checked against) writes random weights, tokens, targets and
# the reference loss; the GPT-2 peer (gpt2_peer.GPT2) and the Llama peer (fsdp2_llama.Llama) load
# those weights and must give the same loss in float64. Runs on the CPU in seconds (torch 1.13+).
# Invariant: exits 0 only when both models match to 1e-6 relative; prints one BENCH_RESULT line.
import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402

import torch  # noqa: E402

ORACLE = os.path.join(C.REPO, "tests", "models", "torch_reference.py")
# The oracle's default sizes (torch_reference.py's argparse defaults) plus its fixed epsilons.
SIZES = dict(vocab=67, positions=16, embd=32, intermediate=40, layers=2, heads=4, kv_heads=2, theta=10000.0)


def read_safetensors(path):
    kinds = {"F32": torch.float32, "I32": torch.int32, "I64": torch.int64}
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, h in header.items():
        if name == "__metadata__":
            continue
        a, b = h["data_offsets"]
        t = torch.frombuffer(bytearray(data[a:b]), dtype=kinds[h["dtype"]]) if b > a else torch.zeros(0)
        out[name] = t.reshape(h["shape"]).clone()
    return out


def oracle(model, seed, tmp):
    path = os.path.join(tmp, model + ".safetensors")
    subprocess.run([sys.executable, ORACLE, model, "--out", path, "--seed", str(seed)], check=True,
                   capture_output=True, text=True)
    return read_safetensors(path)


def check_gpt2(ref):
    import gpt2_peer

    s = SIZES
    cfg = {"vocab_size": s["vocab"], "n_positions": s["positions"], "n_embd": s["embd"],
           "n_layer": s["layers"], "n_head": s["heads"], "layer_norm_epsilon": 1e-5}
    m = gpt2_peer.GPT2(cfg).double()
    names = {"wte.weight": "transformer.wte.weight", "wpe.weight": "transformer.wpe.weight",
             "ln_f.weight": "transformer.ln_f.weight", "ln_f.bias": "transformer.ln_f.bias"}
    for l in range(s["layers"]):
        for ours, hf in (("ln_1", "ln_1"), ("ln_2", "ln_2"), ("c_attn", "attn.c_attn"),
                         ("attn_proj", "attn.c_proj"), ("c_fc", "mlp.c_fc"), ("mlp_proj", "mlp.c_proj")):
            for kind in ("weight", "bias"):
                names["h.%d.%s.%s" % (l, ours, kind)] = "transformer.h.%d.%s.%s" % (l, hf, kind)
    with torch.no_grad():
        for name, p in m.named_parameters():
            w = ref[names[name]].double()
            p.copy_(w.t() if p.dim() == 2 and name.startswith("h.") else w)  # HF Conv1D is (in, out)
    return m(ref["tokens"].long(), ref["targets"].long()).item()


def check_llama(ref):
    import fsdp2_llama

    s = SIZES
    cfg = {"vocab_size": s["vocab"], "hidden_size": s["embd"], "intermediate_size": s["intermediate"],
           "num_hidden_layers": s["layers"], "num_attention_heads": s["heads"],
           "num_key_value_heads": s["kv_heads"], "rms_norm_eps": 1e-6, "rope_theta": s["theta"]}
    m = fsdp2_llama.Llama(cfg).double()
    with torch.no_grad():
        for name, p in m.named_parameters():
            hf = name
            if name.startswith("layers."):
                part = name.split(".")[2]
                sub = "self_attn." if part in ("q_proj", "k_proj", "v_proj", "o_proj") else (
                    "mlp." if part in ("gate_proj", "up_proj", "down_proj") else "")
                hf = "model.layers.%s.%s%s" % (name.split(".")[1], sub, ".".join(name.split(".")[2:]))
            elif name != "lm_head.weight":
                hf = "model." + name
            p.copy_(ref[hf].double())
    return m(ref["tokens"].long(), ref["targets"].long()).item()


def main(args):
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for model, fn in (("gpt2", check_gpt2), ("llama", check_llama)):
            ref = oracle(model, args.seed, tmp)
            ours, want = fn(ref), ref["ref.loss"].item()
            rel = abs(ours - want) / abs(want)
            results[model] = {"peer_loss": ours, "oracle_loss": want, "rel_err": rel, "ok": rel < 1e-6}
    bad = [k for k, v in results.items() if not v["ok"]]
    if bad:
        raise AssertionError("peer model(s) %s differ from the oracle: %s" % (bad, results))
    return {"system": "peer model check", "models": results}


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--seed", type=int, default=3)
    p.add_argument("--out", default="")
    sys.exit(C.run_main("check_models", main, p.parse_args()))
