#!/usr/bin/env python3
"""Stand-ins for skipped FFNs on the default model: the sweep behind docs/results.md's stand-in section.

Fits only on the calibration split (examples/engine/data/calibration plus text the model writes
itself from it); every reported number comes from the report split through `skipllm eval`, with
the reduced workload of benchmarks/eval_sweep.py (its report_perplexity_head.txt, its limits).

    benchmarks/standin_sweep.py [--skipllm build/examples/engine/skipllm] [--model PATH] [--threads 2]
                                [--rerun] [--report-only]

Steps:
  1. `skipllm calibrate --standin --static` fits the maps (rank 64, and the other ranks for the
     rank comparison, --standin-save) and calibrates static skipping of the least sensitive FFNs
     (plain sensitivity) with stand-ins; further calibrations reuse the maps (--standin-from):
     static at a second target, the greedy rule recalibrated for stand-ins, and static skipping
     of the layers least sensitive *with* stand-ins (the sensitivity measured with stand-ins);
  2. configs: the calibrated plain policies of benchmarks/eval_sweep.py with the same decisions
     plus stand-ins (a config naming the maps), with and without the stand-in's score feeding the
     next decision, and at every rank;
  3. `skipllm eval` (perplexity for every config; factoid and agreement for the main ones);
  4. the stand-in section of docs/results.md (between its markers) and docs/results_standin.svg:
     perplexity vs *net* FFN weight bytes saved per token (FFN bytes skipped minus stand-in bytes
     read), computed from each run's per-layer statistics and the sidecar's map sizes.
Plain-skip runs and dense come from benchmarks/results/sweep/runs (eval_sweep.py's cache); dense
perplexity is rerun here to check that the cache still reproduces.
"""
import argparse
import json
import math
import os
import shlex
import struct
import subprocess
import sys
import time

import policy_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "examples", "engine", "data")
SWEEP = os.path.join(ROOT, "benchmarks", "results", "sweep")
OUT = os.path.join(ROOT, "benchmarks", "results", "standin")
RESULTS = os.path.join(ROOT, "docs", "results.md")
SVG = os.path.join(ROOT, "docs", "results_standin.svg")
BEGIN, END = "<!-- standin:begin -->", "<!-- standin:end -->"

FACTOID_LIMIT, FACTOID_TOKENS, PPL_WINDOW, AGREE_LIMIT, AGREE_TOKENS = 30, 32, 256, 8, 48
CAL_ARGS = ["--max-positions", "384", "--window", "128", "--max-iterations", "5", "--tolerance", "0.01"]
COMMANDS = []


def rel(p):
    return os.path.relpath(p, ROOT)


def shown(cmd):
    return " ".join(shlex.quote(rel(c) if c.startswith(ROOT) else c) for c in cmd)


def run(cmd, out, rerun, report_only):
    """Runs `cmd` unless every file in `out` (a path or a list) exists (then it is listed as cached)."""
    line = shown(cmd)
    if all(os.path.exists(o) for o in ([out] if isinstance(out, str) else out)) and not rerun:
        COMMANDS.append(line + "    # cached")
        return
    if report_only:
        sys.exit(f"missing {out}")
    COMMANDS.append(line)
    print("$ " + line, flush=True)
    t = time.time()
    subprocess.run(cmd, check=True, cwd=ROOT)
    print(f"  ({time.time() - t:.1f} s)", flush=True)


def standin_bytes(path):
    """{layer: bytes one use of its map reads} of a stand-in file (docs/standin.md)."""
    with open(path, "rb") as f:
        data = f.read()
    magic, version, hidden, layers, count, dtype = struct.unpack_from("<8s5I", data, 0)
    assert magic == b"SKLSTAND" and version == 1 and dtype == 1, path
    pos, out = 28, {}
    for _ in range(count):
        layer, rank = struct.unpack_from("<2I", data, pos)
        values = hidden * hidden if rank == 0 else 2 * rank * hidden
        size = 2 * (values + hidden)
        out[layer] = size
        pos += 8 + size
    return out


