#!/usr/bin/env python3
# ztrain's GPU benchmark harness (issue 5, item 6): measures ztrain and PyTorch peers on the same
# model shapes in one run and writes <out>/results.json, results.md, a chart per case and
# runs.tar.gz (every run's config, metrics and log). Cases:
#   a  GPT-2 124M, 1 GPU, bf16, micro-batch 16 x seq 1024: ztrain vs our PyTorch peer, eager and
#      torch.compile (bench/peers/gpt2_peer.py)
#   b  seed 004's grid, 1 GPU, GPT-2 124M, bs 32 x seq 128: ztrain ZeRO 0-3 x fp16/fp32/bf16 vs
#      HF GPT2LMHeadModel fp16/fp32, eager/compile (bench/peers/hf_gpt2_grid.py)
#   c  Llama-3-8B shape, 4 GPUs, bf16, bs 2 x seq 2048 per GPU: ztrain ZeRO-3 (`ztrain launch`)
#      vs FSDP2 with and without torch.compile (bench/peers/fsdp2_llama.py); only with >= 4 GPUs
# --smoke runs the same code paths on the CPU with tiny models (ZT_DEVICE=cpu); peers then run on
# the CPU in eager mode when torch is importable, and are skipped when it is not.
# Invariant: every subprocess has a timeout (bounded by --deadline-unix); a failing or timed-out
# run is recorded with the tail of its output and the others go on; the reports are rewritten
# after every run. Usage: bench/README.md.
import argparse
import datetime
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tarfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
PEERS = os.path.join(HERE, "peers")
sys.path.insert(0, HERE)
import _proc  # noqa: E402
import _report  # noqa: E402
import _ztrain as Z  # noqa: E402

CONFIGS = os.path.join(REPO, "configs")
GPT2_OPT = {"lr": 6e-4, "betas": [0.9, 0.95], "eps": 1e-8, "weight_decay": 0.1}
LLAMA_OPT = {"lr": 3e-4, "betas": [0.9, 0.95], "eps": 1e-8, "weight_decay": 0.1}

# Shapes per case: (model config, vocab, micro-batch, seq, ranks) on the GPU and in --smoke.
SHAPES = {
    "a": {"gpu": ("gpt2-124m.json", 50257, 16, 1024, 1), "smoke": ("tiny-gpt2.json", 64, 4, 64, 1)},
    "b": {"gpu": ("gpt2-124m.json", 50257, 32, 128, 1), "smoke": ("tiny-gpt2.json", 64, 8, 32, 1)},
    "c": {"gpu": ("llama-8b-shape.json", 128256, 2, 2048, 4), "smoke": ("tiny-llama.json", 64, 2, 32, 2)},
}
# (warm-up, timed) steps per case; --quick and --smoke use the second and third pairs.
STEPS = {"a": ((5, 25), (2, 8), (2, 5)), "b": ((5, 25), (2, 8), (2, 5)), "c": ((3, 12), (2, 5), (2, 4))}
CASES = {
    "a": {"title": "GPT-2 124M, 1 GPU, bf16, micro-batch 16 x seq 1024",
          "what": "ztrain vs our PyTorch GPT-2 (same shapes, init and AdamW; autocast bf16 over f32 "
                  "parameters), eager and torch.compile. Reference: torch.compile.",
          "note": "PyTorch peers measured on one H200 (DEVICE.md, 2026-11-21): compile 406k tokens/s, "
                  "eager 353k. Target: ztrain >= 1.0x torch.compile (project goal 1.35x)."},
    "b": {"title": "seed 004's grid: GPT-2 124M, 1 GPU, bs 32 x seq 128",
          "what": "ztrain ZeRO 0-3 x fp16/fp32/bf16 vs Hugging Face GPT2LMHeadModel fp16 (autocast + "
                  "GradScaler) and fp32, eager and torch.compile. Each ztrain row is compared with HF "
                  "compile of its precision (bf16 with fp16).",
          "note": "Seed 004 (DeepSpeed, one H100 NVL): ZeRO-0 fp16 23,174 tokens/s, ZeRO-3 fp16 11,923, "
                  "ZeRO-3 fp32 6,968. DEVICE.md (H200): HF fp16 eager 133k, compile 291k. Target: "
                  "ZeRO-3 within 5% of ZeRO-0."},
    "c": {"title": "Llama-3-8B shape, 4 GPUs, bf16, bs 2 x seq 2048 per GPU", "per_gpu": True,
          "what": "ztrain ZeRO-3 (`ztrain launch --nproc 4`) vs PyTorch FSDP2 (fully_shard per block "
                  "and root, bf16 parameters, f32 reduce) with and without torch.compile. tokens/s "
                  "and TFLOP/s are per GPU; ztrain's memory is rank 0's, FSDP2's the largest rank's.",
          "note": "DEVICE.md (4x H200): FSDP2 + compile 9,283 tokens/s/GPU, eager 8,817, 47.4 GB peak. "
                  "Target: ztrain >= 1.0x FSDP2+compile with no higher peak memory (goal 1.15x)."},
}


