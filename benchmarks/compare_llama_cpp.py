#!/usr/bin/env python3
"""Decode speed of skipllm's reference engine and llama.cpp, side by side on the same GGUF files.

For each model: pairs of runs, ours then llama.cpp's (A B A B ...), each a fresh process with
the same thread count, prompt and number of greedy decode tokens; the medians of each side and
of the per-pair ratios ours/llama.cpp are reported, with the run-to-run spread of each side.
The machine's streaming read bandwidth is measured in the same run (benchmarks/cpu_decode
--phases bandwidth, before and after the pairs), so every speed is also given as a fraction of
the bandwidth roofline: tok/s x weight bytes per token / bandwidth.

llama.cpp comes from llama-cpp-python 0.3.36 on PyPI, built from source for this CPU
(GGML_NATIVE) into a virtual environment (--venv); the first run spends 10+ minutes building it.
The models are the default model (SmolLM2-135M-Instruct, real weights) and random-weight GGUFs
of real shapes written by make_synthetic_gguf.py (1B, 7B, 8B; generated on first use into
--models-dir, 0.7-4.2 GB each). Not part of CI (it takes tens of minutes).

Example (from the repository root, after building skipllm_tool and cpu_decode in build/):
  python3 benchmarks/compare_llama_cpp.py --out benchmarks/results/compare.md
  python3 benchmarks/compare_llama_cpp.py --quick           # 135M and 1B, 5 pairs, fewer tokens
  python3 benchmarks/compare_llama_cpp.py --llama-wait active,passive   # also OMP_WAIT_POLICY=PASSIVE
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LLAMA_CPP_PYTHON = "llama-cpp-python==0.3.36"
GGUF = "gguf==0.19.0"
# A native build of llama.cpp without what a decode benchmark does not use.
CMAKE_ARGS = ("-DGGML_NATIVE=ON -DLLAVA_BUILD=OFF -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF "
              "-DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF")
DEFAULT_MODEL = Path.home() / ".cache/skipllm/models/SmolLM2-135M-Instruct.Q4_1.gguf"
# Short, so that prefill (dense, not what is compared) stays cheap on the 7B and 8B shapes.
PROMPT = "The printing press changed science, religion and politics in Europe because"

# name -> (synthetic shape and type, or None for the real default model)
MODELS = {
    "smollm2-135m": None,
    "llama3.2-1b": ("llama3.2-1b", "q4_0"),
    "llama2-7b": ("llama2-7b", "q4_0"),
    "llama3-8b": ("llama3-8b", "q4_0"),
}

# The llama.cpp side: one process per run, like ours. Prints one JSON line.
LLAMA_RUN = r"""
import json, sys, time
import numpy as np
import llama_cpp
path, threads, tokens, prompt = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
llm = llama_cpp.Llama(model_path=path, n_threads=threads, n_threads_batch=threads, n_ctx=512, n_batch=512,
                      verbose=False)
ids = llm.tokenize(prompt.encode(), add_bos=True)
vocab = llm.n_vocab()
def logits():
    return np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, -1), shape=(vocab,))
start = time.perf_counter()
llm.eval(ids)
prefill = time.perf_counter() - start
token = int(np.argmax(logits()))
start = time.perf_counter()
for _ in range(tokens):
    llm.eval([token])
    token = int(np.argmax(logits()))
