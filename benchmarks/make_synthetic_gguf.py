#!/usr/bin/env python3
"""Writes a LLaMA-family GGUF of a chosen shape with random, finite weights.

Decode speed on a CPU depends on the bytes a token reads, not on what the weights say, so a model
of random weights measures a 7B model's decode speed as well as the real one would, without a
4 GB download. The file carries the tokenizer of the engine's default model (SmolLM2-135M-Instruct:
a 49,152-token BPE vocabulary and its chat template), so `skipllm generate`, `benchmarks/cpu_decode`
and llama.cpp all load it. The embedding table and output head are sized to that vocabulary, so
they are smaller than a real model's (Llama-2-7B has 32,000 tokens, Llama-3-8B 128,256: its real
output head is 2.6x the one written here).

Block bytes are written directly: random quants and fp16 scales chosen so that a matrix times an
RMS-normalised vector has entries of RMS about 1 (weights of RMS ~ 1/sqrt(input size)), which
keeps activations finite through 32 layers. Tensors are streamed in slices of rows, so memory
stays low whatever the size of the file.

Requires: pip install gguf==0.19.0 numpy   (benchmarks/requirements-bench.txt)

Examples:
  make_synthetic_gguf.py --shape llama2-7b --type q4_0 -o build/models/llama2-7b.Q4_0.gguf
  make_synthetic_gguf.py --shape llama3-8b --type q4_k_m -o /tmp/llama3-8b.Q4_K_M.gguf
  make_synthetic_gguf.py --shape tiny --type q8_0 -o /tmp/tiny.gguf
  make_synthetic_gguf.py --layers 4 --embd 512 --ff 1408 --heads 8 --kv-heads 2 --type q4_0 -o m.gguf
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

try:
    import gguf
except ImportError:  # a clear message instead of a traceback
    sys.exit("make_synthetic_gguf.py needs the gguf package: pip install -r benchmarks/requirements-bench.txt")

DEFAULT_TOKENIZER = Path.home() / ".cache/skipllm/models/SmolLM2-135M-Instruct.Q4_1.gguf"


@dataclass(frozen=True)
class Shape:
    layers: int
    embd: int
    ff: int
    heads: int
    kv_heads: int
    rope_base: float = 10000.0
    context: int = 4096


SHAPES = {
    "llama2-7b": Shape(32, 4096, 11008, 32, 32, 10000.0, 4096),
    "llama3-8b": Shape(32, 4096, 14336, 32, 8, 500000.0, 8192),
    "llama3.2-1b": Shape(16, 2048, 8192, 32, 8, 500000.0, 8192),
    "tiny": Shape(2, 256, 512, 4, 2, 10000.0, 512),  # for tests: a few MB
}

Q = gguf.GGMLQuantizationType


# ---- block writers: random quants, scales sized so a row has RMS ~ 1/sqrt(cols) ----
#
# Each returns `n_blocks` blocks as a uint8 array [n_blocks, block_bytes]. `rms` is the target RMS
# of one weight; the constants divide it by the RMS of the block's integer part.


def _fp16(rng: np.random.Generator, n: int, scale: float) -> np.ndarray:
    """n positive fp16 scales spread over [0.5, 1.5] * scale, as uint8 pairs."""
    return (scale * rng.uniform(0.5, 1.5, n)).astype("<f2").view(np.uint8).reshape(n, 2)


def _q4_0(rng, n_blocks, rms):  # fp16 d, 16 bytes of nibbles; w = d * (q - 8), RMS(q - 8) ~ 4.6
    b = np.frombuffer(rng.bytes(n_blocks * 18), np.uint8).reshape(n_blocks, 18).copy()
    b[:, 0:2] = _fp16(rng, n_blocks, rms / 4.6)
    return b


def _q8_0(rng, n_blocks, rms):  # fp16 d, 32 int8; RMS(q) ~ 73.9
    b = np.frombuffer(rng.bytes(n_blocks * 34), np.uint8).reshape(n_blocks, 34).copy()
    b[:, 0:2] = _fp16(rng, n_blocks, rms / 73.9)
    return b


def _q4_k(rng, n_blocks, rms):
    # fp16 d, fp16 dmin, 12 bytes of 6-bit scales/mins, 128 bytes of nibbles:
    # w = d * sc * q - dmin * m with q in [0, 15], sc and m in [0, 63] (random bytes give ~31.5 on
    # average). dmin = 7.5 d centres the weights on zero on average; RMS(sc * (q - 7.5)) ~ 36.
    b = np.frombuffer(rng.bytes(n_blocks * 144), np.uint8).reshape(n_blocks, 144).copy()
    d = (rms / 36.0) * rng.uniform(0.5, 1.5, n_blocks)
    b[:, 0:2] = d.astype("<f2").view(np.uint8).reshape(n_blocks, 2)
    b[:, 2:4] = (7.5 * d).astype("<f2").view(np.uint8).reshape(n_blocks, 2)
    return b


def _q6_k(rng, n_blocks, rms):
    # ql[128], qh[64], int8 scales[16], fp16 d (last): w = d * scale * (q - 32) with q in [0, 63];
    # RMS(scale) ~ 73.9 and RMS(q - 32) ~ 18.5.
    b = np.frombuffer(rng.bytes(n_blocks * 210), np.uint8).reshape(n_blocks, 210).copy()
    b[:, 208:210] = _fp16(rng, n_blocks, rms / (73.9 * 18.5))
    return b


BLOCKS = {  # type: (elements per block, bytes per block, writer)
    Q.Q4_0: (32, 18, _q4_0),
    Q.Q8_0: (32, 34, _q8_0),
    Q.Q4_K: (256, 144, _q4_k),
    Q.Q6_K: (256, 210, _q6_k),
}


# ---- which type each tensor gets ----


def _more_bits(layer: int, n_layers: int) -> bool:
    """llama.cpp's use_more_bits: the layers where Q4_K_M keeps attn_v and ffn_down at Q6_K."""
    return layer < n_layers // 8 or layer >= 7 * n_layers // 8 or (layer - n_layers // 8) % 3 == 2