def parse_args(argv):
    p = argparse.ArgumentParser(description="ztrain vs PyTorch benchmarks (bench/README.md)")
    p.add_argument("--cases", default="a,b,c", help="comma-separated subset of a,b,c")
    p.add_argument("--only", default="", help="comma-separated substrings: run only runs whose name "
                                               "contains one (e.g. ztrain, compile, fsdp2, zs3)")
    p.add_argument("--steps", type=int, default=0, help="timed steps per run (default per case)")
    p.add_argument("--warmup", type=int, default=-1, help="warm-up steps per run (default per case)")
    p.add_argument("--quick", action="store_true", help="fewer steps (a first look)")
    p.add_argument("--smoke", action="store_true", help="tiny models on the CPU: checks the harness")
    p.add_argument("--ztrain", default=os.environ.get("ZTRAIN", os.path.join(REPO, "build", "ztrain")))
    p.add_argument("--peer-python", default=sys.executable, help="python with torch for the peers")
    p.add_argument("--out", default=os.path.join(os.environ["OUT"], "bench") if os.environ.get("OUT")
                   else os.path.join(REPO, "out", "bench"), help="reports go here (default $OUT/bench)")
    p.add_argument("--work-dir", default="", help="run directories and data (default /tmp/ztrain-bench[-smoke])")
    p.add_argument("--deadline-unix", type=float, default=0, help="stop starting runs near this time")
    p.add_argument("--budget-s", type=float, default=0, help="the same, as seconds from now")
    p.add_argument("--timeout-scale", type=float, default=1.0, help="multiply every run's timeout")
    p.add_argument("--ztrain-env", action="append", default=[], metavar="KEY=VALUE",
                   help="extra environment for ztrain runs (e.g. ZT_CUDA_GRAPHS=0); repeatable")
    p.add_argument("--merge", action="append", default=[], metavar="RESULTS_JSON",
                   help="include the runs of an earlier results.json (this run's replace same names)")
    p.add_argument("--report-only", action="store_true", help="run nothing: merge and rewrite reports")
    p.add_argument("--dry-run", action="store_true", help="print the planned runs and exit")
    a = p.parse_args(argv)
    a.cases = [c.strip() for c in a.cases.split(",") if c.strip()]
    bad = [c for c in a.cases if c not in CASES]
    if bad:
        p.error("unknown case(s) %s; use a, b and/or c" % ",".join(bad))
    a.only = [s for s in a.only.split(",") if s]
    if a.budget_s and not a.deadline_unix:
        a.deadline_unix = time.time() + a.budget_s
    if not a.work_dir:
        a.work_dir = "/tmp/ztrain-bench" + ("-smoke" if a.smoke else "")
    a.ztrain = os.path.abspath(a.ztrain)
    return a


PROBE = r"""
import json
r = {}
try:
    import torch
    r["torch"] = torch.__version__
    r["cuda"] = torch.cuda.is_available()
    r["gpus"] = torch.cuda.device_count() if r["cuda"] else 0
    r["gpu_name"] = torch.cuda.get_device_name(0) if r["gpus"] else None
    r["compile"] = hasattr(torch, "compile")
    try:
        from torch.distributed.fsdp import fully_shard
        r["fully_shard"] = True
    except Exception:
        try:
            from torch.distributed._composable.fsdp import fully_shard
            r["fully_shard"] = True
        except Exception:
            r["fully_shard"] = False
except Exception as e:
    r["torch_error"] = "%s: %s" % (type(e).__name__, e)
try:
    import transformers
    r["transformers"] = transformers.__version__
except Exception as e:
    r["transformers_error"] = "%s: %s" % (type(e).__name__, e)
print("PROBE " + json.dumps(r))
"""