decode = time.perf_counter() - start
print(json.dumps({"prompt": len(ids), "decode_steps": tokens, "decode_s": decode, "prefill_s": prefill}))
"""


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw)


# ---------------------------------------------------------------- setup


def ensure_venv(venv: Path) -> Path:
    """The venv's python, with llama-cpp-python and gguf installed (built on first use)."""
    python = venv / "bin" / "python"
    if python.exists() and subprocess.run([python, "-c", "import llama_cpp, gguf"], capture_output=True).returncode == 0:
        return python
    if not python.exists():
        log(f"creating {venv}")
        run([sys.executable, "-m", "venv", str(venv)])
    log(f"installing {LLAMA_CPP_PYTHON} (builds llama.cpp from source: 10+ minutes) and {GGUF}; "
        f"build log: {venv}/install.log")
    env = dict(os.environ, CMAKE_ARGS=CMAKE_ARGS, CMAKE_BUILD_PARALLEL_LEVEL=str(os.cpu_count() or 2))
    with open(venv / "install.log", "w") as out:
        proc = subprocess.Popen([python, "-m", "pip", "install", "-v", LLAMA_CPP_PYTHON, GGUF, "numpy"],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        last = 0.0
        for line in proc.stdout:  # a progress line from the build every 30 s
            out.write(line)
            step = re.search(r"\[(\d+)/(\d+)\]", line)
            if step and time.monotonic() - last > 30:
                last = time.monotonic()
                log(f"  building llama.cpp: step {step.group(1)}/{step.group(2)}")
        if proc.wait() != 0:
            sys.exit(f"pip install failed; see {venv}/install.log")
    return python


def ensure_model(name: str, models_dir: Path, python: Path) -> Path:
    spec = MODELS[name]
    if spec is None:
        if not DEFAULT_MODEL.exists():
            sys.exit(f"{DEFAULT_MODEL} not found: run `skipllm fetch-model` first")
        return DEFAULT_MODEL
    shape, wtype = spec
    path = models_dir / f"{shape}.{wtype.upper()}.gguf"
    if not path.exists():
        log(f"writing {path} (random weights)")
        subprocess.run([python, ROOT / "benchmarks/make_synthetic_gguf.py", "--shape", shape, "--type", wtype,
                        "-o", path], check=True)
    return path


def bytes_per_token(python: Path, model: Path) -> int:
    """Weight bytes a dense decode token reads: every layer's matrices and the output head."""
    code = ("import sys, gguf\n"
            "r = gguf.GGUFReader(sys.argv[1])\n"
            "names = {t.name: int(t.n_bytes) for t in r.tensors}\n"
            "layers = sum(b for n, b in names.items() if n.startswith('blk.') and 'norm' not in n)\n"
            "print(layers + names.get('output.weight', names['token_embd.weight']))\n")
    return int(run([python, "-c", code, model]).stdout)


def bandwidth(cpu_decode: Path, threads: int) -> float:
    """Streaming read bandwidth in bytes/s (cpu_decode --phases bandwidth)."""
    out = run([cpu_decode, "-m", DEFAULT_MODEL, "-t", str(threads), "--phases", "bandwidth"]).stdout
    match = re.search(r"read bandwidth \(measured\) \| ([0-9.]+) GB/s", out)
    if not match:
        sys.exit("could not read the bandwidth from cpu_decode's output:\n" + out)
    return float(match.group(1)) * 1e9


# ---------------------------------------------------------------- one run of each side


def ours(skipllm: Path, model: Path, threads: int, tokens: int, precision: str | None) -> float:
    cmd = [skipllm, "generate", "-m", model, "-t", str(threads), "--dense", "--raw", "-n", str(tokens + 1),
           "--ctx", "512", "--json", "-", "-q", "-p", PROMPT]
    if precision:
        cmd += ["--precision", precision]
    summary = json.loads(run(cmd).stdout)
    steps = summary["tokens"]["decode_steps"]
    if steps < tokens // 2:
        log(f"  note: ours stopped after {steps} decode steps ({summary['stop_reason']})")
    return steps / summary["timings_s"]["decode"]


def llama(python: Path, script: Path, model: Path, threads: int, tokens: int, extra_env: dict) -> float:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), **extra_env)
    result = json.loads(run([python, script, model, str(threads), str(tokens), PROMPT], env=env).stdout)
    return result["decode_steps"] / result["decode_s"]


def spread(values: list[float]) -> float:
    return (max(values) - min(values)) / statistics.median(values)


# ---------------------------------------------------------------- main


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default=",".join(MODELS), help="comma-separated, of: " + ", ".join(MODELS))
    p.add_argument("--pairs", type=int, default=5, help="interleaved pairs per model (default 5)")
    p.add_argument("--tokens", type=int, default=32, help="timed greedy decode tokens per run (default 32)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--precision", help="ours: skipllm generate --precision (default: the engine's default)")
    p.add_argument("--llama-wait", default="active",
                   help="llama.cpp's OpenMP wait policies to run, each a side of every round: active (its "
                        "default: threads spin between operations, which costs it dearly when other processes "
                        "share the cores), passive (OMP_WAIT_POLICY=PASSIVE), or active,passive (default: active)")
    p.add_argument("--quick", action="store_true", help="smollm2-135m and llama3.2-1b only, 16 tokens")
    p.add_argument("--venv", type=Path, default=ROOT / "build/bench-llama-venv")
    p.add_argument("--models-dir", type=Path, default=ROOT / "build/models")
    p.add_argument("--build-dir", type=Path, default=ROOT / "build", help="where skipllm and cpu_decode are built")
    p.add_argument("--out", type=Path, help="also write the markdown report here")
    a = p.parse_args(argv)
    if a.quick:
        a.models, a.tokens = "smollm2-135m,llama3.2-1b", 16
    a.models = [m for m in a.models.split(",") if m]
    waits = {"active": ("llama.cpp", {}), "passive": ("llama.cpp passive", {"OMP_WAIT_POLICY": "PASSIVE"})}
    if not a.llama_wait or any(w not in waits for w in a.llama_wait.split(",")):
        p.error("--llama-wait is active, passive or active,passive")
    a.variants = [waits[w] for w in a.llama_wait.split(",")]
    for m in a.models:
        if m not in MODELS:
            p.error(f"unknown model {m}; choose from {', '.join(MODELS)}")
    if a.pairs < 1 or a.tokens < 4 or a.threads < 1:
        p.error("--pairs >= 1, --tokens >= 4 and --threads >= 1")
    return a


