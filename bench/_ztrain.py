# The ztrain side of the benchmark harness: run.json configs in DeepSpeed's keys (docs/config.md),
# synthetic token files from `ztrain data synth`, and the summary of <output_dir>/metrics.jsonl.
# Invariant: summarize_metrics uses only the step records after the warm-up steps, and reports a
# run without such records as a failure rather than as numbers.
import json
import os
import statistics


def run_config(*, model_config, train_file, seq, micro_batch, zero_stage, precision, steps, output_dir,
               optimizer, clip=1.0, seed=1):
    """A complete run.json (absolute paths) for one benchmark run: constant learning rate, no
    evaluation; precision is 'bf16', 'fp16' (dynamic loss scaling, DeepSpeed's defaults) or 'fp32'."""
    cfg = {
        "train_micro_batch_size_per_gpu": micro_batch,
        "gradient_accumulation_steps": 1,
        "gradient_clipping": clip,
        "zero_optimization": {"stage": zero_stage},
        "optimizer": {"type": "AdamW", "params": dict(optimizer)},
        "steps_per_print": max(1, min(10, steps)),
        "model": {"config": os.path.abspath(model_config)},
        "data": {"train": os.path.abspath(train_file), "seq_len": seq},
        "run": {"steps": steps, "seed": seed, "output_dir": os.path.abspath(output_dir)},
    }
    if precision == "bf16":
        cfg["bf16"] = {"enabled": True}
    elif precision == "fp16":
        cfg["fp16"] = {"enabled": True, "loss_scale": 0, "initial_scale_power": 16}
    elif precision != "fp32":
        raise ValueError("precision must be bf16, fp16 or fp32, got %r" % precision)
    return cfg


def write_json(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


def synth_command(ztrain, path, vocab, tokens):
    return [ztrain, "data", "synth", "--out", path, "--vocab", str(vocab), "--tokens", str(tokens),
            "--branching", "2", "--seed", "1"]


def read_metrics(path):
    recs = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                r = json.loads(line)
            except ValueError:
                continue  # a record cut by a crash: the rest are still good
            if "step_ms" in r:
                recs.append(r)
    return recs


def _median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def summarize_metrics(path, warmup):
    """Medians over the steps after `warmup` of one rank-0 metrics.jsonl. Raises ValueError when
    there is nothing to summarize."""
    if not os.path.exists(path):
        raise ValueError("no metrics file %s (the run did not reach its first step)" % path)
    recs = read_metrics(path)
    timed = [r for r in recs if r["step"] > warmup]
    if not timed:
        raise ValueError("%s has %d step records, none after the %d warm-up steps" % (path, len(recs), warmup))
    losses = [r.get("loss") for r in recs]
    out = {
        "steps_total": len(recs),
        "steps_timed": len(timed),
        "step_ms": _median([r["step_ms"] for r in timed]),
        "step_ms_all": [round(r["step_ms"], 3) for r in timed],
        "tokens_per_s": _median([r["tokens_per_s"] for r in timed]),
        "tflops": _median([r.get("tflops") for r in timed]),
        "mfu": _median([r.get("mfu") for r in timed]),
        "peak_mem_bytes": max(r.get("peak_mem_bytes") or 0 for r in recs),
        "predicted_mem_bytes": recs[-1].get("predicted_mem_bytes"),
        "skipped_steps": sum(1 for r in recs if r.get("skipped")),
        "loss_first": losses[0],
        "final_loss": losses[-1],
        # The timed window in unix time: from the end of the last warm-up step to the last step.
        "window_unix": [recs[len(recs) - len(timed) - 1]["time"] if len(recs) > len(timed) else
                        timed[0]["time"] - timed[0]["step_ms"] / 1e3, timed[-1]["time"]],
    }
    if timed[0].get("step_ms") and out["tflops"] and out["tokens_per_s"]:
        out["flops_per_token"] = out["tflops"] * 1e12 / out["tokens_per_s"]
    warnings = []
    if any(x is None for x in losses):
        warnings.append("non-finite loss in %d of %d steps" % (sum(x is None for x in losses), len(losses)))
    if out["skipped_steps"]:
        warnings.append("%d fp16 overflow steps skipped" % out["skipped_steps"])
    if warnings:
        out["warnings"] = warnings
    return out


def device_line(log_text):
    """The 'device: ...' line ztrain train logs (which device the run took), if any."""
    for line in log_text.splitlines():
        i = line.find("device: ")
        if i >= 0:
            return line[i + len("device: "):].strip()
    return None