def tensor_type(weight_type: str, name: str, layer: int, n_layers: int) -> Q:
    """Q4_0 and Q8_0 files are pure (every matrix in that type). q4_k_m follows llama.cpp's
    Q4_K_M: Q4_K, with Q6_K for the output head and for attn_v/ffn_down of the use_more_bits layers."""
    if weight_type == "q4_0":
        return Q.Q4_0
    if weight_type == "q8_0":
        return Q.Q8_0
    if name == "output.weight":
        return Q.Q6_K
    if name.endswith(("attn_v.weight", "ffn_down.weight")) and _more_bits(layer, n_layers):
        return Q.Q6_K
    return Q.Q4_K


FILE_TYPE = {"q4_0": 2, "q8_0": 7, "q4_k_m": 15}  # llama_ftype values


def tensor_plan(shape: Shape, vocab: int, weight_type: str):
    """(name, rows, cols, type) for every tensor, in the order llama.cpp's converter writes them;
    type None means an F32 norm vector of `cols` elements."""
    head_dim = shape.embd // shape.heads
    kv = shape.kv_heads * head_dim
    plan = [("token_embd.weight", vocab, shape.embd, tensor_type(weight_type, "token_embd.weight", 0, shape.layers))]
    for l in range(shape.layers):
        for name, rows, cols in (
            ("attn_norm.weight", 1, shape.embd),
            ("attn_q.weight", shape.embd, shape.embd),
            ("attn_k.weight", kv, shape.embd),
            ("attn_v.weight", kv, shape.embd),
            ("attn_output.weight", shape.embd, shape.embd),
            ("ffn_norm.weight", 1, shape.embd),
            ("ffn_gate.weight", shape.ff, shape.embd),
            ("ffn_up.weight", shape.ff, shape.embd),
            ("ffn_down.weight", shape.embd, shape.ff),
        ):
            full = f"blk.{l}.{name}"
            plan.append((full, rows, cols, None if name.endswith("norm.weight") else tensor_type(weight_type, full, l, shape.layers)))
    plan.append(("output_norm.weight", 1, shape.embd, None))
    plan.append(("output.weight", vocab, shape.embd, tensor_type(weight_type, "output.weight", 0, shape.layers)))
    return plan


def tensor_bytes(rows: int, cols: int, qtype: Q | None) -> int:
    if qtype is None:
        return 4 * cols
    per_block, block_bytes, _ = BLOCKS[qtype]
    if cols % per_block:
        raise SystemExit(f"a row of {cols} elements is not a whole number of {qtype.name} blocks ({per_block})")
    return rows * cols // per_block * block_bytes


