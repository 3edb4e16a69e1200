#!/usr/bin/env python3
# Writes docs/architecture.svg: the layers of skipllm and its reference engine; an arrow goes
# from a file to what it includes.
import html
W, H = 960, 560
out = []
def rect(x, y, w, h, title, lines, fill):
    out.append(f'<rect x="{x}" y="{y}" width="{w}" height="{h}" rx="6" fill="{fill}" stroke="#334" stroke-width="1.2"/>')
    out.append(f'<text x="{x+10}" y="{y+20}" class="t">{html.escape(title)}</text>')
    for i, l in enumerate(lines):
        out.append(f'<text x="{x+10}" y="{y+38+i*15}" class="s">{html.escape(l)}</text>')
def arrow(*pts):
    p = " ".join(f"{x},{y}" for x, y in pts)
    out.append(f'<polyline points="{p}" fill="none" stroke="#334" stroke-width="1.5" marker-end="url(#a)"/>')
lib, eng, ext = "#e8f0fb", "#fdf1de", "#eeeeee"
out.append('<text x="20" y="24" class="h">include/skipllm/  (header-only, no dependencies)</text>')
out.append('<text x="690" y="24" class="h">examples/engine/  (a host)</text>')
rect(20, 40, 300, 80, "cuda/  (.cuh, nvcc)", ["gate + residual-similarity kernels,", "conditional IF nodes, early exit,", "cuda::DecoderLayer, cuda::DecoderStack"], lib)
rect(340, 40, 300, 80, "CPU backend", ["decoder_layer.hpp  DecoderLayer<Host, ...>", "decoder_stack.hpp  DecoderStack", "cpu/residual_similarity.hpp"], lib)
rect(20, 170, 200, 95, "decision.hpp", ["the protocol, host+device:", "begin_token, decide,", "observe, end_token"], lib)
rect(235, 170, 190, 95, "reporting", ["statistics.hpp, trace.hpp,", "json.hpp, report.hpp"], lib)
rect(440, 170, 200, 95, "policy/", ["what is decided: skip,", "cold region, warm-up,", "similarity; Policies<...>", "bundle; describe.hpp"], lib)
rect(20, 310, 400, 62, "concepts.hpp", ["SkipPolicy, ColdRegion, SinkWarmup, SimilarityMetric,", "Host: one 'skipllm: ...' static_assert per missing member"], lib)
rect(20, 420, 620, 62, "foundations", ["config.hpp  numeric.hpp  layer_mask.hpp  row_view.hpp  skip_state.hpp",
     "SKIPLLM_HOST_DEVICE, fp16/bf16 storage, SkipState and LayerContext"], lib)
# library arrows
arrow((120, 120), (120, 168))          # cuda -> decision
arrow((260, 120), (300, 168))          # cuda -> reporting (statistics, trace)
arrow((400, 120), (200, 168))          # cpu -> decision
arrow((470, 120), (400, 168))          # cpu -> reporting
arrow((560, 120), (560, 168))          # cpu -> policy (bundle)
arrow((120, 265), (120, 308))          # decision -> concepts
arrow((500, 265), (410, 308))          # policy -> concepts
arrow((425, 250), (432, 250), (432, 418))          # reporting -> foundations
arrow((220, 372), (220, 418))          # concepts -> foundations
arrow((600, 265), (600, 418))          # policy -> foundations
# engine column
ex, ew = 690, 250
rect(ex, 40, ew, 62, "cli/", ["options, one file per subcommand,", "main.cpp = the skipllm executable"], eng)
rect(ex, 135, ew, 62, "eval/", ["datasets, tasks, metrics,", "calibrate, heatmap"], eng)
rect(ex, 230, ew, 77, "model/", ["llama_model, llama_host", "(the forward pass as a Host),", "thread_pool, generator"], eng)
rect(ex, 340, ew, 62, "format/", ["gguf, quant, tokenizer,", "policy_config, model_cache"], eng)
rect(ex, 435, ew, 47, "nlohmann/json, Threads", ["(engine only)"], ext)
arrow((815, 102), (815, 133)); arrow((815, 197), (815, 228)); arrow((815, 307), (815, 338)); arrow((815, 402), (815, 433))
arrow((690, 255), (665, 255), (665, 80), (642, 80))    # model -> CPU backend (DecoderStack)
arrow((690, 370), (655, 370), (655, 230), (642, 230))  # format -> policy (a config becomes Policies)
arrow((690, 70), (675, 70), (675, 150), (340, 150), (340, 168))  # cli -> reporting (JSON, table)
out.append(f'<text x="20" y="{H-40}" class="s">An arrow goes from code to what it includes. The engine reaches the library through its public</text>')
out.append(f'<text x="20" y="{H-24}" class="s">headers only (never a detail:: name); cuda/ and the CPU backend share decision.hpp and policy/, so one rule runs on both.</text>')
svg = f'''<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">
<defs><marker id="a" markerWidth="9" markerHeight="9" refX="8" refY="4.5" orient="auto"><path d="M0,0 L9,4.5 L0,9 z" fill="#334"/></marker></defs>
<style>.h{{font-size:13px;font-style:italic;fill:#555}} .t{{font-size:14px;font-weight:bold;fill:#123}} .s{{font-size:12px;fill:#234}}</style>
<rect width="100%" height="100%" fill="#ffffff"/>
''' + "\n".join(out) + "\n</svg>\n"
open(__import__("pathlib").Path(__file__).with_name("architecture.svg"), "w").write(svg)
