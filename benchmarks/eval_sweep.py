#!/usr/bin/env python3
"""The quality / skip-ratio sweep of FFN-SkipLLM on the default model, and docs/results.md.

Calibration decisions come only from the dev set's calibration split
(examples/engine/data/calibration); every number in the report comes from the report split
(examples/engine/data/report), through `skipllm eval`.

    benchmarks/eval_sweep.py [--skipllm build-cal/examples/engine/skipllm] [--model PATH]
                             [--threads 2] [--recalibrate] [--rerun] [--report-only]

Steps (each command is printed, logged and listed in docs/results.md):
  1. `skipllm calibrate` at several target skip ratios (uniform threshold; one per-layer), with a
     shared per-layer sensitivity measurement;
  2. the method configs (policy config files, docs/policy_config.md): dense, the paper's
     defaults, the authors' fixed-threshold rule at several thresholds, the calibrated configs,
     their ablations (no warm-up, no cold layers), the random-window baseline and the layer-skip
     baseline at matched skipped parameters;
  3. `skipllm eval --config` on the report split: factoid, perplexity, agreement (the agreement
     run also gives the collapse metrics of the same generations);
  4. docs/results.md with the tables, an SVG plot, the commands, commit, date and machine.
Finished runs are cached in benchmarks/results/sweep/runs (--rerun to redo them). The
hand-written analysis is benchmarks/results_notes.md, included verbatim.
"""
import argparse
import datetime
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import time

import policy_config  # the format's Python reader and writer (benchmarks/policy_config.py)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "examples", "engine", "data")
OUT = os.path.join(ROOT, "benchmarks", "results", "sweep")
SHIPPED = os.path.join(ROOT, "examples", "engine", "configs", "smollm2-135m-instruct.json")
NOTES = os.path.join(ROOT, "benchmarks", "results_notes.md")
RESULTS = os.path.join(ROOT, "docs", "results.md")

# Report-split workload (kept small enough for ~25 minutes on 2 shared cores).
FACTOID_LIMIT = 30          # of 124 questions
FACTOID_TOKENS = 32
PPL_WINDOW = 256            # perplexity windows of 256 tokens, no overlap
FULL_FACTOID = ("dense", "cal-0.05", "static-0.05")  # also on all 124 questions
AGREE_LIMIT = 8             # of 24 prompts
AGREE_TOKENS = 48
PPL_LINES = 24              # the first 24 of the report text's 47 lines (about half its tokens)
CAL_ARGS = ["--max-positions", "384", "--window", "128", "--max-iterations", "5", "--tolerance", "0.01"]

COMMANDS = []


def rel(p):
    return os.path.relpath(p, ROOT)


TIMINGS_FILE = os.path.join(OUT, "timings.json")
TIMINGS = json.load(open(TIMINGS_FILE)) if os.path.exists(TIMINGS_FILE) else {}
USED_SECONDS = [0.0]


def shown(cmd):
    return " ".join(shlex.quote(rel(c) if c.startswith(ROOT) else c) for c in cmd)


def run(cmd):
    line = shown(cmd)
    COMMANDS.append(line)
    print("$ " + line, flush=True)
    t = time.time()
    subprocess.run(cmd, check=True, cwd=ROOT)
    TIMINGS[line] = time.time() - t
    USED_SECONDS[0] += TIMINGS[line]
    with open(TIMINGS_FILE, "w") as f:
        json.dump(TIMINGS, f, indent=1)
    print(f"  ({TIMINGS[line]:.1f} s)", flush=True)


def cached(cmd):
    line = shown(cmd)
    COMMANDS.append(line + "    # cached")
    USED_SECONDS[0] += TIMINGS.get(line, 0.0)


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


def base_policy(**kw):
    p = {"kind": "greedy", "threshold": 0.95, "span": 8, "spans_per_token": 1,
         "warmup": {"tokens": 16, "every": 0}, "cold": {"first": 1, "last": 1, "layers": []},
         "skip_attention": False, "metric": "cosine"}
    p.update(kw)
    return p


def config_doc(policy, notes):
    return policy_config.document(
        policy, model={"name": "SmolLM2-135M-Instruct", "layers": 30, "file": "SmolLM2-135M-Instruct.Q4_1.gguf"},
        produced_by={"tool": "benchmarks/eval_sweep.py", "notes": notes})