def ffn_bytes_per_layer(skipllm, model):
    out = subprocess.run([skipllm, "info", "-m", model, "--tensors"], check=True, capture_output=True, text=True).stdout
    total = 0
    for line in out.splitlines():
        parts = line.split()
        if parts and parts[0].startswith("blk.0.ffn_") and "norm" not in parts[0] and parts[-1] == "bytes":
            total += int(parts[-2])
    return total


def net_saved(stats, ffn_bytes, map_bytes):
    """(FFN blocks skipped share, stood-in share, net FFN weight bytes saved share) of a run."""
    blocks = stats["ffn_blocks"]
    skipped = stood = 0
    saved = 0.0
    for l in stats["layers"]:
        s, i = l["skipped"], l.get("stood_in", 0)
        skipped += s
        stood += i
        saved += s * ffn_bytes - i * map_bytes.get(l["layer"], 0)
    return skipped / blocks, stood / blocks, saved / (blocks * ffn_bytes)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--skipllm", default=os.path.join(ROOT, "build", "examples", "engine", "skipllm"))
    ap.add_argument("--model", default=os.environ.get(
        "SKIPLLM_MODEL", os.path.expanduser("~/.cache/skipllm/models/SmolLM2-135M-Instruct.Q4_1.gguf")))
    ap.add_argument("--threads", default="2")
    ap.add_argument("--rerun", action="store_true", help="run every calibration and evaluation again")
    ap.add_argument("--report-only", action="store_true", help="only rewrite the report from cached runs")
    args = ap.parse_args()
    skipllm, model, threads = os.path.abspath(args.skipllm), args.model, args.threads
    cfg = os.path.join(OUT, "configs")
    runs = os.path.join(OUT, "runs")
    os.makedirs(cfg, exist_ok=True)
    os.makedirs(runs, exist_ok=True)
    cal_text = os.path.join(DATA, "calibration", "perplexity.txt")
    sens = os.path.join(SWEEP, "sensitivity.txt")  # the plain calibration's, reused (read only)
    maps = os.path.join(OUT, "maps.standin")

    # ---- 1. fit + calibrations with stand-ins (calibration split only) -------------------------
    def calibrate(name, extra, sensitivity=sens):
        # The stand-in files are not in git (benchmarks/results/standin/*.standin): a checkout without
        # them calibrates again (the fit is deterministic).
        path = os.path.join(cfg, name + ".json")
        outputs = [path, os.path.join(cfg, name + ".standin")] + ([maps] if "--standin-save" in extra else [])
        run([skipllm, "calibrate", "-m", model, "--text", cal_text, "--sensitivity", sensitivity, "-t", threads, "-o",
             path] + extra + CAL_ARGS, outputs, args.rerun, args.report_only)
        return path

    calibrate("static-0.10-si", ["--standin", "--standin-rank", "64", "--standin-save", maps, "--target-skip", "0.10",
                                 "--static"])
    calibrate("static-0.20-si", ["--standin", "--standin-from", maps, "--target-skip", "0.20", "--static"])
    for target in ("0.15", "0.25"):
        calibrate(f"cal-si-{target}", ["--standin", "--standin-from", maps, "--target-skip", target,
                                       "--candidates", "1x10"])
    # The least sensitive layers *with* stand-ins: the sensitivity measured with every skipped FFN
    # stood in (written by the first of these runs, read by the others).
    sens_si = os.path.join(OUT, "sensitivity-standin.txt")
    if args.rerun and os.path.exists(sens_si):
        os.remove(sens_si)
    for target in ("0.10", "0.15", "0.20"):
        calibrate(f"static-sis-{target}", ["--standin", "--standin-from", maps, "--target-skip", target, "--static"],
                  sens_si)

    # ---- 2. configs: the plain policies' decisions plus stand-ins ----------------------------------
    def with_standin(name, base, file, feeds=False):
        doc = policy_config.load(os.path.join(SWEEP, "configs", base + ".json"))
        doc["policy"]["standin"] = {"file": os.path.relpath(file, cfg), "feeds_decision": feeds}
        doc.setdefault("produced_by", {})["notes"] = (f"{base} (benchmarks/results/sweep/configs) with the stand-ins "
                                                      f"of {os.path.basename(file)}, feeds_decision {str(feeds).lower()}")
        policy_config.save(os.path.join(cfg, name + ".json"), doc)
        return os.path.join(cfg, name + ".json")

    def stem(rank):
        return os.path.join(OUT, "maps.standin") if rank == "r64" else os.path.join(OUT, f"maps-{rank}.standin")

    methods = []  # (name, family, config, tasks)
    full_tasks = ("perplexity", "factoid", "agreement")
    for base in ("cal-0.05", "cal-0.10", "cal-0.25"):
        methods.append((base, "plain skip (calibrated)", os.path.join(SWEEP, "configs", base + ".json"), full_tasks))
        methods.append((base + "-si", "same decisions + stand-ins (r64)", with_standin(base + "-si", base, maps),
                        full_tasks))
    methods.append(("cal-0.10-si-feeds", "same decisions + stand-ins, score feeds", with_standin(
        "cal-0.10-si-feeds", "cal-0.10", maps, True), ("perplexity",)))
    for rank in ("r16", "r32", "r128", "full"):
        methods.append((f"cal-0.10-si-{rank}", "rank comparison (cal-0.10 decisions)",
                        with_standin(f"cal-0.10-si-{rank}", "cal-0.10", stem(rank)), ("perplexity",)))
    methods.append(("static-0.10", "plain skip (static)", os.path.join(SWEEP, "configs", "static-0.10.json"), full_tasks))
    for name in ("static-0.10-si", "static-0.20-si"):
        methods.append((name, "static + stand-ins (r64)", os.path.join(cfg, name + ".json"), full_tasks))
    for target in ("0.10", "0.15", "0.20"):
        methods.append((f"static-sis-{target}", "static by stand-in sensitivity (r64)",
                        os.path.join(cfg, f"static-sis-{target}.json"), full_tasks))
    for name in ("cal-si-0.15", "cal-si-0.25"):
        methods.append((name, "recalibrated for stand-ins (r64)", os.path.join(cfg, name + ".json"), full_tasks))

    # ---- 3. evaluation (report split only) -----------------------------------------------------------
    ppl_text = os.path.join(SWEEP, "report_perplexity_head.txt")
    task_args = {
        "factoid": ["--data", os.path.join(DATA, "report", "factoid.jsonl"), "--limit", str(FACTOID_LIMIT), "-n",
                    str(FACTOID_TOKENS)],
        "perplexity": ["--data", ppl_text, "--window", str(PPL_WINDOW), "--stride", str(PPL_WINDOW)],
        "agreement": ["--data", os.path.join(DATA, "report", "agreement.jsonl"), "--limit", str(AGREE_LIMIT), "-n",
                      str(AGREE_TOKENS)],
    }

    def evaluate(name, path, tasks):
        res = {}
        plain = path.startswith(SWEEP)
        for task in tasks:
            out = os.path.join(SWEEP if plain else OUT, "runs", f"{name}-{task}.json")
            cmd = [skipllm, "eval", "--task", task, "-m", model, "--config", path, "-t", threads, "-q", "--json", out]
            run(cmd + task_args[task], out, args.rerun and not plain, args.report_only)
            res[task] = json.load(open(out))
        return res

    dense_cfg = os.path.join(SWEEP, "configs", "dense.json")
    check = os.path.join(runs, "dense-perplexity.json")
    run([skipllm, "eval", "--task", "perplexity", "-m", model, "--config", dense_cfg, "-t", threads, "-q", "--json",
         check] + task_args["perplexity"], check, args.rerun, args.report_only)
    dense = evaluate("dense", dense_cfg, full_tasks)
    d_ppl_now = json.load(open(check))["perplexity"]
    d_ppl, d_acc = dense["perplexity"]["perplexity"], dense["factoid"]["accuracy"]
    ffn = ffn_bytes_per_layer(skipllm, model)
    rows = []
    for name, family, path, tasks in methods:
        r = evaluate(name, path, tasks)
        doc = policy_config.load(path)
        st = doc["policy"].get("standin")
        mb = standin_bytes(os.path.join(os.path.dirname(path), st["file"])) if st else {}
        skip, stood, net = net_saved(r["perplexity"]["statistics"], ffn, mb)
        ag = r.get("agreement", {})
        ag = ag.get("summary", ag)
        rows.append({"name": name, "family": family, "skip": skip, "stood": stood, "net": net,
                     "ppl": r["perplexity"]["perplexity"], "acc": r["factoid"]["accuracy"] if "factoid" in r else None,
                     "agree": ag.get("token_agreement"), "collapsed": ag.get("collapsed"),
                     "map_bytes": max(mb.values()) if mb else 0,
                     "desc": r["perplexity"]["policy"]["description"]})
    json.dump({"rows": rows, "dense_perplexity": d_ppl, "dense_perplexity_rerun": d_ppl_now, "dense_accuracy": d_acc,
               "ffn_bytes_per_layer": ffn}, open(os.path.join(OUT, "summary.json"), "w"), indent=2)
    with open(SVG, "w") as f:
        f.write(plot(rows, d_ppl))
    write_section(rows, d_ppl, d_ppl_now, d_acc, ffn)
    print(f"wrote {rel(RESULTS)} (stand-in section) and {rel(SVG)}")


