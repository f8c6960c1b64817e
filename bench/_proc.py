# Subprocesses for the benchmark harness: run one command with a hard timeout (its whole process
# group is stopped: SIGTERM, then SIGKILL), its output in a log file, the log's tail returned; and
# an nvidia-smi sampler that records GPU utilisation and memory with the GPU's own timestamps.
# Invariant: run() always returns (never raises for the command's failure) and leaves no process
# of the command's group running.
import datetime
import os
import shutil
import signal
import subprocess
import threading
import time


def tail_of(path, max_bytes=6000):
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            n = f.tell()
            f.seek(max(0, n - max_bytes))
            return f.read().decode("utf-8", "replace")
    except OSError as e:
        return "(no log: %s)" % e


def _stop_group(p, grace=10):
    try:
        os.killpg(p.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        p.wait(grace)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(p.pid, signal.SIGKILL)  # the leader may be gone while children are not
    except ProcessLookupError:
        pass
    try:
        p.wait(5)
    except subprocess.TimeoutExpired:
        pass


def run(cmd, log_path, timeout, env=None, cwd=None):
    """Runs cmd (a list) with stdout+stderr to log_path. Returns {rc, timed_out, wall_s, tail}."""
    t0 = time.time()
    with open(log_path, "ab") as log:
        log.write(("$ %s\n" % " ".join(cmd)).encode())
        log.flush()
        try:
            p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 env=env, cwd=cwd, start_new_session=True)
        except OSError as e:
            log.write(("cannot start: %s\n" % e).encode())
            return {"rc": None, "timed_out": False, "wall_s": 0.0, "tail": "cannot start %s: %s" % (cmd[0], e)}
        timed_out = False
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
        # Stop what is left of the group either way (a worker the leader forgot, or the timeout).
        _stop_group(p, grace=0 if not timed_out else 10)
    wall = time.time() - t0
    if timed_out:
        with open(log_path, "ab") as log:
            log.write(("\n[bench] stopped after the %.0f s timeout\n" % timeout).encode())
    return {"rc": p.returncode, "timed_out": timed_out, "wall_s": round(wall, 2), "tail": tail_of(log_path)}


class SmiSampler:
    """nvidia-smi sampled every period_ms while runs go on; summary(window, gpus) averages
    utilisation and takes the largest memory.used over the samples inside a unix-time window."""

    QUERY = "timestamp,index,utilization.gpu,memory.used"

    def __init__(self, period_ms=200):
        self.samples = []  # (unix time, gpu index, util %, memory used MiB)
        self.proc = None
        self.thread = None
        exe = shutil.which("nvidia-smi")
        if exe:
            try:
                self.proc = subprocess.Popen([exe, "--query-gpu=" + self.QUERY, "--format=csv,noheader,nounits",
                                              "-lms", str(period_ms)], stdout=subprocess.PIPE,
                                             stderr=subprocess.DEVNULL, text=True, start_new_session=True)
            except OSError:
                self.proc = None
        if self.proc:
            self.thread = threading.Thread(target=self._read, daemon=True)
            self.thread.start()

    def _read(self):
        for line in self.proc.stdout:
            parts = [x.strip() for x in line.split(",")]
            if len(parts) != 4:
                continue
            try:
                ts = datetime.datetime.strptime(parts[0], "%Y/%m/%d %H:%M:%S.%f").timestamp()
                self.samples.append((ts, int(parts[1]), float(parts[2]), float(parts[3])))
            except ValueError:
                continue

    def summary(self, window, gpus):
        if not window or not self.proc:
            return {}
        t0, t1 = window
        s = [x for x in list(self.samples) if t0 <= x[0] <= t1 and x[1] in gpus]
        if not s:
            return {"smi_samples": 0}
        return {"gpu_util_pct": round(sum(x[2] for x in s) / len(s), 1),
                "smi_mem_used_mib": max(x[3] for x in s), "smi_samples": len(s)}

    def stop(self):
        if self.proc:
            _stop_group(self.proc, grace=2)