def layer_bytes(skipllm, model):
    """(attention bytes, FFN bytes) of one layer, from `skipllm info --tensors` (layer 0)."""
    out = subprocess.run([skipllm, "info", "-m", model, "--tensors"], check=True, capture_output=True, text=True).stdout
    attn = ffn = 0
    for line in out.splitlines():
        parts = line.split()
        if parts and parts[0].startswith("blk.0.") and parts[-1] == "bytes":
            name, n = parts[0], int(parts[-2])
            if "norm" in name:
                continue
            if ".attn_" in name:
                attn += n
            elif ".ffn_" in name:
                ffn += n
    return attn, ffn


def cold_set(policy, layers=30):
    c = policy["cold"]
    s = set(range(c["first"])) | set(range(layers - c["last"], layers)) | set(c.get("layers", []))
    return sorted(s)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--skipllm", default=os.path.join(ROOT, "build-cal", "examples", "engine", "skipllm"))
    ap.add_argument("--model", default=os.environ.get("SKIPLLM_MODEL", "/tmp/model/SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--threads", default="2")
    ap.add_argument("--recalibrate", action="store_true", help="run the calibrations again")
    ap.add_argument("--rerun", action="store_true", help="run every evaluation again")
    ap.add_argument("--report-only", action="store_true", help="only rewrite docs/results.md from cached runs")
    ap.add_argument("--ship", default="cal-0.10", help="the calibrated config to ship as the default model's config")
    args = ap.parse_args()
    skipllm, model, threads = os.path.abspath(args.skipllm), args.model, args.threads
    os.makedirs(os.path.join(OUT, "configs"), exist_ok=True)
    os.makedirs(os.path.join(OUT, "runs"), exist_ok=True)
    started = time.time()

    # ---- 1. calibration (calibration split only) --------------------------------------------
    cal_text = os.path.join(DATA, "calibration", "perplexity.txt")
    sens = os.path.join(OUT, "sensitivity.txt")
    if args.recalibrate and os.path.exists(sens):
        os.remove(sens)
    calibrated = {}
    for name, extra in [("cal-0.10", ["--target-skip", "0.10"]),
                        ("cal-0.25", ["--target-skip", "0.25"]),
                        ("cal-layer-0.10", ["--target-skip", "0.10", "--per-layer"]),
                        ("cal-0.05", ["--target-skip", "0.05"]),
                        ("cal-0.03", ["--target-skip", "0.03"]),
                        ("static-0.03", ["--target-skip", "0.03", "--static"]),
                        ("static-0.05", ["--target-skip", "0.05", "--static"]),
                        ("static-0.10", ["--target-skip", "0.10", "--static"])]:
        path = os.path.join(OUT, "configs", name + ".json")
        if not os.path.exists(path) or args.recalibrate:
            if args.report_only:
                sys.exit(f"missing {path}")
            run([skipllm, "calibrate", "-m", model, "--text", cal_text, "--sensitivity", sens, "-t", threads,
                 "-o", path] + extra + CAL_ARGS)
        else:
            cached([skipllm, "calibrate", "-m", model, "--text", cal_text, "--sensitivity", sens, "-t", threads,
                    "-o", path] + extra + CAL_ARGS)
        calibrated[name] = policy_config.load(path)
    if args.ship in calibrated:
        shutil.copyfile(os.path.join(OUT, "configs", args.ship + ".json"), SHIPPED)
        COMMANDS.append(f"cp {rel(os.path.join(OUT, 'configs', args.ship + '.json'))} {rel(SHIPPED)}")

    attn_bytes, ffn_bytes = layer_bytes(skipllm, model)
    ppl_text = os.path.join(OUT, "report_perplexity_head.txt")
    with open(os.path.join(DATA, "report", "perplexity.txt")) as f:
        head = f.readlines()[:PPL_LINES]
    with open(ppl_text, "w") as f:
        f.writelines(head)

    # ---- 2. method configs --------------------------------------------------------------------
    methods = []  # (name, family, policy dict or path)

    def add(name, family, policy, notes=""):
        path = os.path.join(OUT, "configs", name + ".json")
        if isinstance(policy, dict):
            policy_config.save(path, config_doc(policy, notes))
        methods.append((name, family, path))

    add("dense", "dense", base_policy(kind="dense", spans_per_token=0), "dense baseline")
    add("paper", "paper defaults",
        base_policy(threshold=0.95, span=8, warmup={"tokens": 16, "every": 6}, cold={"first": 5, "last": 5, "layers": []}),
        "the authors' settings: tau 0.95, span 8, cold 5/5, warm-up 16 + every 6th dense")
    for tau in (0.99, 0.98, 0.97):
        add(f"fixed-{tau}", "fixed threshold (authors' rule)", base_policy(threshold=tau, span=4),
            "the authors' greedy rule with a fixed threshold: span 4, one span per token, cold 1/1, warm-up 16")
    # The calibrated configs are used as `skipllm calibrate` wrote them.
    for name in ("cal-0.03", "cal-0.05", "cal-0.10", "cal-0.25"):
        methods.append((name, "calibrated (ours)", os.path.join(OUT, "configs", name + ".json")))
    methods.append(("cal-layer-0.10", "calibrated per-layer (ours)", os.path.join(OUT, "configs", "cal-layer-0.10.json")))
    for name in ("static-0.03", "static-0.05", "static-0.10"):
        methods.append((name, "static cheapest layers (ours)", os.path.join(OUT, "configs", name + ".json")))
    ref = policy_config.effective_policy(calibrated["cal-0.10"])
    add("cal-0.10-nowarmup", "ablation", dict(ref, warmup={"tokens": 0, "every": 0}), "cal-0.10 without warm-up")
    add("cal-0.10-nocold", "ablation", dict(ref, cold={"first": 0, "last": 0, "layers": []}),
        "cal-0.10 without cold layers")
    add("cal-0.10-layerskip", "layer skip (greedy)", dict(ref, skip_attention=True),
        "cal-0.10's decisions skipping whole layers (attention too; K/V from the copied hidden state)")

    # ---- 3. evaluation (report split only) ------------------------------------------------------
    def evaluate(name, path):
        res = {}
        for task, extra in [("factoid", ["--data", os.path.join(DATA, "report", "factoid.jsonl"),
                                         "--limit", str(FACTOID_LIMIT), "-n", str(FACTOID_TOKENS)]),
                            ("perplexity", ["--data", ppl_text,
                                            "--window", str(PPL_WINDOW), "--stride", str(PPL_WINDOW)]),
                            ("agreement", ["--data", os.path.join(DATA, "report", "agreement.jsonl"),
                                           "--limit", str(AGREE_LIMIT), "-n", str(AGREE_TOKENS)])]:
            out = os.path.join(OUT, "runs", f"{name}-{task}.json")
            cmd = [skipllm, "eval", "--task", task, "-m", model, "--config", path, "-t", threads, "-q",
                   "--json", out] + extra
            if not os.path.exists(out) or args.rerun:
                if args.report_only:
                    sys.exit(f"missing {out}")
                run(cmd)
            else:
                cached(cmd)
            res[task] = json.load(open(out))
        if name in FULL_FACTOID:
            out = os.path.join(OUT, "runs", f"{name}-factoid-full.json")
            cmd = [skipllm, "eval", "--task", "factoid", "-m", model, "--config", path, "-t", threads, "-q",
                   "--json", out, "--data", os.path.join(DATA, "report", "factoid.jsonl"), "-n", str(FACTOID_TOKENS)]
            if not os.path.exists(out) or args.rerun:
                if args.report_only:
                    sys.exit(f"missing {out}")
                run(cmd)
            else:
                cached(cmd)
            res["factoid-full"] = json.load(open(out))
        return res

    results = {}
    for name, family, path in methods:
        results[name] = (family, path, evaluate(name, path))

    # Baselines at matched skipped parameters, sized from cal-0.10's measured skipping.
    st = results["cal-0.10"][2]["perplexity"]["statistics"]
    skipping_tokens = max(1, st["decode_tokens"] - st["dense_tokens"])
    length = st["skipped_blocks"] / skipping_tokens
    eligible = [l for l in range(30) if l not in cold_set(ref)]
    lo, hi = eligible[0], eligible[-1] + 1
    # Only the end regions stay cold, so that every drawn layer is really skipped (matched in expectation).
    window = dict(ref, kind="random_window", cold={"first": ref["cold"]["first"], "last": ref["cold"]["last"], "layers": []},
                  random_window={"length": round(length, 4), "first": lo, "last": hi, "seed": 1})
    add("random-window", "random window (authors' baseline)", window,
        f"random contiguous window of {length:.3f} FFNs per token in layers [{lo}, {hi}), matched to cal-0.10")
    frac = ffn_bytes / (attn_bytes + ffn_bytes)
    add("layerskip-random", "layer skip (random window)",
        dict(window, skip_attention=True, random_window=dict(window["random_window"], length=round(length * frac, 4))),
        f"random window of whole layers, {length * frac:.3f} layers per token = cal-0.10's skipped parameters")
    for name, family, path in methods[-2:]:
        results[name] = (family, path, evaluate(name, path))

    # ---- 4. report -------------------------------------------------------------------------------
    rows = []
    dense = results["dense"][2]
    d_acc = dense["factoid"]["accuracy"]
    d_ppl = dense["perplexity"]["perplexity"]
    for name, family, path in methods:
        r = results[name][2]
        pol = policy_config.effective_policy(policy_config.load(path))
        layer = pol.get("skip_attention", False)
        ppl_stats = r["perplexity"]["statistics"]
        skip = r["perplexity"]["skip_ratio"]
        params = skip * (1.0 if layer else frac)
        ag = r["agreement"]["summary"] if "summary" in r["agreement"] else r["agreement"]
        rows.append({
            "name": name, "family": family, "layer": layer,
            "skip_ppl": skip, "params_ppl": params,
            "skip_factoid": r["factoid"]["skip_ratio"], "skip_agree": r["agreement"]["skip_ratio"],
            "acc": r["factoid"]["accuracy"], "ppl": r["perplexity"]["perplexity"],
            "acc_full": r["factoid-full"]["accuracy"] if "factoid-full" in r else None,
            "skip_factoid_full": r["factoid-full"]["skip_ratio"] if "factoid-full" in r else None,
            "agree_prefix": ag.get("token_agreement_prefix"), "agree": ag.get("token_agreement"),
            "rouge": ag.get("rouge_l_vs_dense"), "collapsed": ag.get("collapsed"),
            "distinct2": ag.get("distinct_2"), "repeat": ag.get("longest_repeat"),
            "desc": r["perplexity"]["policy"]["description"],
            "eligible": ppl_stats["eligible_blocks"],
        })
    write_json(os.path.join(OUT, "summary.json"), {"rows": rows, "dense_accuracy": d_acc, "dense_perplexity": d_ppl,
                                                    "attention_bytes_per_layer": attn_bytes,
                                                    "ffn_bytes_per_layer": ffn_bytes})
    svg = os.path.join(ROOT, "docs", "results_frontier.svg")
    with open(svg, "w") as f:
        f.write(plot(rows, d_acc, d_ppl))
    write_results(rows, d_acc, d_ppl, attn_bytes, ffn_bytes, USED_SECONDS[0], model)
    print(f"wrote {rel(RESULTS)} and {rel(svg)} in {time.time() - started:.0f} s")


# ---- SVG plot (no dependencies) ----------------------------------------------------------------

COLORS = {"dense": "#000000", "paper defaults": "#d62728", "fixed threshold (authors' rule)": "#ff7f0e",
          "calibrated (ours)": "#1f77b4", "calibrated per-layer (ours)": "#17becf",
          "static cheapest layers (ours)": "#2ca02c", "ablation": "#9467bd",
          "random window (authors' baseline)": "#8c564b", "layer skip (greedy)": "#e377c2",
          "layer skip (random window)": "#7f7f7f"}


def plot(rows, d_acc, d_ppl):
    W, H, M = 980, 430, 60
    pw = (W - 3 * M) / 2
    ph = H - 2 * M - 40
    xmax = max(0.05, max(r["params_ppl"] for r in rows) * 1.1)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="11">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{W/2}" y="18" text-anchor="middle" font-size="14">SmolLM2-135M-Instruct Q4_1, report split: quality vs skipped layer parameters</text>']
    panels = [("factoid accuracy (%)", lambda r: 100 * r["acc"], 0, 100 * max(max(r["acc"] for r in rows), 0.01) * 1.15, 100 * d_acc),
              ("perplexity / dense (log scale)", lambda r: r["ppl"] / d_ppl, None, None, 1.0)]
    import math
    for i, (title, fy, ylo, yhi, ref) in enumerate(panels):
        x0 = M + i * (pw + M)
        y0 = 40
        vals = [fy(r) for r in rows]
        if ylo is None:
            lo, hi = 0.9, max(1.2, max(vals) * 1.2)
            tr = lambda v: math.log(max(v, 1e-9))
            ty = lambda v: y0 + ph - (tr(v) - tr(lo)) / (tr(hi) - tr(lo)) * ph
            ticks = [t for t in (1, 1.05, 1.25, 1.5, 2, 3, 5, 10, 20, 50, 100, 300, 1000) if lo <= t <= hi]
        else:
            lo, hi = ylo, yhi
            ty = lambda v: y0 + ph - (v - lo) / (hi - lo) * ph
            step = 10 if hi > 40 else 5
            ticks = [t for t in range(0, int(hi) + 1, step)]
        tx = lambda v: x0 + v / xmax * pw
        out.append(f'<rect x="{x0}" y="{y0}" width="{pw}" height="{ph}" fill="none" stroke="#444"/>')
        out.append(f'<text x="{x0 + pw/2}" y="{y0 - 6}" text-anchor="middle" font-size="12">{title}</text>')
        for t in ticks:
            out.append(f'<line x1="{x0}" x2="{x0+pw}" y1="{ty(t):.1f}" y2="{ty(t):.1f}" stroke="#eee"/>')
            out.append(f'<text x="{x0-4}" y="{ty(t)+4:.1f}" text-anchor="end">{t}</text>')
        for k in range(0, 11):
            v = xmax * k / 10
            out.append(f'<text x="{tx(v):.1f}" y="{y0+ph+14}" text-anchor="middle">{100*v:.0f}</text>')
        out.append(f'<text x="{x0+pw/2}" y="{y0+ph+30}" text-anchor="middle">skipped parameters, % of all layer weights (perplexity run)</text>')
        out.append(f'<line x1="{x0}" x2="{x0+pw}" y1="{ty(ref):.1f}" y2="{ty(ref):.1f}" stroke="#000" stroke-dasharray="4 3"/>')
        fam_points = {}
        for r, v in zip(rows, vals):
            fam_points.setdefault(r["family"], []).append((r["params_ppl"], v, r["name"]))
        for fam, pts in fam_points.items():
            c = COLORS.get(fam, "#333")
            pts.sort()
            if len(pts) > 1 and fam in ("fixed threshold (authors' rule)", "calibrated (ours)",
                                        "static cheapest layers (ours)"):
                d = " ".join(f"{tx(x):.1f},{ty(min(max(y, lo), hi)):.1f}" for x, y, _ in pts)
                out.append(f'<polyline points="{d}" fill="none" stroke="{c}" stroke-width="1.5"/>')
            for x, y, n in pts:
                yy = min(max(y, lo), hi)
                shape = (f'<rect x="{tx(x)-4:.1f}" y="{ty(yy)-4:.1f}" width="8" height="8" fill="{c}"/>'
                         if "layer skip" in fam else f'<circle cx="{tx(x):.1f}" cy="{ty(yy):.1f}" r="4.5" fill="{c}"/>')
                out.append(shape)
                out.append(f'<text x="{tx(x)+6:.1f}" y="{ty(yy)-5:.1f}" font-size="9" fill="#555">{n}</text>')
    ly = H - 22
    lx = M
    for fam, c in COLORS.items():
        out.append(f'<circle cx="{lx}" cy="{ly}" r="4.5" fill="{c}"/><text x="{lx+8}" y="{ly+4}" font-size="10">{fam}</text>')
        lx += 8 + 6.0 * len(fam) + 18
        if lx > W - 150:
            lx, ly = M, ly + 14
    out.append("</svg>\n")
    return "\n".join(out)


# ---- docs/results.md ----------------------------------------------------------------------------

def pct(v, digits=1):
    return "–" if v is None else f"{100 * v:.{digits}f}"


def num(v, digits=3):
    return "–" if v is None else f"{v:.{digits}f}"


def write_results(rows, d_acc, d_ppl, attn_bytes, ffn_bytes, seconds, model):
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    cpu = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    frac = ffn_bytes / (attn_bytes + ffn_bytes)
    L = []
    L.append("# Results: FFN skipping on SmolLM2-135M-Instruct (quality vs skip ratio)\n")
    L.append("Generated by `benchmarks/eval_sweep.py` (do not edit by hand; the analysis comes from "
             "`benchmarks/results_notes.md`).\n")
    L.append(f"- commit `{commit}`{' (with uncommitted changes)' if dirty else ''}, "
             f"date {datetime.datetime.utcnow().strftime('%Y-%m-%d %H:%M UTC')}")
    L.append(f"- machine: {cpu}, {os.cpu_count()} cores (shared), {platform.system()} {platform.release()}; "
             f"run time of the commands below {seconds / 60:.1f} min (machine shared with other work)")
    L.append(f"- model: `{os.path.basename(model)}` (30 layers, d=576); per layer: attention {attn_bytes} bytes, "
             f"FFN {ffn_bytes} bytes, so one FFN block is {100*frac:.1f}% of a layer's weights")
    L.append("- calibration: `examples/engine/data/calibration/perplexity.txt` only; report: "
             "`examples/engine/data/report/` only")
    L.append(f"- workload (reduced to fit the time budget): factoid first {FACTOID_LIMIT} of 124 questions, "
             f"greedy, {FACTOID_TOKENS} tokens; perplexity on the first {PPL_LINES} of the report text's 47 lines "
             f"(`benchmarks/results/sweep/report_perplexity_head.txt`), windows of {PPL_WINDOW} tokens "
             f"without overlap (each window a new sequence: its warm-up counts again); agreement/collapse: first "
             f"{AGREE_LIMIT} of 24 prompts, {AGREE_TOKENS} tokens, skipping run vs dense run\n")
    notes = open(NOTES).read() if os.path.exists(NOTES) else ""
    if notes:
        L.append(notes.rstrip() + "\n")
    L.append("## Table\n")
    L.append("Skip ratios are skipped FFN blocks / all FFN blocks of the decode steps of that task (prefill is "
             "always dense). *params* = skipped share of all layer weights in the perplexity run (FFN skip: "
             f"skip x {frac:.3f}; layer skip: skip x 1). Agreement = position-wise greedy token agreement with "
             "the dense generation (prefix = share before the first divergence); ROUGE-L vs the dense text; "
             "collapsed = generations with a repeated 16-gram or distinct-2 < 0.3.\n")
    L.append("| method | family | skip % (ppl) | params % | perplexity | Δppl | skip % (factoid) | factoid acc % | Δacc (pts) | skip % (agree) | agreement % | prefix % | ROUGE-L | collapsed | distinct-2 |")
    L.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        L.append(f"| `{r['name']}` | {r['family']} | {pct(r['skip_ppl'])} | {pct(r['params_ppl'])} | {num(r['ppl'], 2)} | "
                 f"{pct(r['ppl'] / d_ppl - 1):>5}% | {pct(r['skip_factoid'])} | {pct(r['acc'])} | "
                 f"{100 * (r['acc'] - d_acc):+.1f} | {pct(r['skip_agree'])} | {pct(r['agree'])} | {pct(r['agree_prefix'])} | "
                 f"{num(r['rouge'])} | {r['collapsed']} | {num(r['distinct2'])} |")
    full = [r for r in rows if r["acc_full"] is not None]
    if full:
        d_full = next(r["acc_full"] for r in rows if r["name"] == "dense")
        L.append("\nFactoid on all 124 report questions (one question = 0.8 points):\n")
        L.append("| method | skip % (factoid) | accuracy % | Δacc (pts) |")
        L.append("|---|---|---|---|")
        for r in full:
            L.append(f"| `{r['name']}` | {pct(r['skip_factoid_full'])} | {pct(r['acc_full'])} | "
                     f"{100 * (r['acc_full'] - d_full):+.1f} |")
    L.append("\nPolicies (as `skipllm::describe` prints them):\n")
    for r in rows:
        L.append(f"- `{r['name']}`: {r['desc']}")
    L.append("\n## Plot\n")
    L.append("![quality vs skipped parameters](results_frontier.svg)\n")
    L.append("Left: factoid accuracy; right: perplexity relative to dense (log scale); x: skipped share of all "
             "layer weights in the perplexity run. Squares: layer skip (attention + FFN). Dashed: dense.\n")
    L.append("## Commands\n")
    L.append("Everything above, in order, run from the repository root (`benchmarks/eval_sweep.py` runs them; "
             "`# cached` marks results reused from `benchmarks/results/sweep/runs`; `--recalibrate` and `--rerun` "
             "ignore the cache):\n")
    L.append("```")
    L.extend(COMMANDS)
    L.append("```\n")
    # The stand-in section (benchmarks/standin_sweep.py) is kept as it is.
    old = open(RESULTS).read() if os.path.exists(RESULTS) else ""
    begin, end = "<!-- standin:begin -->", "<!-- standin:end -->"
    if begin in old and end in old:
        L.append(old[old.index(begin):old.index(end) + len(end)] + "\n")
    with open(RESULTS, "w") as f:
        f.write("\n".join(L))


if __name__ == "__main__":
    main()