COLORS = {"plain skip (calibrated)": "#1f77b4", "same decisions + stand-ins (r64)": "#ff7f0e",
          "same decisions + stand-ins, score feeds": "#d62728", "rank comparison (cal-0.10 decisions)": "#bcbd22",
          "plain skip (static)": "#2ca02c", "static + stand-ins (r64)": "#98df8a",
          "static by stand-in sensitivity (r64)": "#17becf",
          "recalibrated for stand-ins (r64)": "#9467bd"}


def plot(rows, d_ppl):
    W, H, M = 760, 460, 70
    pw, ph = W - 2 * M, H - 2 * M - 40
    xmax = max(0.2, max(r["net"] for r in rows) * 1.15)
    lo, hi = 0.9, max(1.5, max(r["ppl"] / d_ppl for r in rows) * 1.2)
    tx = lambda v: M + max(v, 0) / xmax * pw
    ty = lambda v: 40 + ph - (math.log(v) - math.log(lo)) / (math.log(hi) - math.log(lo)) * ph
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="11">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{W/2}" y="18" text-anchor="middle" font-size="14">Stand-ins for skipped FFNs, SmolLM2-135M Q4_1, report split</text>',
           f'<rect x="{M}" y="40" width="{pw}" height="{ph}" fill="none" stroke="#444"/>']
    for t in (1, 1.05, 1.1, 1.25, 1.5, 2, 3, 5, 10):
        if lo <= t <= hi:
            out.append(f'<line x1="{M}" x2="{M+pw}" y1="{ty(t):.1f}" y2="{ty(t):.1f}" stroke="#eee"/>'
                       f'<text x="{M-4}" y="{ty(t)+4:.1f}" text-anchor="end">{t}</text>')
    for k in range(11):
        v = xmax * k / 10
        out.append(f'<text x="{tx(v):.1f}" y="{40+ph+14}" text-anchor="middle">{100*v:.0f}</text>')
    out.append(f'<text x="{M+pw/2}" y="{40+ph+30}" text-anchor="middle">net FFN weight bytes saved per token, % '
               f'(FFN bytes skipped minus stand-in bytes read)</text>')
    out.append(f'<text x="16" y="{40+ph/2}" transform="rotate(-90 16 {40+ph/2})" text-anchor="middle">perplexity / dense (log)</text>')
    out.append(f'<line x1="{M}" x2="{M+pw}" y1="{ty(1):.1f}" y2="{ty(1):.1f}" stroke="#000" stroke-dasharray="4 3"/>')
    out.append(f'<line x1="{M}" x2="{M+pw}" y1="{ty(1.05):.1f}" y2="{ty(1.05):.1f}" stroke="#d62728" stroke-dasharray="2 3"/>')
    out.append(f'<line x1="{tx(0.15):.1f}" x2="{tx(0.15):.1f}" y1="40" y2="{40+ph}" stroke="#d62728" stroke-dasharray="2 3"/>')
    out.append(f'<text x="{tx(0.15)+4:.1f}" y="52" fill="#d62728" font-size="10">target: +5% at 15% net</text>')
    fams = {}
    for r in rows:
        fams.setdefault(r["family"], []).append(r)
    for fam, rs in fams.items():
        c = COLORS.get(fam, "#333")
        rs = sorted(rs, key=lambda r: r["net"])
        if len(rs) > 1 and "rank" not in fam:
            pts = " ".join(f"{tx(r['net']):.1f},{ty(min(max(r['ppl'] / d_ppl, lo), hi)):.1f}" for r in rs)
            out.append(f'<polyline points="{pts}" fill="none" stroke="{c}" stroke-width="1.5"/>')
        for r in rs:
            y = ty(min(max(r["ppl"] / d_ppl, lo), hi))
            out.append(f'<circle cx="{tx(r["net"]):.1f}" cy="{y:.1f}" r="4.5" fill="{c}"/>'
                       f'<text x="{tx(r["net"])+6:.1f}" y="{y-5:.1f}" font-size="9" fill="#555">{r["name"]}</text>')
    lx, ly = M, H - 30
    for fam, c in COLORS.items():
        out.append(f'<circle cx="{lx}" cy="{ly}" r="4.5" fill="{c}"/><text x="{lx+8}" y="{ly+4}" font-size="10">{fam}</text>')
        lx += 8 + 5.6 * len(fam) + 18
        if lx > W - 200:
            lx, ly = M, ly + 14
    out.append("</svg>\n")
    return "\n".join(out)