class Bench:
    def __init__(self, a):
        self.a = a
        self.mode = "smoke" if a.smoke else "gpu"
        self.rows, self.checks = [], []
        self.cases = {k: dict(v) for k, v in CASES.items()}
        if a.smoke:  # say what actually ran
            for k, c in self.cases.items():
                cfg, _, mb, seq, n = SHAPES[k]["smoke"]
                c["title"] = "[smoke, CPU: %s, %d rank(s), micro-batch %d x seq %d] %s" % (cfg, n, mb, seq, c["title"])
        os.makedirs(a.out, exist_ok=True)
        self.runs_dir = os.path.join(a.work_dir, "runs")
        self.data_dir = os.path.join(a.work_dir, "data")
        if not a.dry_run and not a.report_only:
            shutil.rmtree(self.runs_dir, ignore_errors=True)  # this run's files only
            os.makedirs(self.runs_dir, exist_ok=True)
            os.makedirs(self.data_dir, exist_ok=True)
        self.env = dict(os.environ)
        # NVLink multicast stays off on the GPU machines (KINDS.md), for every program we start.
        self.env.update({"NCCL_NVLS_ENABLE": "0", "TORCH_SYMM_MEM_DISABLE_MULTICAST": "1",
                         "NVSHMEM_DISABLE_NVLS": "1", "PYTHONUNBUFFERED": "1"})
        self.zenv = dict(self.env, ZT_DEVICE="cpu" if a.smoke else "cuda")
        for kv in a.ztrain_env:
            k, _, v = kv.partition("=")
            self.zenv[k] = v
        self.probe = {}
        self.smi = None
        self.meta = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                     "host": platform.node(), "command": shlex.join([sys.executable] + sys.argv),
                     "mode": self.mode, "ztrain": self._ztrain_version()}
        self.data_files = {}
        for path in a.merge:
            with open(path) as f:
                old = json.load(f)
            # A later file's run or check replaces an earlier one of the same name.
            new = {r["name"] for r in old.get("runs", [])}
            self.rows = [r for r in self.rows if r["name"] not in new] + old.get("runs", [])
            new = {c["name"] for c in old.get("checks", [])}
            self.checks = [c for c in self.checks if c["name"] not in new] + old.get("checks", [])
            m = old.get("meta", {})
            self.meta.setdefault("merged_from", []).append(
                "%s (%s, %s, %s)" % (path, m.get("date"), m.get("device"), m.get("command")))
            if a.report_only:  # describe the merged runs, not this command's defaults
                self.meta.update({k: m.get(k) for k in ("device", "gpus", "torch", "ztrain", "mode")})
                self.cases.update(old.get("cases", {}))

    # --- environment -------------------------------------------------------------------------
    def _ztrain_version(self):
        v = {"binary": self.a.ztrain}
        try:
            v["built"] = datetime.datetime.fromtimestamp(os.path.getmtime(self.a.ztrain)).isoformat(timespec="seconds")
            r = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True,
                               text=True, timeout=10)
            if r.returncode == 0:
                v["commit"] = r.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
        return v

    def do_probe(self):
        try:
            r = subprocess.run([self.a.peer_python, "-c", PROBE], capture_output=True, text=True, timeout=180,
                               env=self.env)
            line = [x for x in r.stdout.splitlines() if x.startswith("PROBE ")]
            self.probe = json.loads(line[-1][6:]) if line else {"torch_error": "probe failed: " + r.stderr[-500:]}
        except (OSError, ValueError, subprocess.SubprocessError) as e:
            self.probe = {"torch_error": "cannot probe %s: %s" % (self.a.peer_python, e)}
        self.probe["python"] = self.a.peer_python
        smi = shutil.which("nvidia-smi")
        if smi and not self.a.smoke:
            try:
                q = subprocess.run([smi, "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
                                   capture_output=True, text=True, timeout=60)
                names = [x.strip() for x in q.stdout.splitlines() if x.strip()]
                self.meta["gpus"] = "%d x %s" % (len(names), names[0]) if names else q.stderr.strip()[:200]
            except (OSError, subprocess.SubprocessError) as e:
                names, self.meta["gpus"] = [], "nvidia-smi failed: %s" % e
            self.probe.setdefault("smi_gpus", len(names))
            self.smi = _proc.SmiSampler()
        self.meta["device"] = "cpu (smoke)" if self.a.smoke else (self.probe.get("gpu_name") or self.meta.get("gpus"))
        self.meta["torch"] = self.probe.get("torch") or self.probe.get("torch_error")
        self.meta["peer_probe"] = self.probe

    def gpus(self):
        return max(self.probe.get("gpus") or 0, self.probe.get("smi_gpus") or 0)

    def remaining(self):
        return self.a.deadline_unix - time.time() if self.a.deadline_unix else float("inf")

    def timeout(self, default):
        return max(1.0, min(default * self.a.timeout_scale, self.remaining() - 10))

    def out_of_time(self):
        return self.remaining() < 30

    def wanted(self, name):
        return not self.a.only or any(s in name for s in self.a.only)

    # --- bookkeeping --------------------------------------------------------------------------
    def record(self, row):
        self.rows = [r for r in self.rows if r["name"] != row["name"]] + [row]
        self.write_reports()
        status = row["status"] + ("" if row["status"] == "ok" else ": " + str(row.get("error", ""))[:200])
        extra = " %.0f tokens/s" % row["tokens_per_s"] if row.get("tokens_per_s") else ""
        print("[bench] %-28s %s%s" % (row["name"], status, extra), flush=True)

    def write_reports(self):
        _report.add_ratios(self.rows)
        cases = {k: v for k, v in self.cases.items() if any(r["case"] == k for r in self.rows)}
        _report.write_json(os.path.join(self.a.out, "results.json"), self.meta, cases, self.rows, self.checks)
        _report.write_markdown(os.path.join(self.a.out, "results.md"), self.meta, cases, self.rows, self.checks)

    def finish_case(self, cid):
        rows = [r for r in self.rows if r["case"] == cid]
        err = _report.write_chart(os.path.join(self.a.out, "case_%s.png" % cid), "case %s: %s" % (
            cid, self.cases[cid]["title"]), rows, self.cases[cid].get("per_gpu", False))
        if err:
            print("[bench] case %s: %s" % (cid, err), flush=True)
        self.archive()

    def archive(self):
        """runs.tar.gz: every run's run.json, metrics.jsonl and log (the device returns 8 files)."""
        if self.a.report_only or not os.path.isdir(self.runs_dir):
            return
        tmp = os.path.join(self.a.out, "runs.tar.gz.tmp")
        with tarfile.open(tmp, "w:gz") as t:
            t.add(self.runs_dir, arcname="runs")
        os.replace(tmp, os.path.join(self.a.out, "runs.tar.gz"))

    def skip(self, base, reason):
        self.record(dict(base, status="skipped", error=reason))

    # --- runs ----------------------------------------------------------------------------------
    def run_dir(self, name):
        d = os.path.join(self.runs_dir, name.replace("/", "-"))
        os.makedirs(d, exist_ok=True)
        return d

    def data_file(self, vocab, tokens):
        key = (vocab, tokens)
        if key in self.data_files:
            return self.data_files[key]
        path = os.path.join(self.data_dir, "synth-v%d-n%d.bin" % (vocab, tokens))
        if not os.path.exists(path):
            res = _proc.run(Z.synth_command(self.a.ztrain, path, vocab, tokens),
                            os.path.join(self.data_dir, "synth.log"), self.timeout(180), env=self.zenv)
            if res["rc"] != 0 or not os.path.exists(path):
                self.data_files[key] = (None, "ztrain data synth failed (rc %s): %s" % (res["rc"], res["tail"][-800:]))
                return self.data_files[key]
        self.data_files[key] = (path, None)
        return self.data_files[key]

    def steps_for(self, cid):
        warm, timed = STEPS[cid][2 if self.a.smoke else (1 if self.a.quick else 0)]
        if self.a.steps > 0:
            timed = self.a.steps
        if self.a.warmup >= 0:
            warm = self.a.warmup
        return warm, timed

    def ztrain_run(self, base, cfg, nproc, timeout, warmup):
        d = self.run_dir(base["name"])
        cfg_path = os.path.join(d, "run.json")
        Z.write_json(cfg_path, cfg)
        train = ["train", "--config", cfg_path, "--no-progress", "--no-export"]
        cmd = [self.a.ztrain] + train if nproc == 1 else \
            [self.a.ztrain, "launch", "--nproc", str(nproc), "--grace-period", "5", "--"] + train
        row = dict(base, system_kind="ztrain", cmd=shlex.join(cmd), config=cfg_path)
        if self.a.dry_run:
            print("[plan] %-28s %s" % (base["name"], row["cmd"]))
            return
        if self.out_of_time():
            return self.skip(row, "out of time budget")
        limit = self.timeout(timeout)
        res = _proc.run(cmd, os.path.join(d, "log.txt"), limit, env=self.zenv)
        row.update(wall_s=res["wall_s"], rc=res["rc"])
        with open(os.path.join(d, "log.txt"), errors="replace") as f:
            row["device"] = Z.device_line(f.read(20000))
        try:
            m = Z.summarize_metrics(os.path.join(cfg["run"]["output_dir"], "metrics.jsonl"), warmup)
        except ValueError as e:
            m, row["error"] = None, str(e)
        complete = bool(m) and m["steps_total"] >= cfg["run"]["steps"]
        if res["rc"] == 0 and m:
            row.update(m, status="ok")
        else:
            row.update(status="timeout" if res["timed_out"] else "failed", tail=res["tail"])
            row["error"] = ("timed out after %.0f s" % limit if res["timed_out"] else
                            "exit status %s" % res["rc"] if res["rc"] is not None else res["tail"]) + (
                "; " + row["error"] if row.get("error") else "")
            if complete:  # every step ran and was recorded: the numbers stand, the failure is noted
                row.update(m)
                row["error"] += " after all %d steps" % m["steps_total"]
            else:
                row["partial"] = m
        if self.smi:
            row.update(self.smi.summary(row.get("window_unix"), set(range(nproc))))
        self.record(row)

    def peer_run(self, base, script, args, timeout, nproc=0, cpu_ok=True):
        d = self.run_dir(base["name"])
        out_json = os.path.join(d, "result.json")
        script_path = os.path.join(PEERS, script)
        if nproc > 1:
            cmd = [self.a.peer_python, "-m", "torch.distributed.run", "--standalone",
                   "--nproc_per_node", str(nproc), script_path]
        else:
            cmd = [self.a.peer_python, script_path]
        cmd += args + ["--out", out_json]
        row = dict(base, system_kind="pytorch", cmd=shlex.join(cmd))
        if self.a.dry_run:
            print("[plan] %-28s %s" % (base["name"], row["cmd"]))
            return
        why = self.peer_unavailable(script, base["name"], cpu_ok)
        if why:
            return self.skip(row, why)
        if self.out_of_time():
            return self.skip(row, "out of time budget")
        limit = self.timeout(timeout)
        res = _proc.run(cmd, os.path.join(d, "log.txt"), limit, env=self.env)
        row.update(wall_s=res["wall_s"], rc=res["rc"])
        result = None
        try:
            if os.path.exists(out_json):
                with open(out_json) as f:
                    result = json.load(f)
            else:  # a failure on another rank: the last result line in the log, if any
                with open(os.path.join(d, "log.txt"), errors="replace") as f:
                    lines = [x for x in f if x.startswith("BENCH_RESULT ")]
                if lines:
                    result = json.loads(lines[-1][len("BENCH_RESULT "):])
        except ValueError as e:
            result = {"status": "failed", "error": "unreadable result: %s" % e}
        if result and result.get("status") == "ok" and res["rc"] == 0:
            result.pop("status", None)
            row.update(result, status="ok")
        elif result and result.get("status") == "ok":  # measured, then failed on the way out
            result.pop("status", None)
            row.update(result, status="timeout" if res["timed_out"] else "failed", tail=res["tail"],
                       error="exit status %s after reporting its result" % res["rc"])
        else:
            row.update(status="timeout" if res["timed_out"] else "failed", tail=res["tail"])
            row["error"] = (result or {}).get("error") or ("timed out after %.0f s" % limit
                                                            if res["timed_out"] else "exit status %s" % res["rc"])
        if self.smi:
            row.update(self.smi.summary(row.get("window_unix"), set(range(max(1, nproc)))))
        self.record(row)

    def peer_unavailable(self, script, name, cpu_ok):
        p = self.probe
        if p.get("torch_error"):
            return "torch not importable by %s: %s" % (p.get("python"), p["torch_error"])
        if self.a.smoke:
            if not cpu_ok:
                return "not run in --smoke"
        elif not p.get("cuda"):
            return "torch %s sees no CUDA GPU" % p.get("torch")
        if "compile" in name and not p.get("compile"):
            return "torch %s has no torch.compile" % p.get("torch")
        if script == "hf_gpt2_grid.py" and p.get("transformers_error"):
            return "transformers not importable: %s" % p["transformers_error"]
        if script == "fsdp2_llama.py" and not self.a.smoke and not p.get("fully_shard"):
            return "torch %s has no FSDP2 fully_shard" % p.get("torch")
        return None

    # --- cases ---------------------------------------------------------------------------------
    def shape(self, cid):
        cfg, vocab, mb, seq, nproc = SHAPES[cid][self.mode]
        return os.path.join(CONFIGS, cfg), vocab, mb, seq, nproc

    def peer_device_args(self):
        return ["--device", "cpu"] if self.a.smoke else ["--device", "cuda"]

    def case_a(self):
        model, vocab, mb, seq, _ = self.shape("a")
        warm, timed = self.steps_for("a")
        data, err = self.data_file(vocab, 2_000_000) if not self.a.dry_run else ("DATA", None)
        cfg = Z.run_config(model_config=model, train_file=data or "missing", seq=seq, micro_batch=mb,
                           zero_stage=0, precision="bf16", steps=warm + timed,
                           output_dir=os.path.join(self.run_dir("a/ztrain"), "out"), optimizer=GPT2_OPT)
        Z.write_json(os.path.join(self.run_dir("a/ztrain"), "run.json"), cfg)  # the peers read it too
        ref = {"ref": "a/pytorch-compile", "ref_label": "torch.compile"}
        if self.wanted("a/ztrain"):
            base = dict(ref, case="a", name="a/ztrain", label="ztrain bf16")
            if err:
                self.skip(base, err)
            else:
                self.ztrain_run(base, cfg, 1, 300, warm)
        peer_args = ["--model-config", model, "--batch", str(mb), "--seq", str(seq), "--dtype", "bf16",
                     "--warmup", str(warm), "--steps", str(timed),
                     "--run-json", os.path.join(self.run_dir("a/ztrain"), "run.json")]
        for mode, t in (("compile", 480), ("eager", 240)):
            name = "a/pytorch-" + mode
            if self.wanted(name):
                self.peer_run(dict(ref, case="a", name=name, label="PyTorch %s (autocast bf16)" % mode),
                              "gpt2_peer.py", peer_args + ["--mode", mode] + self.peer_device_args(), t,
                              cpu_ok=mode == "eager")

    def case_b(self):
        model, vocab, mb, seq, _ = self.shape("b")
        warm, timed = self.steps_for("b")
        data, err = self.data_file(vocab, 2_000_000) if not self.a.dry_run else ("DATA", None)
        first_cfg = None
        for dtype in ("fp16", "fp32", "bf16"):
            for stage in range(4):
                name = "b/ztrain-zs%d-%s" % (stage, dtype)
                cfg = Z.run_config(model_config=model, train_file=data or "missing", seq=seq, micro_batch=mb,
                                   zero_stage=stage, precision=dtype, steps=warm + timed,
                                   output_dir=os.path.join(self.run_dir(name), "out"), optimizer=GPT2_OPT)
                if first_cfg is None:
                    first_cfg = os.path.join(self.run_dir(name), "run.json")
                    Z.write_json(first_cfg, cfg)  # the peers read their hyper-parameters from it
                if not self.wanted(name):
                    continue
                refd = dtype if dtype != "bf16" else "fp16"
                base = {"case": "b", "name": name, "label": "ztrain ZeRO-%d %s" % (stage, dtype),
                        "ref": "b/hf-%s-compile" % refd, "ref_label": "HF %s compile" % refd,
                        "zero0": "b/ztrain-zs0-%s" % dtype if stage else None}
                if err:
                    self.skip(base, err)
                else:
                    self.ztrain_run(base, cfg, 1, 180, warm)
        for mode, t in (("compile", 420), ("eager", 240)):
            for dtype in ("fp16", "fp32"):
                name = "b/hf-%s-%s" % (dtype, mode)
                if not self.wanted(name):
                    continue
                args = ["--model-config", model, "--batch", str(mb), "--seq", str(seq), "--dtype", dtype,
                        "--mode", mode, "--warmup", str(warm), "--steps", str(timed), "--run-json", first_cfg]
                self.peer_run({"case": "b", "name": name, "label": "HF GPT-2 %s %s" % (dtype, mode),
                               "ref": "b/hf-%s-compile" % dtype, "ref_label": "HF %s compile" % dtype},
                              "hf_gpt2_grid.py", args + self.peer_device_args(), t, cpu_ok=mode == "eager")

    def case_c(self):
        model, vocab, mb, seq, nproc = self.shape("c")
        warm, timed = self.steps_for("c")
        ref = {"case": "c", "ref": "c/fsdp2-compile", "ref_label": "FSDP2+compile"}
        names = [("c/ztrain-zero3", "ztrain ZeRO-3 bf16 x%d" % nproc), ("c/fsdp2-compile", "FSDP2 + compile"),
                 ("c/fsdp2-eager", "FSDP2 eager")]
        if not self.a.smoke and not self.a.dry_run and self.gpus() < nproc:
            for name, label in names:
                if self.wanted(name):
                    self.skip(dict(ref, name=name, label=label), "needs %d GPUs, %d visible" % (nproc, self.gpus()))
            return
        data, err = self.data_file(vocab, 2_000_000) if not self.a.dry_run else ("DATA", None)
        cfg = Z.run_config(model_config=model, train_file=data or "missing", seq=seq, micro_batch=mb,
                           zero_stage=3, precision="bf16", steps=warm + timed,
                           output_dir=os.path.join(self.run_dir("c/ztrain-zero3"), "out"), optimizer=LLAMA_OPT)
        Z.write_json(os.path.join(self.run_dir("c/ztrain-zero3"), "run.json"), cfg)
        if self.wanted(names[0][0]):
            base = dict(ref, name=names[0][0], label=names[0][1])
            if err:
                self.skip(base, err)
            else:
                self.ztrain_run(base, cfg, nproc, 600, warm)
        args = ["--model-config", model, "--batch", str(mb), "--seq", str(seq), "--dtype", "bf16",
                "--warmup", str(warm), "--steps", str(timed),
                "--run-json", os.path.join(self.run_dir("c/ztrain-zero3"), "run.json")]
        for (name, label), mode, t in ((names[1], "compile", 600), (names[2], "eager", 420)):
            if self.wanted(name):
                # --smoke: one unsharded process on the CPU (the model code; FSDP2 needs torch >= 2.6)
                self.peer_run(dict(ref, name=name, label=label + (" (unsharded, smoke)" if self.a.smoke else "")),
                              "fsdp2_llama.py", args + ["--mode", mode] + self.peer_device_args(), t,
                              nproc=0 if self.a.smoke else nproc, cpu_ok=mode == "eager")

    def check_peer_models(self):
        if self.probe.get("torch_error") or self.out_of_time():
            return
        d = self.run_dir("check-models")
        res = _proc.run([self.a.peer_python, os.path.join(PEERS, "check_models.py"), "--out",
                         os.path.join(d, "result.json")], os.path.join(d, "log.txt"), self.timeout(180), env=self.env)
        c = {"name": "peer models equal tests/models/torch_reference.py (float64 loss)",
             "status": "ok" if res["rc"] == 0 else "failed"}
        if res["rc"] != 0:
            c["error"] = res["tail"][-1500:]
        self.checks = [x for x in self.checks if x["name"] != c["name"]] + [c]
        print("[bench] check peer models: %s" % c["status"], flush=True)

    def main(self):
        if self.a.report_only:
            self.a.cases = [c for c in CASES if any(r["case"] == c for r in self.rows)]
        elif not self.a.dry_run:
            if not os.access(self.a.ztrain, os.X_OK):
                print("[bench] warning: no ztrain binary at %s; ztrain runs will fail" % self.a.ztrain, flush=True)
            self.do_probe()
            print("[bench] mode %s, peers: %s" % (self.mode, json.dumps(self.probe)), flush=True)
            self.check_peer_models()
        try:
            for cid in self.a.cases:
                if not self.a.report_only:
                    try:
                        getattr(self, "case_" + cid)()
                    except Exception as e:  # a harness bug in one case must not lose the others
                        self.record({"case": cid, "name": cid + "/harness", "status": "failed",
                                     "error": "%s: %s" % (type(e).__name__, e),
                                     "tail": traceback.format_exc()[-3000:]})
                if not self.a.dry_run:
                    self.write_reports()
                    self.finish_case(cid)
        finally:
            if self.smi:
                self.smi.stop()
        if not self.a.dry_run:
            print("[bench] wrote %s" % os.path.join(self.a.out, "results.md"), flush=True)
            with open(os.path.join(self.a.out, "results.md")) as f:
                print(f.read())
        return 0


if __name__ == "__main__":
    sys.exit(Bench(parse_args(sys.argv[1:])).main())