def main(argv=None) -> int:
    a = parse_args(argv)
    skipllm = a.build_dir / "examples/engine/skipllm"
    cpu_decode = a.build_dir / "benchmarks/cpu_decode"
    for exe in (skipllm, cpu_decode):
        if not exe.exists():
            sys.exit(f"{exe} not found: cmake --build {a.build_dir} --target skipllm_tool cpu_decode")
    python = ensure_venv(a.venv)
    a.models_dir.mkdir(parents=True, exist_ok=True)
    models = {name: ensure_model(name, a.models_dir, python) for name in a.models}
    script = Path(tempfile.mkdtemp(prefix="skipllm_compare_")) / "llama_run.py"
    script.write_text(LLAMA_RUN)

    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load_start = Path("/proc/loadavg").read_text().split()[:3]
    log("measuring read bandwidth")
    bw = [bandwidth(cpu_decode, a.threads)]
    log(f"  {bw[-1] / 1e9:.2f} GB/s")

    rows = []  # (name, model, bytes per token, {side: [tok/s per round]})
    for name, model in models.items():
        size = bytes_per_token(python, model)
        tps = {"ours": []} | {v: [] for v, _ in a.variants}
        for i in range(a.pairs):  # interleaved: ours, then each llama.cpp variant
            tps["ours"].append(ours(skipllm, model, a.threads, a.tokens, a.precision))
            for variant, env in a.variants:
                tps[variant].append(llama(python, script, model, a.threads, a.tokens, env))
            log(f"{name} round {i + 1}/{a.pairs}: " + ", ".join(f"{k} {v[-1]:.2f}" for k, v in tps.items()) + " tok/s")
        rows.append((name, model, size, tps))

    log("measuring read bandwidth again")
    bw.append(bandwidth(cpu_decode, a.threads))
    best_bw = max(bw)
    load_end = Path("/proc/loadavg").read_text().split()[:3]
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    cpu = re.search(r"Model name:\s*(.*)", run(["lscpu"]).stdout)

    sides = ["ours"] + [v for v, _ in a.variants]
    lines = [
        "# skipllm vs llama.cpp: decode speed",
        "",
        f"- date: {started}, commit: {commit or 'unknown'}",
        f"- CPU: {cpu.group(1) if cpu else 'unknown'}, {os.cpu_count()} cores; load average "
        f"{' '.join(load_start)} at start, {' '.join(load_end)} at end",
        f"- llama.cpp: {LLAMA_CPP_PYTHON} (built from source, {CMAKE_ARGS}), `Llama.eval` one token at a "
        "time, greedy; `llama.cpp passive`: the same with OMP_WAIT_POLICY=PASSIVE",
        f"- ours: `skipllm generate --dense --raw -t {a.threads} -n {a.tokens + 1}`"
        + (f" `--precision {a.precision}`" if a.precision else ""),
        f"- {a.threads} threads each, {a.pairs} interleaved rounds per model ({', '.join(sides)}; each run a "
        f"fresh process), {a.tokens} timed greedy decode tokens after the prompt \"{PROMPT}\"",
        f"- read bandwidth: {', '.join(f'{b / 1e9:.2f}' for b in bw)} GB/s (before, after); fractions use "
        f"the best, {best_bw / 1e9:.2f} GB/s",
        f"- command: `python3 benchmarks/compare_llama_cpp.py {' '.join(argv if argv is not None else sys.argv[1:])}`",
        "",
        "Medians over the rounds; ratios are medians of the per-round ratios; spread = (max - min) / median.",
        "",
        "| model | weights/token | " + " | ".join(f"{s} tok/s" for s in sides) + " | "
        + " | ".join(f"ours / {v}" for v in sides[1:]) + " | " + " | ".join(f"spread {s}" for s in sides) + " | "
        + " | ".join(f"{s} % of bandwidth" for s in sides) + " |",
        "|---|---|" + "---|" * (4 * len(sides) - 1),
    ]
    for name, model, size, tps in rows:
        med = {k: statistics.median(v) for k, v in tps.items()}
        ratios = [statistics.median([o / l for o, l in zip(tps["ours"], tps[v])]) for v in sides[1:]]
        lines.append(f"| {name} ({model.name}) | {size / 1e6:.0f} MB | "
                     + " | ".join(f"{med[k]:.2f}" for k in sides) + " | "
                     + " | ".join(f"{r:.3f}x" for r in ratios) + " | "
                     + " | ".join(f"{100 * spread(tps[k]):.1f}%" for k in sides) + " | "
                     + " | ".join(f"{100 * med[k] * size / best_bw:.1f}%" for k in sides) + " |")
    lines += ["", f"Per round (tok/s: {' / '.join(sides)}):", ""]
    for name, _, _, tps in rows:
        lines.append(f"- {name}: " + ", ".join("/".join(f"{tps[k][i]:.2f}" for k in sides) for i in range(a.pairs)))
    report = "\n".join(lines) + "\n"
    print(report)
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(report)
        log(f"written to {a.out}")
    shutil.rmtree(script.parent, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