# ---- metadata ----


_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}


def read_metadata(path: Path) -> dict:
    """The metadata of a GGUF file: key -> (value, value type, array element type or None).

    A small reader of the header and key/value section only: gguf.GGUFReader also maps every
    tensor and takes seconds over the 49,152-entry vocabulary arrays."""
    import mmap
    import struct

    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
        pos = 0

        def take(fmt: str):
            nonlocal pos
            (v,) = struct.unpack_from(fmt, m, pos)
            pos += struct.calcsize(fmt)
            return v

        def string() -> str:
            nonlocal pos
            n = take("<Q")
            pos += n
            return m[pos - n:pos].decode("utf-8")

        def value(vtype: int):
            nonlocal pos
            if vtype == 8:
                return string()
            if vtype in _SCALARS:
                return take(_SCALARS[vtype])
            raise SystemExit(f"{path}: unsupported metadata type {vtype}")

        if m[:4] != b"GGUF" or take("<I") != 0x46554747 or take("<I") != 3:
            raise SystemExit(f"{path} is not a GGUF v3 file")
        take("<Q")  # tensor count
        out = {}
        for _ in range(take("<Q")):
            key, vtype = string(), take("<I")
            if vtype != 9:
                out[key] = (value(vtype), vtype, None)
                continue
            sub, n = take("<I"), take("<Q")
            if sub in _SCALARS and sub != 7:  # numeric arrays in one read
                dtype = np.dtype(_SCALARS[sub])
                out[key] = (np.frombuffer(m, dtype, n, pos).tolist(), vtype, sub)
                pos += n * dtype.itemsize
            else:
                out[key] = ([value(sub) for _ in range(n)], vtype, sub)
        return out


def copy_tokenizer(writer: gguf.GGUFWriter, source: Path) -> int:
    """Copies every tokenizer.* key of `source` into `writer`; returns the vocabulary size."""
    vocab = 0
    for key, (val, vtype, sub) in read_metadata(source).items():
        if not key.startswith("tokenizer."):
            continue
        writer.add_key_value(key, val, gguf.GGUFValueType(vtype), sub_type=None if sub is None else gguf.GGUFValueType(sub))
        if key == "tokenizer.ggml.tokens":
            vocab = len(val)
    if vocab == 0:
        raise SystemExit(f"{source} has no tokenizer.ggml.tokens")
    return vocab


def write_metadata(writer: gguf.GGUFWriter, shape: Shape, name: str, weight_type: str, vocab: int) -> None:
    writer.add_name(f"synthetic {name} ({weight_type}, random weights)")
    writer.add_description("random weights of a real model's shape, for decode-speed benchmarks; "
                           "written by skipllm benchmarks/make_synthetic_gguf.py")
    writer.add_block_count(shape.layers)
    writer.add_context_length(shape.context)
    writer.add_embedding_length(shape.embd)
    writer.add_feed_forward_length(shape.ff)
    writer.add_head_count(shape.heads)
    writer.add_head_count_kv(shape.kv_heads)
    writer.add_rope_freq_base(shape.rope_base)
    writer.add_rope_dimension_count(shape.embd // shape.heads)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_vocab_size(vocab)
    writer.add_file_type(FILE_TYPE[weight_type])
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)


# ---- tensor data ----

ROWS_PER_SLICE_BYTES = 64 << 20  # stream each tensor in slices of about this many bytes


