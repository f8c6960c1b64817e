# Shared by the PyTorch peers: argument helpers, the flop count (ztrain's convention), device
# peaks for MFU, the timing loop and the one-line JSON result.
# Invariant: every peer prints exactly one line starting with RESULT_TAG followed by a JSON object
# (also written to --out when given), whether it succeeded or not, so the harness can parse it.
import json
import math
import os
import statistics
import sys
import time
import traceback

RESULT_TAG = "BENCH_RESULT "
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def add_common_args(p):
    p.add_argument("--device", default="cuda", help="cuda or cpu (cpu: smoke tests with tiny shapes)")
    p.add_argument("--mode", default="eager", choices=["eager", "compile"])
    p.add_argument("--warmup", type=int, default=5, help="untimed steps first (compilation happens here)")
    p.add_argument("--steps", type=int, default=25, help="timed steps")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--run-json", default="",
                   help="the ztrain run.json beside this run: optimizer.params and gradient_clipping "
                        "are taken from it so both sides train with the same hyper-parameters")
    p.add_argument("--out", default="", help="also write the result JSON here")


def hyper_params(run_json):
    """AdamW settings and clipping as ztrain reads them from run.json (docs/config.md defaults)."""
    hp = {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0, "clip": 0.0}
    if run_json:
        with open(run_json) as f:
            cfg = json.load(f)
        op = cfg.get("optimizer", {}).get("params", {})
        hp["lr"] = float(op.get("lr", hp["lr"]))
        hp["betas"] = tuple(float(b) for b in op.get("betas", hp["betas"]))
        hp["eps"] = float(op.get("eps", hp["eps"]))
        hp["weight_decay"] = float(op.get("weight_decay", hp["weight_decay"]))
        hp["clip"] = float(cfg.get("gradient_clipping", 0.0))
    return hp


def peak_flops(device_name, dtype):
    """Dense peak flop/s, the same table as ztrain's CudaBackend::PeakFlops (fp32 as TF32)."""
    low = dtype in ("bf16", "fp16")
    if "H100" in device_name:
        if "PCIe" in device_name:
            return 756e12 if low else 378e12
        if "NVL" in device_name:
            return 0.0
        return 989e12 if low else 494e12
    if "H200" in device_name:
        return 989e12 if low else 494e12
    return 0.0


def transformer_flops_per_token(linear_params, n_layer, seq, attn_width):
    """ztrain's op-cost convention for one training step, per token: every matmul 2mnk forward
    and twice that backward (6 x the weights of the linear layers, LM head included, embedding
    gathers excluded); causal attention 4*T*S*D per head forward halved by the mask (2*T*width per
    token and layer) and 2.5x that backward. Elementwise ops, norms and the optimizer are not
    counted here (ztrain counts them too; they are ~1% for these models)."""
    return 6.0 * linear_params + 3.5 * 2.0 * n_layer * seq * attn_width


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def timed_loop(step, warmup, steps, sync):
    """Runs warmup + steps calls of step(i); each call is followed by sync() so the host clock
    measures the device work (ztrain also waits for the loss every step). Returns (per-step
    seconds of the timed steps, first-step seconds, unix start, unix end of the timed window)."""
    first = None
    for i in range(warmup):
        t = time.perf_counter()
        step(i)
        sync()
        if first is None:
            first = time.perf_counter() - t
    times = []
    t_start = time.time()
    for i in range(steps):
        t = time.perf_counter()
        step(warmup + i)
        sync()
        times.append(time.perf_counter() - t)
    return times, first, t_start, time.time()


def summarize(times, tokens_per_step, flops_per_token, peak):
    step_s = median(times)
    tps = tokens_per_step / step_s if step_s > 0 else 0.0
    tflops = tps * flops_per_token / 1e12
    return {
        "step_ms": step_s * 1e3,
        "step_ms_all": [round(t * 1e3, 3) for t in times],
        "tokens_per_s": tps,
        "tflops": tflops,
        "mfu": tflops * 1e12 / peak if peak > 0 else None,
    }


def emit(result, out_path):
    line = json.dumps(result, sort_keys=True, allow_nan=False, default=str)
    if out_path:
        tmp = out_path + ".tmp"
        with open(tmp, "w") as f:
            f.write(line + "\n")
        os.replace(tmp, out_path)
    print(RESULT_TAG + line, flush=True)


def clean(v):
    """JSON has no NaN: None instead."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: clean(x) for k, x in v.items()}
    if isinstance(v, list):
        return [clean(x) for x in v]
    return v


def run_main(name, body, args):
    """Calls body(args) -> dict, emits it with status ok, or the error with status failed."""
    base = {"peer": name, "argv": sys.argv[1:]}
    try:
        res = body(args)
        if res is None:  # a non-zero rank of a distributed run: rank 0 reports
            return 0
        base.update(res)
        base["status"] = "ok"
        emit(clean(base), args.out)
        return 0
    except Exception as e:  # the harness records the failure and goes on
        base["status"] = "failed"
        base["error"] = "%s: %s" % (type(e).__name__, e)
        base["traceback"] = traceback.format_exc()[-4000:]
        emit(clean(base), args.out)
        return 1