def write_section(rows, d_ppl, d_ppl_now, d_acc, ffn):
    notes_path = os.path.join(ROOT, "benchmarks", "results_standin_notes.md")
    L = [BEGIN, "## Stand-ins for skipped FFNs\n",
         "Generated by `benchmarks/standin_sweep.py` (the analysis comes from `benchmarks/results_standin_notes.md`). "
         "A skipped FFN may run a fitted linear map g = A·norm(h) + b instead of nothing (docs/standin.md). "
         f"Maps fitted on the calibration split only; report split, same reduced workload as above. FFN block: {ffn} "
         f"bytes; a rank-64 map: 148608 bytes (9.0% of an FFN). Dense perplexity {d_ppl:.2f} (cached), "
         f"{d_ppl_now:.2f} rerun with this build.\n"]
    if os.path.exists(notes_path):
        L.append(open(notes_path).read().rstrip() + "\n")
    L.append("*skip* = FFN blocks not run (stood in or not) / all FFN blocks of the perplexity run's decode steps; "
             "*stood in* = those where a map ran; *net saved* = (FFN bytes skipped - map bytes read) / FFN bytes of "
             "all blocks. Factoid: first 30 questions (one = 3.3 points); agreement: 8 prompts x 48 tokens.\n")
    L.append("| method | family | skip % | stood in % | net saved % | perplexity | Δppl | factoid % | Δacc (pts) | agreement % | collapsed |")
    L.append("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        acc = "–" if r["acc"] is None else f"{100 * r['acc']:.1f}"
        dacc = "–" if r["acc"] is None else f"{100 * (r['acc'] - d_acc):+.1f}"
        agree = "–" if r["agree"] is None else f"{100 * r['agree']:.1f}"
        coll = "–" if r["collapsed"] is None else str(r["collapsed"])
        L.append(f"| `{r['name']}` | {r['family']} | {100 * r['skip']:.1f} | {100 * r['stood']:.1f} | "
                 f"{100 * r['net']:.1f} | {r['ppl']:.2f} | {100 * (r['ppl'] / d_ppl - 1):+.1f}% | {acc} | {dacc} | "
                 f"{agree} | {coll} |")
    L.append("\n![perplexity vs net bytes saved](results_standin_svg)\n".replace("results_standin_svg", "results_standin.svg"))
    L.append("Policies:\n")
    for r in rows:
        L.append(f"- `{r['name']}`: {r['desc']}")
    L.append("\nCommands (run from the repository root by `benchmarks/standin_sweep.py`; `# cached`: reused):\n")
    L.append("```")
    L.extend(COMMANDS)
    L.append("```")
    L.append(END)
    section = "\n".join(L) + "\n"
    text = open(RESULTS).read() if os.path.exists(RESULTS) else ""
    if BEGIN in text and END in text:
        text = text[:text.index(BEGIN)] + section + text[text.index(END) + len(END) + 1:]
    else:
        text = text.rstrip() + "\n\n" + section
    with open(RESULTS, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