def write_tensor(fout, rng: np.random.Generator, rows: int, cols: int, qtype: Q | None) -> None:
    if qtype is None:  # norm weights: near 1, so RMSNorm keeps its unit scale
        rng.uniform(0.9, 1.1, cols).astype("<f4").tofile(fout)
        return
    per_block, block_bytes, blocks = BLOCKS[qtype]
    blocks_per_row = cols // per_block
    rms = 1.0 / np.sqrt(cols)
    rows_per_slice = max(1, ROWS_PER_SLICE_BYTES // (blocks_per_row * block_bytes))
    for start in range(0, rows, rows_per_slice):
        n = min(rows_per_slice, rows - start)
        blocks(rng, n * blocks_per_row, rms).tofile(fout)


def human(n: float) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e9 else f"{n / 1e6:.1f} MB"


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shape", choices=sorted(SHAPES), help="a named shape (or give --layers ... below)")
    p.add_argument("--layers", type=int)
    p.add_argument("--embd", type=int, help="embedding length (d_model)")
    p.add_argument("--ff", type=int, help="feed-forward length")
    p.add_argument("--heads", type=int)
    p.add_argument("--kv-heads", type=int, help="key/value heads (grouped-query attention); default: --heads")
    p.add_argument("--type", dest="weight_type", choices=sorted(FILE_TYPE), default="q4_0",
                   help="weight types: q4_0 or q8_0 (every matrix), q4_k_m (llama.cpp's Q4_K/Q6_K mix)")
    p.add_argument("--tokenizer-from", type=Path, default=DEFAULT_TOKENIZER,
                   help="GGUF whose tokenizer.* metadata is copied (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-o", "--output", type=Path, required=True)
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    a = p.parse_args(argv)
    custom = [a.layers, a.embd, a.ff, a.heads]
    if a.shape and any(v is not None for v in custom + [a.kv_heads]):
        p.error("give --shape or --layers/--embd/--ff/--heads, not both")
    if a.shape:
        a.shape_value, a.shape_name = SHAPES[a.shape], a.shape
    else:
        if any(v is None for v in custom):
            p.error("give --shape, or all of --layers, --embd, --ff and --heads")
        if min(custom) <= 0 or (a.kv_heads is not None and a.kv_heads <= 0):
            p.error("--layers, --embd, --ff, --heads and --kv-heads must be positive")
        kv = a.kv_heads or a.heads
        if a.embd % a.heads or a.heads % kv or (a.embd // a.heads) % 2:
            p.error("--heads must divide --embd into even head sizes, and --kv-heads must divide --heads")
        a.shape_value = Shape(a.layers, a.embd, a.ff, a.heads, kv)
        a.shape_name = f"{a.layers}x{a.embd}x{a.ff}"
    block = 256 if a.weight_type == "q4_k_m" else 32
    if a.shape_value.embd % block or a.shape_value.ff % block:
        p.error(f"--type {a.weight_type} needs --embd and --ff to be multiples of its block size, {block}")
    if not a.tokenizer_from.is_file():
        p.error(f"{a.tokenizer_from} not found: run `skipllm info` once to fetch the default model, or pass --tokenizer-from")
    return a


def main(argv=None) -> int:
    a = parse_args(argv)
    shape = a.shape_value
    rng = np.random.default_rng(a.seed)
    a.output.parent.mkdir(parents=True, exist_ok=True)
    tmp = a.output.with_name(a.output.name + ".part")  # the final name appears only when complete

    writer = gguf.GGUFWriter(tmp, "llama")
    vocab = copy_tokenizer(writer, a.tokenizer_from)
    write_metadata(writer, shape, a.shape_name, a.weight_type, vocab)
    plan = tensor_plan(shape, vocab, a.weight_type)
    for name, rows, cols, qtype in plan:
        if qtype is None:
            writer.add_tensor_info(name, [cols], np.dtype(np.float32), 4 * cols)
        else:
            writer.add_tensor_info(name, [rows, cols], np.dtype(np.float16), tensor_bytes(rows, cols, qtype), raw_dtype=qtype)
    total = sum(tensor_bytes(r, c, t) for _, r, c, t in plan)
    if not a.quiet:
        print(f"writing {a.output}: {a.shape_name} ({shape.layers} layers, d={shape.embd}, ff={shape.ff}, "
              f"{shape.heads} heads, {shape.kv_heads} kv heads, vocab {vocab}), {a.weight_type}, {human(total)}",
              file=sys.stderr, flush=True)

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    fout = writer.fout[0]
    start, written, last_report = time.monotonic(), 0, 0.0
    for name, rows, cols, qtype in plan:
        writer.write_padding(fout, fout.tell())  # tensor data starts aligned
        write_tensor(fout, rng, rows, cols, qtype)
        n = tensor_bytes(rows, cols, qtype)
        writer.write_padding(fout, n)
        written += n
        now = time.monotonic()
        if not a.quiet and (now - last_report > 2 or written == total):
            last_report = now
            print(f"  {100 * written / total:5.1f}%  {human(written)}  {written / 1e6 / max(now - start, 1e-9):.0f} MB/s",
                  file=sys.stderr, flush=True)
    writer.close()
    os.replace(tmp, a.output)
    if not a.quiet:
        print(f"done in {time.monotonic() - start:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
