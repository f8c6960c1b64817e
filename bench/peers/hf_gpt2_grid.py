#!/usr/bin/env python3
# Seed 004's peer (case b): Hugging Face transformers' GPT2LMHeadModel, GPT-2 124M (built from
# configs/gpt2-124m.json, so dropout 0 as in ztrain; seed 004 used HF's defaults, dropout 0.1),
# batch 32 x seq 128 on one GPU, random tokens, torch AdamW with the run.json's hyper-parameters.
# --dtype fp16: torch.autocast(float16) + GradScaler over f32 parameters; fp32: plain f32 (TF32
# off unless --tf32); bf16: autocast(bfloat16). --mode compile wraps the model in torch.compile.
# HF's loss shifts the labels inside the model, so each sequence scores T-1 targets; tokens/s
# counts B*T input tokens, as ztrain and seed 004 do.
# Invariant: prints one BENCH_RESULT JSON line (see _common.py), also on failure.
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402

import torch  # noqa: E402


def main(args):
    from transformers import GPT2Config, GPT2LMHeadModel  # the failure is recorded if missing
    import transformers

    torch.manual_seed(args.seed)
    with open(args.model_config) as f:
        raw = json.load(f)
    keys = ("vocab_size", "n_positions", "n_embd", "n_layer", "n_head", "activation_function",
            "layer_norm_epsilon", "resid_pdrop", "embd_pdrop", "attn_pdrop", "initializer_range")
    cfg = GPT2Config(**{k: raw[k] for k in keys if k in raw})
    dev = torch.device(args.device)
    if args.device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = args.tf32
        torch.backends.cudnn.allow_tf32 = args.tf32
    model = GPT2LMHeadModel(cfg).to(dev)
    model.train()
    hp = C.hyper_params(args.run_json)
    kw = dict(lr=hp["lr"], betas=hp["betas"], eps=hp["eps"], weight_decay=hp["weight_decay"])
    if args.device == "cuda":
        kw["fused"] = True
    opt = torch.optim.AdamW(model.parameters(), **kw)
    fwd = torch.compile(model) if args.mode == "compile" else model
    B, T, V = args.batch, args.seq, cfg.vocab_size
    g = torch.Generator(device="cpu").manual_seed(args.seed)
    pool = [torch.randint(0, V, (B, T), generator=g).to(dev) for _ in range(4)]
    half = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(args.dtype)
    amp = torch.autocast(device_type=args.device, dtype=half or torch.float16, enabled=half is not None)
    scaler = torch.amp.GradScaler(args.device, enabled=args.dtype == "fp16")

    def step(i):
        ids = pool[i % len(pool)]
        with amp:
            loss = fwd(input_ids=ids, labels=ids).loss
        scaler.scale(loss).backward()
        if hp["clip"] > 0:
            scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(model.parameters(), hp["clip"])
        scaler.step(opt)
        scaler.update()
        opt.zero_grad(set_to_none=True)
        step.loss = loss.detach()

    sync = torch.cuda.synchronize if args.device == "cuda" else (lambda: None)
    if args.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times, first, t0, t1 = C.timed_loop(step, args.warmup, args.steps, sync)
    name = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"
    linear = cfg.n_layer * 12 * cfg.n_embd ** 2 + V * cfg.n_embd
    fpt = C.transformer_flops_per_token(linear, cfg.n_layer, T, cfg.n_embd)
    res = C.summarize(times, B * T, fpt, C.peak_flops(name, args.dtype))
    res.update({
        "system": "HF %s %s" % (args.dtype, args.mode), "mode": args.mode, "dtype": args.dtype,
        "batch": B, "seq": T, "tf32": bool(args.tf32), "flops_per_token": fpt,
        "precision_note": {"fp16": "autocast fp16 + GradScaler, f32 parameters",
                           "bf16": "autocast bf16, f32 parameters"}.get(args.dtype, "f32"),
        "n_params": sum(p.numel() for p in model.parameters()), "first_step_s": first,
        "window_unix": [t0, t1], "final_loss": float(step.loss), "hyper_params": hp,
        "device_name": name, "torch": torch.__version__, "transformers": transformers.__version__,
        "attn_implementation": getattr(model.config, "_attn_implementation", None),
        "peak_mem_bytes": torch.cuda.max_memory_allocated() if args.device == "cuda" else None,
    })
    return res


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    C.add_common_args(p)
    p.add_argument("--model-config", default=os.path.join(C.REPO, "configs", "gpt2-124m.json"))
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--dtype", default="fp16", choices=["fp16", "fp32", "bf16"])
    p.add_argument("--tf32", action="store_true", help="allow TF32 matmuls in fp32")
    a = p.parse_args()
    sys.exit(C.run_main("hf_gpt2_grid", main, a))
