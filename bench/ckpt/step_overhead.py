#!/usr/bin/env python3
# step_overhead.py: the training-step cost of checkpointing (PCcheck's Fig 8: throughput against
# checkpoint frequency; Fig 12: against the number of concurrent checkpoints). Runs `ztrain train`
# on a config it writes, once per checkpoint interval x max_in_flight C and, between those, runs
# without checkpoints ("off"); reads each run's metrics.jsonl and reports the step-time overhead
# of each run against the baseline runs next to it in time, as a markdown table (stdout) and JSON.
# Python 3 standard library only. See README.md here.
#
# Two step times are read from metrics.jsonl after the warm-up steps:
#   wall ms/step  the mean time between consecutive step records ("time"): the training step plus
#                 everything the loop does after it, i.e. the snapshot copy and any wait for a free
#                 checkpoint slot (C in flight). This is the overhead a run pays (the headline).
#   step_ms       the median of the engine's own step time: it excludes the checkpoint call, so it
#                 only shows the background writers slowing the compute down (CPU/memory contention).
# Invariants: every run starts from an empty output directory and never resumes (checkpoint.resume
# "never"); a run that fails or writes no usable step records is reported as a failure, never as
# numbers; the checkpoint directories are deleted after each run (--keep-checkpoints keeps them).
import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

# Model presets: a GPT-2 whose checkpoint is not free next to its step.
#   cpu-23m: ~23M parameters (278 MB of f32 master + AdamW moments per checkpoint); one 64-token
#            micro-batch keeps a step well under a second on 2 cores.
#   gpt2-124m: the real GPT-2 small (1.5 GB per checkpoint), for the GPU machine.
PRESETS = {
    "cpu-23m": {
        "config": {
            "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "vocab_size": 8192,
            "n_positions": 128, "n_embd": 512, "n_layer": 6, "n_head": 8,
            "activation_function": "gelu_new", "layer_norm_epsilon": 1e-05, "resid_pdrop": 0.0,
            "embd_pdrop": 0.0, "attn_pdrop": 0.0, "tie_word_embeddings": True, "torch_dtype": "float32",
        },
        "micro_batch": 1, "seq": 64, "precision": "fp32",
    },
    "gpt2-124m": {
        "config_file": os.path.join(REPO, "configs", "gpt2-124m.json"),
        "micro_batch": 8, "seq": 1024, "precision": "bf16",
    },
}


