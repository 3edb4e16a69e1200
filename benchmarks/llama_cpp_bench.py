#!/usr/bin/env python3
"""Decode speed of llama.cpp patched with skipllm (examples/llama_cpp), measured by llama.cpp's own
llama-bench: the unpatched build against the patched one, dense and with forced FFN skipping.

Variants, run in interleaved rounds (every variant once per round, this order rotated by one each
round, each a fresh llama-bench process with the same thread count, `-p 0 -n N -o json`):
  plain          the unpatched build (llama.cpp's defaults, weight repacking on)
  plain-norepack the unpatched build with `--repack 0`: no CPU repacking of weights (llama.cpp
                 repacks Q4_0 into an interleaved layout at load). The patched build keeps
                 llama.cpp's own FFN kernels and weights, repacked or not, so this variant only
                 shows what repacking is worth here, apart from the patch
  dense          the patched build, SKIPLLM_POLICY = a dense config with no warm-up and only the
                 last layer cold (the glue requires that one): every other layer goes through
                 skipllm's decision and residual node, nothing is skipped (the patch's overhead
                 at its largest)
  skip10/20/30   the patched build with a static policy skipping k = round(f x n_layer) FFN blocks
                 in every decoded token: layers spread evenly over the middle, warm-up 0, the cold
                 regions (first and last ceil(n_layer / 8) layers) outside them

The byte-ideal speedup of a skip variant is dense bytes / (dense bytes - skipped FFN bytes), with
the bytes a decoded token reads taken from the GGUF's tensor sizes: every layer tensor, the output
head and one row of the embedding table; skipping a layer's FFN saves its ffn_gate, ffn_up and
ffn_down weights (the FFN norm still runs).

Models: the default model (SmolLM2-135M-Instruct Q4_1) and a random-weight GGUF of Llama-2-7B's
shape in Q4_0 (benchmarks/make_synthetic_gguf.py, 3.9 GB, written once into --models-dir with the
gguf venv of tests/deps.sh). Writes a markdown report (--out; default
benchmarks/results/llama_cpp_<date>.md). Normally run through `examples/llama_cpp/run.sh bench`,
which builds both llama.cpp variants first.

  python3 benchmarks/llama_cpp_bench.py --plain PLAIN/llama-bench --patched PATCHED/llama-bench \\
      --model SmolLM2-135M-Instruct.Q4_1.gguf [--quick] [--rounds 4] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "skipllm"
SKIP_FRACTIONS = (0.10, 0.20, 0.30)
# Targets the issue sets: the patch's dense overhead, and the share of the byte-ideal speedup.
TARGET_DENSE_OVERHEAD = 0.02
TARGET_FRACTION_OF_IDEAL = 0.90


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- model facts


def tensor_bytes(python: Path, model: Path) -> dict:
    """name -> bytes of every tensor, and the vocabulary size, read with the gguf package."""
    code = ("import json, sys, gguf\n"
            "r = gguf.GGUFReader(sys.argv[1])\n"
            "print(json.dumps({t.name: [int(t.n_bytes), [int(d) for d in t.shape]] for t in r.tensors}))\n")
    out = subprocess.run([str(python), "-c", code, str(model)], check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def n_layers(tensors: dict) -> int:
    return 1 + max(int(m.group(1)) for n in tensors if (m := re.match(r"blk\.(\d+)\.", n)))


def dense_bytes(tensors: dict) -> int:
    """Bytes one decoded token reads: every layer tensor, the output head, one embedding row."""
    layers = sum(b for n, (b, _) in tensors.items() if n.startswith("blk."))
    embd_bytes, embd_shape = tensors["token_embd.weight"]
    head = tensors.get("output.weight", tensors["token_embd.weight"])[0]  # tied: the embedding table
    return layers + head + embd_bytes // embd_shape[-1]


def ffn_bytes(tensors: dict, layer: int) -> int:
    """The weights a skipped FFN does not read (its norm still runs in llama.cpp's graph)."""
    return sum(tensors[f"blk.{layer}.ffn_{m}.weight"][0] for m in ("gate", "up", "down"))


def skip_layers(n_layer: int, fraction: float) -> tuple[list[int], int]:
    """k = round(fraction x n_layer) layers spread evenly over the middle, and the cold count that
    keeps the first and last ones out of them."""
    k = round(fraction * n_layer)
    cold = math.ceil(n_layer / 8)
    span = n_layer - 2 * cold
    if k > span:
        sys.exit(f"cannot skip {k} of {n_layer} layers outside cold regions of {cold}")
    return [cold + (i * span) // k for i in range(k)], cold


def policy_config(kind: str, path: Path, n_layer: int, layers: list[int] | None = None, first: int = 0,
                  last: int = 1) -> Path:
    """A config without warm-up; the last layer is always cold (the llama.cpp glue requires it)."""
    policy = {"kind": kind, "warmup": {"tokens": 0, "every": 0}, "cold": {"first": first, "last": last}}
    if layers is not None:
        policy["static_layers"] = layers
    path.write_text(json.dumps({"schema": "skipllm.policy", "version": 1, "model": {"layers": n_layer},
                                "produced_by": {"tool": "benchmarks/llama_cpp_bench.py"}, "policy": policy},
                               indent=1) + "\n")
    return path


# ---------------------------------------------------------------- runs


def llama_bench(a, exe: Path, model: Path, tokens: int, reps: int, extra: list, env: dict) -> dict:
    cmd = [str(exe), "-m", str(model), "-p", "0", "-n", str(tokens), "-t", str(a.threads), "-r", str(reps),
           "-o", "json"] + extra
    full_env = {k: v for k, v in os.environ.items() if k not in ("SKIPLLM_POLICY", "SKIPLLM_TRACE", "SKIPLLM_QUIET")}
    full_env.update(env)
    if a.omp_wait == "passive":
        full_env["OMP_WAIT_POLICY"] = "PASSIVE"
    proc = subprocess.run(cmd, env=full_env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout)[0]
    result["stderr"] = proc.stderr
    return result


def spread(values: list[float]) -> float:
    return (max(values) - min(values)) / statistics.median(values)


def ensure_synthetic(models_dir: Path, python: Path) -> Path:
    path = models_dir / "llama2-7b.Q4_0.gguf"
    if not path.exists():
        models_dir.mkdir(parents=True, exist_ok=True)
        log(f"writing {path} (random weights, Llama-2-7B shape, Q4_0, 3.9 GB; once)")
        tmp = path.with_suffix(".tmp")
        subprocess.run([str(python), str(ROOT / "benchmarks/make_synthetic_gguf.py"), "--shape", "llama2-7b", "--type",
                        "q4_0", "-o", str(tmp)], check=True)
        tmp.rename(path)
    return path


def bench_model(a, name: str, model: Path, tokens: int, reps: int, tmp: Path) -> dict:
    tensors = tensor_bytes(a.python, model)
    n_layer = n_layers(tensors)
    total = dense_bytes(tensors)
    variants = [("plain", a.plain, [], None), ("plain-norepack", a.plain, ["--repack", "0"], None),
                ("dense", a.patched, [], policy_config("dense", tmp / f"{name}-dense.json", n_layer))]
    ideal, chosen = {}, {}
    for f in SKIP_FRACTIONS:
        layers, cold = skip_layers(n_layer, f)
        label = f"skip{round(f * 100)}"
        saved = sum(ffn_bytes(tensors, l) for l in layers)
        ideal[label] = total / (total - saved)
        chosen[label] = layers
        variants.append((label, a.patched, [], policy_config("static", tmp / f"{name}-{label}.json", n_layer, layers,
                                                             cold, cold)))
    variants = [v for v in variants if v[0] in a.variants]
    tps = {label: [] for label, *_ in variants}
    meta = {}
    # One discarded run first: the model's pages into the page cache, the CPU out of idle.
    llama_bench(a, a.plain, model, min(tokens, 8), 1, [], {})
    for r in range(a.rounds):
        # Each round starts one variant later: a run after another that left the memory in a
        # worse state (page cache, huge pages) is a different variant every round.
        for label, exe, extra, config in variants[r % len(variants):] + variants[:r % len(variants)]:
            env = {"SKIPLLM_POLICY": str(config)} if config else {}
            res = llama_bench(a, exe, model, tokens, reps, extra, env)
            tps[label].append(res["avg_ts"])
            meta.setdefault(label, res)
        log(f"{name} round {r + 1}/{a.rounds}: " + ", ".join(f"{k} {v[-1]:.2f}" for k, v in tps.items()) + " tok/s")
    return {"name": name, "model": model, "n_layer": n_layer, "bytes": total, "tps": tps, "ideal": ideal,
            "layers": chosen, "meta": meta, "tokens": tokens, "reps": reps}


# ---------------------------------------------------------------- report


def per_round_ratio(num: list[float], den: list[float]) -> float:
    return statistics.median([x / y for x, y in zip(num, den)])


def report(a, results: list[dict], started: str, load: tuple, argv: list) -> str:
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    cpu = re.search(r"Model name:\s*(.*)", subprocess.run(["lscpu"], capture_output=True, text=True).stdout)
    meta = results[0]["meta"]["plain"]
    lines = [
        "# llama.cpp with skipllm: decode speed (llama-bench)",
        "",
        f"- date: {started}; skipllm commit {commit or 'unknown'}{' (with local changes)' if dirty else ''}",
        f"- machine: {cpu.group(1) if cpu else platform.processor()}, {os.cpu_count()} cores, "
        f"{platform.system()} {platform.release()}; load average {load[0]} at start, {load[1]} at end "
        "(other processes shared the machine: the rounds are interleaved so that they see the same load)",
        f"- llama.cpp: the one vendored in the llama-cpp-python {a.llama_version} sdist (llama-bench reports build "
        f"{meta.get('build_number')}, commit {meta.get('build_commit')}: the sdist carries no git history), CPU "
        f"backend, GGML_NATIVE; {a.threads} threads for every run, "
        f"OpenMP wait policy {a.omp_wait}" + (" (OMP_WAIT_POLICY=PASSIVE)" if a.omp_wait == "passive" else ""),
        f"- command: `python3 benchmarks/llama_cpp_bench.py {' '.join(argv)}` (via `examples/llama_cpp/run.sh bench`)",
        f"- each run: `llama-bench -m MODEL -p 0 -n N -t {a.threads} -r R -o json` (N, R below), a fresh process; "
        f"{a.rounds} interleaved rounds of every variant, the order rotated by one each round; tok/s = llama-bench's avg_ts of the run",
        "",
        "Medians over the rounds; ratios are medians of the per-round ratios; spread = (max - min) / median.",
        "Byte-ideal: dense bytes per token / (dense bytes - the skipped layers' FFN bytes).",
        "",
    ]
    for res in results:
        tps, ideal = res["tps"], res["ideal"]
        med = {k: statistics.median(v) for k, v in tps.items()}
        lines += [f"## {res['name']} ({res['model'].name}: {res['n_layer']} layers, "
                  f"{res['bytes'] / 1e6:.0f} MB read per dense token; N = {res['tokens']}, R = {res['reps']})", "",
                  "| variant | tok/s (median) | spread | vs plain | vs dense | byte-ideal | speedup / ideal "
                  "| (speedup - 1) / (ideal - 1) |", "|---|---|---|---|---|---|---|---|"]
        for label, values in tps.items():
            vs_plain = per_round_ratio(values, tps["plain"])
            vs_dense = per_round_ratio(values, tps["dense"]) if "dense" in tps else math.nan
            row = f"| {label} | {med[label]:.2f} | {100 * spread(values):.1f}% | {vs_plain:.3f}x | {vs_dense:.3f}x |"
            if label in ideal:
                row += (f" {ideal[label]:.3f}x | {100 * vs_plain / ideal[label]:.1f}% | "
                        f"{100 * (vs_plain - 1) / (ideal[label] - 1):.0f}% |")
            else:
                row += " | | |"
            lines.append(row)
        lines.append("")
        if "dense" in tps:
            overhead = per_round_ratio(tps["plain"], tps["dense"]) - 1
            lines.append(f"- dense overhead (plain / patched dense - 1): {100 * overhead:+.1f}% (target <= "
                         f"{100 * TARGET_DENSE_OVERHEAD:.0f}%: {'met' if overhead <= TARGET_DENSE_OVERHEAD else 'NOT met'})")
        if "plain-norepack" in tps:
            norepack = per_round_ratio(tps["plain"], tps["plain-norepack"]) - 1
            lines.append(f"- repacking's share (plain / plain-norepack - 1): {100 * norepack:+.1f}%")
        for label in (l for l in ideal if l in tps):
            frac = per_round_ratio(tps[label], tps["plain"]) / ideal[label]
            lines.append(f"- {label}: layers {res['layers'][label]} skipped; speedup / byte-ideal {100 * frac:.1f}% "
                         f"(target >= {100 * TARGET_FRACTION_OF_IDEAL:.0f}%: "
                         f"{'met' if frac >= TARGET_FRACTION_OF_IDEAL else 'NOT met'})")
        lines += ["", "Per round (tok/s): " + ", ".join(tps), ""]
        for i in range(len(tps["plain"])):
            lines.append(f"- round {i + 1}: " + " / ".join(f"{v[i]:.2f}" for v in tps.values()))
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--plain", type=Path, required=True, help="llama-bench of the unpatched build")
    p.add_argument("--patched", type=Path, required=True, help="llama-bench of the patched build")
    p.add_argument("--model", type=Path, required=True, help="the default model (SmolLM2-135M-Instruct Q4_1)")
    p.add_argument("--models", default="smollm2-135m,llama2-7b", help="of: smollm2-135m, llama2-7b")
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--variants", default="plain,plain-norepack,dense,skip10,skip20,skip30",
                   help="comma-separated subset of the variants (plain is always run: every ratio is to it)")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    p.add_argument("--omp-wait", choices=["active", "passive"], default="passive",
                   help="OpenMP wait policy of every run: llama.cpp's default is active (threads spin between "
                        "operations), which on cores shared with other processes makes runs swing by several "
                        "times; passive (OMP_WAIT_POLICY=PASSIVE, the default here) measures them steadily")
    p.add_argument("--quick", action="store_true", help="2 rounds, shorter runs (a smoke test, not figures)")
    p.add_argument("--models-dir", type=Path, default=CACHE / "llama_cpp" / "models")
    p.add_argument("--python", type=Path, default=CACHE / "bench-venv" / "bin" / "python3",
                   help="a Python with gguf and numpy (tests/deps.sh makes this venv)")
    p.add_argument("--llama-version", default="0.3.36", help="for the report")
    p.add_argument("--out", type=Path, help="markdown report (default: benchmarks/results/llama_cpp_<date>.md)")
    a = p.parse_args(argv)
    if a.quick:
        a.rounds = min(a.rounds, 2)
    a.variants = {"plain"} | {v for v in a.variants.split(",") if v}
    if not a.variants <= {"plain", "plain-norepack", "dense", "skip10", "skip20", "skip30"}:
        p.error("--variants: of plain, plain-norepack, dense, skip10, skip20, skip30")
    models = [m for m in a.models.split(",") if m]
    if not set(models) <= {"smollm2-135m", "llama2-7b"} or not models:
        p.error("--models: smollm2-135m and/or llama2-7b")
    if a.rounds < 1 or a.threads < 1:
        p.error("--rounds >= 1 and --threads >= 1")
    for exe in (a.plain, a.patched, a.model, a.python):
        if not exe.exists():
            sys.exit(f"{exe} not found" + (" (run tests/deps.sh)" if exe == a.python else ""))
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load_start = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    results = []
    with tempfile.TemporaryDirectory(prefix="skipllm_llama_bench_") as tmp:
        for name in models:
            if name == "smollm2-135m":
                results.append(bench_model(a, name, a.model, 32 if a.quick else 64, 1 if a.quick else 2, Path(tmp)))
            else:
                # About 2 tok/s on 2 idle cores here: 32 timed tokens are about 16 s a run.
                model = ensure_synthetic(a.models_dir, a.python)
                results.append(bench_model(a, name, model, 4 if a.quick else 32, 1, Path(tmp)))
    load_end = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    text = report(a, results, started, (load_start, load_end), argv)
    print(text)
    out = a.out or ROOT / "benchmarks" / "results" / f"llama_cpp_{time.strftime('%Y-%m-%d', time.gmtime())}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    log(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
