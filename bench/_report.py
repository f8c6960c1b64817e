# Reports of the benchmark harness: results.json (everything), results.md (a table per case,
# failures with the tail of their output) and a matplotlib chart per case (skipped without
# matplotlib). Ratios are computed here, from the rows, so merged results get them too.
# Invariant: both files are rewritten whole through a temp name + rename after every run, so a
# harness stopped at any point leaves complete files describing the runs finished so far.
import json
import os

GIB = 1024.0 ** 3


def _atomic_write(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _fmt(v, spec):
    if v is None:
        return "-"
    if spec.endswith("f") and not spec.startswith(",") and 0 < abs(v) < 1:
        return format(v, ".3g")  # tiny values (CPU smoke runs) keep their digits
    return format(v, spec)


def add_ratios(rows):
    """ratio: tokens/s over the row's reference row's (row['ref'] names it) in the same case;
    mem_ratio likewise for peak memory; vs_zero0: a ztrain ZeRO row over its ZeRO-0 sibling.
    Rows with numbers count even when the process failed after measuring (its status says so)."""
    by_name = {r["name"]: r for r in rows}
    for r in rows:
        for key in ("ratio", "mem_ratio", "vs_zero0"):
            r.pop(key, None)
        if not r.get("tokens_per_s"):
            continue
        ref = by_name.get(r.get("ref") or "")
        if ref and ref.get("tokens_per_s"):
            r["ratio"] = r["tokens_per_s"] / ref["tokens_per_s"]
            if r.get("peak_mem_bytes") and ref.get("peak_mem_bytes"):
                r["mem_ratio"] = r["peak_mem_bytes"] / ref["peak_mem_bytes"]
        z0 = by_name.get(r.get("zero0") or "")
        if z0 and z0.get("tokens_per_s"):
            r["vs_zero0"] = r["tokens_per_s"] / z0["tokens_per_s"]


def _table(rows, per_gpu):
    tok = "tokens/s/GPU" if per_gpu else "tokens/s"
    head = ("| system | status | %s | step ms | TFLOP/s | MFU | peak mem GiB | GPU util %% | "
            "vs reference | mem vs ref | notes |" % tok)
    lines = [head, "|" + "---|" * 11]
    for r in rows:
        ok = bool(r.get("tokens_per_s"))  # measured (a failure after measuring keeps its numbers)
        mfu = r.get("mfu")
        ratio = ("%.3fx %s" % (r["ratio"], r.get("ref_label", ""))) if r.get("ratio") is not None else "-"
        notes = list(r.get("warnings", []))
        if r.get("vs_zero0") is not None:
            notes.append("%.3fx ZeRO-0" % r["vs_zero0"])
        if r.get("predicted_mem_bytes"):
            notes.append("plan %s GiB" % _fmt(r["predicted_mem_bytes"] / GIB, ".2f"))
        if r.get("status") != "ok" and r.get("error"):
            notes.append(r["error"][:160].replace("|", "/").replace("\n", " "))
        lines.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            r.get("label", r["name"]), r.get("status"),
            _fmt(r.get("tokens_per_s") if ok else None, ",.0f"),
            _fmt(r.get("step_ms") if ok else None, ".2f"),
            _fmt(r.get("tflops") if ok else None, ".1f"),
            _fmt(100 * mfu if ok and mfu is not None else None, ".1f") + ("%" if ok and mfu is not None else ""),
            _fmt(r["peak_mem_bytes"] / GIB if ok and r.get("peak_mem_bytes") else None, ".2f"),
            _fmt(r.get("gpu_util_pct") if (r.get("smi_samples") or 0) >= 3 else None, ".0f"), ratio,
            _fmt(r.get("mem_ratio"), ".2f"), "; ".join(notes) or ""))
    return "\n".join(lines)


def write_markdown(path, meta, cases, rows, checks):
    out = ["# ztrain benchmarks", ""]
    for k in ("date", "device", "gpus", "host", "ztrain", "torch", "command", "mode"):
        v = meta.get(k)
        if isinstance(v, dict):
            v = ", ".join("%s %s" % (a, b) for a, b in v.items())
        if v:
            out.append("- **%s**: %s" % (k, v))
    for m in meta.get("merged_from", []):
        out.append("- **merged**: %s" % m)
    out.append("")
    for c in checks:
        out.append("- check `%s`: **%s**%s" % (c["name"], c.get("status"),
                                                  (" — " + " / ".join(c["error"].splitlines()[-4:])[-300:]) if c.get("error") else ""))
    for cid, case in cases.items():
        crow = [r for r in rows if r["case"] == cid]
        if not crow:
            continue
        out += ["", "## Case %s: %s" % (cid, case["title"]), "", case.get("what", ""), "",
                _table(crow, case.get("per_gpu", False)), ""]
        if case.get("note"):
            out += [case["note"], ""]
        for r in crow:
            if r.get("status") in ("failed", "timeout") and r.get("tail"):
                tail = "\n".join(r["tail"].splitlines()[-25:])
                out += ["<details><summary>%s: %s (last lines)</summary>" % (r["name"], r["status"]), "",
                        "```", tail.replace("```", "'''"), "```", "</details>", ""]
    _atomic_write(path, "\n".join(out) + "\n")


def write_json(path, meta, cases, rows, checks):
    _atomic_write(path, json.dumps({"meta": meta, "cases": cases, "runs": rows, "checks": checks},
                                   indent=1, sort_keys=True, default=str) + "\n")


def write_chart(path, title, rows, per_gpu):
    """Bar charts: tokens/s (per GPU) and peak memory per system. Returns an error string or None."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except Exception as e:  # matplotlib is optional
        return "no chart: %s" % e
    ok = [r for r in rows if r.get("tokens_per_s")]
    if not ok:
        return "no chart: no successful runs"
    labels = [r.get("label", r["name"]) + ("" if r.get("status") == "ok" else " (%s)" % r.get("status")) for r in ok]
    colors = ["tab:blue" if r.get("system_kind") == "ztrain" else "tab:orange" for r in ok]
    fig, axes = plt.subplots(1, 2, figsize=(13, 0.45 * len(ok) + 1.8), sharey=True)
    axes[0].barh(labels, [r["tokens_per_s"] for r in ok], color=colors)
    axes[0].set_xlabel("tokens/s per GPU" if per_gpu else "tokens/s")
    for i, r in enumerate(ok):
        axes[0].text(r["tokens_per_s"], i, " %s" % format(r["tokens_per_s"], ",.0f"), va="center", fontsize=7)
    axes[1].barh(labels, [(r.get("peak_mem_bytes") or 0) / GIB for r in ok], color=colors)
    axes[1].set_xlabel("peak memory GiB")
    axes[0].invert_yaxis()
    fig.suptitle(title + "  (blue: ztrain, orange: PyTorch)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path + ".tmp.png", dpi=110)
    plt.close(fig)
    os.replace(path + ".tmp.png", path)
    return None