def write_json(path, obj):
    """Writes JSON through a temporary name and a rename, so a reader never sees half a file."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def int_list(text):
    try:
        vals = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError("expected comma-separated integers, got %r" % text)
    if not vals or any(v < 0 for v in vals):
        raise argparse.ArgumentTypeError("expected non-negative integers, got %r" % text)
    return vals


def param_count(cfg):
    """GPT-2 parameters (tied embeddings), for the report only."""
    d, L, V, P = cfg["n_embd"], cfg["n_layer"], cfg["vocab_size"], cfg["n_positions"]
    inner = cfg.get("n_inner") or 4 * d
    per_layer = 2 * 2 * d + (d * 3 * d + 3 * d) + (d * d + d) + (d * inner + inner) + (inner * d + d)
    return V * d + P * d + L * per_layer + 2 * d


def run_config(args, model_config_path, train_file, out_dir, interval, c):
    p = args.preset
    cfg = {
        "train_micro_batch_size_per_gpu": args.micro_batch or p["micro_batch"],
        "gradient_accumulation_steps": 1,
        "gradient_clipping": 1.0,
        "optimizer": {"type": "AdamW", "params": {"lr": 1e-4, "betas": [0.9, 0.95], "eps": 1e-8,
                                                  "weight_decay": 0.0}},
        "steps_per_print": max(1, args.steps),
        "model": {"config": model_config_path},
        "data": {"train": train_file, "seq_len": args.seq or p["seq"]},
        "run": {"steps": args.steps, "seed": 1, "output_dir": out_dir},
    }
    precision = args.precision or p["precision"]
    if precision == "bf16":
        cfg["bf16"] = {"enabled": True}
    elif precision == "fp16":
        cfg["fp16"] = {"enabled": True, "loss_scale": 0, "initial_scale_power": 16}
    if interval > 0:
        cfg["checkpoint"] = {
            "interval": interval, "max_in_flight": c, "dir": os.path.join(out_dir, "checkpoints"),
            "tiers": ["disk"], "keep_last": 2, "io_threads": args.io_threads, "chunk_mb": args.chunk_mb,
            "direct_io": args.direct_io, "resume": "never",
        }
    return cfg


def read_steps(path):
    """The step records of a metrics.jsonl (a record cut short by a crash is skipped)."""
    recs = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                r = json.loads(line)
            except ValueError:
                continue
            if isinstance(r, dict) and "step_ms" in r and "time" in r and "step" in r:
                recs.append(r)
    recs.sort(key=lambda r: r["step"])
    return recs


def summarize(recs, warmup):
    """Median step_ms and mean wall time per step over the records after `warmup` steps."""
    after = [r for r in recs if r["step"] > warmup]
    if len(after) < 3:
        raise RuntimeError("only %d step records after the %d warm-up steps; raise --steps" % (len(after), warmup))
    wall = (after[-1]["time"] - after[0]["time"]) / (after[-1]["step"] - after[0]["step"])
    return {
        "first_step": after[0]["step"], "last_step": after[-1]["step"],
        "wall_ms_per_step": 1e3 * wall,
        "median_step_ms": statistics.median(r["step_ms"] for r in after),
    }


def checkpoint_bytes(ckpt_dir):
    """Size of the shard LATEST names (None when there is none)."""
    try:
        with open(os.path.join(ckpt_dir, "LATEST")) as f:
            name = f.read().strip()
        return os.path.getsize(os.path.join(ckpt_dir, name, "rank-00000.shard"))
    except OSError:
        return None


def one_run(args, model_config_path, train_file, name, interval, c):
    out_dir = os.path.join(args.out, "runs", name)
    shutil.rmtree(out_dir, ignore_errors=True)
    os.makedirs(out_dir)
    cfg_path = os.path.join(out_dir, "run.json")
    write_json(cfg_path, run_config(args, model_config_path, train_file, out_dir, interval, c))
    log_path = os.path.join(out_dir, "train.log")
    t0 = time.monotonic()
    with open(log_path, "w") as log:
        proc = subprocess.run([args.ztrain, "train", "--config", cfg_path, "--no-progress", "--no-export"],
                              stdout=log, stderr=subprocess.STDOUT, env=args.env)
    run_s = time.monotonic() - t0
    result = {"name": name, "interval": interval, "max_in_flight": c if interval > 0 else None,
              "run_seconds": run_s, "exit_code": proc.returncode, "log": log_path}
    if proc.returncode != 0:
        with open(log_path) as f:
            tail = f.read()[-2000:]
        result["error"] = "ztrain exited with %d; the end of %s:\n%s" % (proc.returncode, log_path, tail)
        return result
    try:
        result.update(summarize(read_steps(os.path.join(out_dir, "metrics.jsonl")), args.warmup))
    except (OSError, RuntimeError) as e:
        result["error"] = "%s: %s" % (os.path.join(out_dir, "metrics.jsonl"), e)
        return result
    if interval > 0:
        ckpt_dir = os.path.join(out_dir, "checkpoints")
        result["checkpoint_bytes"] = checkpoint_bytes(ckpt_dir)
        # Checkpoints taken inside the measured window (their cost shows in the next record's time).
        result["checkpoints_in_window"] = sum(
            1 for s in range(result["first_step"], result["last_step"]) if s % interval == 0)
        if not args.keep_checkpoints:
            shutil.rmtree(ckpt_dir, ignore_errors=True)
    return result


def fmt_pct(x):
    return "%+.1f%%" % x


def attach_baselines(results):
    """Gives every successful checkpointing run the mean of its nearest successful baseline runs
    before and after it (in execution order) and its overheads against them: on a shared machine
    whose load drifts, a neighbour is a fairer reference than a baseline from far away."""
    for k, r in enumerate(results):
        if "error" in r or r["interval"] == 0:
            continue
        near = []
        for rng in (range(k - 1, -1, -1), range(k + 1, len(results))):
            for j in rng:
                b = results[j]
                if b["interval"] == 0 and "error" not in b:
                    near.append(b)
                    break
        if not near:
            continue
        r["baseline_wall_ms_per_step"] = statistics.mean(b["wall_ms_per_step"] for b in near)
        r["baseline_median_step_ms"] = statistics.mean(b["median_step_ms"] for b in near)
        r["overhead_pct"] = 100 * (r["wall_ms_per_step"] / r["baseline_wall_ms_per_step"] - 1)
        r["step_ms_overhead_pct"] = 100 * (r["median_step_ms"] / r["baseline_median_step_ms"] - 1)


def report(results, args, meta):
    attach_baselines(results)
    ok = [r for r in results if "error" not in r]
    offs = [r for r in ok if r["interval"] == 0]
    if not offs:
        print("no successful run without checkpoints: no baseline", file=sys.stderr)
        return None
    base_wall = statistics.median(r["wall_ms_per_step"] for r in offs)
    base_step = statistics.median(r["median_step_ms"] for r in offs)
    spread = (max(r["wall_ms_per_step"] for r in offs) - min(r["wall_ms_per_step"] for r in offs)) / base_wall * 100
    groups = {}
    for r in ok:
        if r["interval"] == 0:
            continue
        groups.setdefault((r["interval"], r["max_in_flight"]), []).append(r)
    rows = []
    for (interval, c), rs in sorted(groups.items()):
        wall = statistics.median(r["wall_ms_per_step"] for r in rs)
        step = statistics.median(r["median_step_ms"] for r in rs)
        rows.append({
            "interval": interval, "max_in_flight": c, "runs": len(rs),
            "wall_ms_per_step": wall, "overhead_pct": statistics.median(r["overhead_pct"] for r in rs),
            "overhead_pct_runs": [r["overhead_pct"] for r in rs],
            "median_step_ms": step, "step_ms_overhead_pct": statistics.median(r["step_ms_overhead_pct"] for r in rs),
            "checkpoints_in_window": rs[0]["checkpoints_in_window"],
            "checkpoint_mb": (rs[0]["checkpoint_bytes"] or 0) / 1e6,
        })
    intervals = sorted({r["interval"] for r in rows})
    cs = sorted({r["max_in_flight"] for r in rows})
    by = {(r["interval"], r["max_in_flight"]): r for r in rows}

    print("\n## Step-time overhead of checkpointing (%s, %d steps, warm-up %d, %s)\n" %
          (meta["model"], args.steps, args.warmup, meta["machine"]))
    print("Baseline (no checkpoints): median %.1f wall ms/step, median step_ms %.1f over %d baseline runs, "
          "which spread %.1f%% (max - min): the machine's drift. Each overhead below is against the mean of the "
          "baseline runs just before and after that run, the median over %d round(s).\n" %
          (base_wall, base_step, len(offs), spread, args.repeats))
    print("Overhead in wall time per step (what a run pays; in brackets the wall ms/step):\n")
    print("| interval | " + " | ".join("C=%d" % c for c in cs) + " |")
    print("|---:|" + "---:|" * len(cs))
    print("| off | " + " | ".join("0 (%.0f)" % base_wall for _ in cs) + " |")
    for i in intervals:
        cells = []
        for c in cs:
            r = by.get((i, c))
            cells.append("%s (%.0f)" % (fmt_pct(r["overhead_pct"]), r["wall_ms_per_step"]) if r else "-")
        print("| %d | %s |" % (i, " | ".join(cells)))
    print("\nDetails:\n")
    print("| interval | C | checkpoints measured | checkpoint MB | wall ms/step | overhead | each round | "
          "median step_ms | step_ms overhead |")
    print("|---:|---:|---:|---:|---:|---:|---|---:|---:|")
    for r in rows:
        print("| %d | %d | %d | %.0f | %.1f | %s | %s | %.1f | %s |" % (
            r["interval"], r["max_in_flight"], r["checkpoints_in_window"], r["checkpoint_mb"],
            r["wall_ms_per_step"], fmt_pct(r["overhead_pct"]), " ".join("%+.0f" % x for x in r["overhead_pct_runs"]),
            r["median_step_ms"], fmt_pct(r["step_ms_overhead_pct"])))
    failed = [r for r in results if "error" in r]
    for r in failed:
        print("\nFAILED %s: %s" % (r["name"], r["error"]))
    sys.stdout.flush()
    return {"baseline_wall_ms_per_step": base_wall, "baseline_median_step_ms": base_step,
            "baseline_spread_pct": spread, "rows": rows}


def main():
    ap = argparse.ArgumentParser(description="Step-time overhead of checkpointing vs interval and max_in_flight "
                                             "(bench/ckpt/README.md)")
    ap.add_argument("--ztrain", default=os.path.join(REPO, "build", "ztrain"), help="the ztrain binary")
    ap.add_argument("--out", default=os.path.join(REPO, "out", "ckpt-bench"), help="working and output directory")
    ap.add_argument("--steps", type=int, default=60, help="training steps per run")
    ap.add_argument("--warmup", type=int, default=5, help="steps left out of the measurement")
    ap.add_argument("--model", default="cpu-23m", help="preset (%s) or a Hugging Face GPT-2 config.json"
                    % ", ".join(PRESETS))
    ap.add_argument("--micro-batch", type=int, default=0, help="override the preset's micro-batch")
    ap.add_argument("--seq", type=int, default=0, help="override the preset's sequence length")
    ap.add_argument("--precision", choices=["fp32", "bf16", "fp16"], help="override the preset's precision")
    ap.add_argument("--intervals", type=int_list, default=[1, 2, 5, 10, 50], help="checkpoint intervals (steps)")
    ap.add_argument("--concurrency", type=int_list, default=[1, 2, 4], help="max_in_flight values")
    ap.add_argument("--c-max-interval", type=int, default=0,
                    help="sweep C only for intervals up to this (larger ones use C=2); 0: every interval")
    ap.add_argument("--io-threads", type=int, default=4)
    ap.add_argument("--chunk-mb", type=int, default=8)
    ap.add_argument("--direct-io", action="store_true")
    ap.add_argument("--threads", type=int, default=0,
                    help="ZT_NUM_THREADS for the runs (0: leave it unset, every core); on a loaded shared "
                         "machine 1 avoids OpenMP threads spinning against other jobs")
    ap.add_argument("--repeats", type=int, default=1, help="times the whole sweep runs (median per case)")
    ap.add_argument("--baseline-every", type=int, default=1,
                    help="a baseline run (no checkpoints) before every N checkpointing runs")
    ap.add_argument("--json", help="JSON output (default <out>/step_overhead.json)")
    ap.add_argument("--keep-checkpoints", action="store_true", help="do not delete each run's checkpoints")
    args = ap.parse_args()

    if not (os.path.isfile(args.ztrain) and os.access(args.ztrain, os.X_OK)):
        ap.error("--ztrain %s is not an executable; build it (cmake --build <build> --target ztrain)" % args.ztrain)
    if args.steps <= args.warmup + 3:
        ap.error("--steps (%d) must exceed --warmup (%d) by more than 3" % (args.steps, args.warmup))
    if any(i == 0 for i in args.intervals) or any(c < 1 for c in args.concurrency) or args.repeats < 1:
        ap.error("intervals and concurrency values must be >= 1 (the baseline without checkpoints always runs)")
    if args.model in PRESETS:
        args.preset = PRESETS[args.model]
    elif os.path.isfile(args.model):
        args.preset = {"config_file": os.path.abspath(args.model), "micro_batch": 1, "seq": 64, "precision": "fp32"}
    else:
        ap.error("--model %s is neither a preset (%s) nor a file" % (args.model, ", ".join(PRESETS)))
    if args.threads < 0:
        ap.error("--threads must be >= 0")
    if args.baseline_every < 1:
        ap.error("--baseline-every must be >= 1")
    args.env = dict(os.environ)
    if args.threads > 0:
        args.env["ZT_NUM_THREADS"] = str(args.threads)
    args.out = os.path.abspath(args.out)
    os.makedirs(args.out, exist_ok=True)

    if "config" in args.preset:
        model_cfg = args.preset["config"]
        model_config_path = os.path.join(args.out, "model-%s.json" % args.model)
        write_json(model_config_path, model_cfg)
    else:
        model_config_path = args.preset["config_file"]
        with open(model_config_path) as f:
            model_cfg = json.load(f)
    vocab = model_cfg["vocab_size"]
    seq = args.seq or args.preset["seq"]
    mb = args.micro_batch or args.preset["micro_batch"]
    tokens = max(1 << 20, 2 * (args.steps + 10) * mb * (seq + 1))
    train_file = os.path.join(args.out, "data-v%d-%d.bin" % (vocab, tokens))
    if not os.path.exists(train_file):
        subprocess.run([args.ztrain, "data", "synth", "--out", train_file, "--vocab", str(vocab), "--tokens",
                        str(tokens), "--branching", "2", "--seed", "1"], check=True, stdout=subprocess.DEVNULL)

    cases = []
    for i in args.intervals:
        c_values = args.concurrency if (args.c_max_interval <= 0 or i <= args.c_max_interval) else [2]
        cases += [(i, c) for c in c_values]
    # Rounds of every case in an order shuffled per round (fixed seed), so the machine's slow
    # spells do not always hit the same cases; a baseline before every --baseline-every cases and
    # one at the end, so each case has a baseline close by in time.
    order = []
    nbase = 0
    for rep in range(args.repeats):
        shuffled = list(cases)
        if args.repeats > 1:
            random.Random(rep).shuffle(shuffled)
        for n, (i, c) in enumerate(shuffled):
            if n % args.baseline_every == 0:
                order.append((0, 0, nbase))
                nbase += 1
            order.append((i, c, rep))
    order.append((0, 0, nbase))

    meta = {
        "model": "%s (%.1fM parameters, micro-batch %d x %d tokens)" % (args.model, param_count(model_cfg) / 1e6, mb, seq),
        "machine": "%s, %d CPUs, ZT_NUM_THREADS=%s, load average %.1f at start" % (
            os.uname().nodename, os.cpu_count(), args.env.get("ZT_NUM_THREADS", "unset"), os.getloadavg()[0]),
    }
    results = []
    t_start = time.monotonic()
    for n, (i, c, rep) in enumerate(order, 1):
        name = "off-%d" % rep if i == 0 else "i%d-c%d-r%d" % (i, c, rep)
        r = one_run(args, model_config_path, train_file, name, i, c)
        results.append(r)
        if "error" in r:
            print("[%d/%d] %s: FAILED (%s)" % (n, len(order), name, r["error"].splitlines()[0]), file=sys.stderr)
        else:
            print("[%d/%d] %s: %.1f wall ms/step, median step_ms %.1f, run %.0f s" % (
                n, len(order), name, r["wall_ms_per_step"], r["median_step_ms"], r["run_seconds"]), file=sys.stderr)
    summary = report(results, args, meta)
    out = {
        "bench": "step_overhead", "meta": meta, "steps": args.steps, "warmup": args.warmup,
        "io_threads": args.io_threads, "chunk_mb": args.chunk_mb, "direct_io": args.direct_io,
        "load_average_end": list(os.getloadavg()), "sweep_seconds": time.monotonic() - t_start,
        "summary": summary, "runs": results,
    }
    write_json(args.json or os.path.join(args.out, "step_overhead.json"), out)
    return 0 if summary is not None and all("error" not in r for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
