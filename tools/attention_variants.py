#!/usr/bin/env python3
"""Time the portable graph's per-image attention as exported (MatMul-Softmax-MatMul in the Loop body) against
fused attention ops in the same place: ONNX ``Attention`` (opset 23) and ``com.microsoft.MultiHeadAttention``.

    PYTHONPATH=. python tools/attention_variants.py [--runs 7] [--preset small] [--out /tmp/attention_variants]

The experiment behind docs/speed.md "Fused attention, measured and not adopted": graphs of one sample model
(random encoder, as ``samples/make_sample_checkpoint.py`` makes it), exported once per variant with only the
Loop body's attention replaced; ONNX Runtime on the bench's 8 images, each alone (batch 1) and together
(batch 8), the graphs taking turns pass after pass; medians in ms per image and the largest logit difference
to the shipped graph. Not part of the package: the shipped graphs keep the standard-op body (see the doc).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "samples"))

from sample_models import make_sample_segmenter  # noqa: E402

from algm_export.bench.images import bench_photos  # noqa: E402
from algm_export.export import attention  # noqa: E402
from algm_export.export.graph_edits import inline_portable  # noqa: E402
from algm_export.export.onnx_export import DEFAULT_OPSET, export_plugin_graph  # noqa: E402
from algm_export.models.segmenter import Segmenter  # noqa: E402
from algm_export.preprocess import make_batch  # noqa: E402

VARIANTS = ("dense", "shipped", "onnx-attention-23", "ms-multiheadattention")
SIZE = (512, 512)


def fused_body(op: str):
    """An ``attention._attention`` whose per-image (unbatched) case calls ``op`` on ``[1, T, C]`` q, k, v."""
    shipped = attention._attention

    def body(n, qkv, heads, channels, scale, dtype, valid_keys, batched):
        if batched:
            return shipped(n, qkv, heads, channels, scale, dtype, valid_keys, batched)
        rows = n.add("Unsqueeze", [qkv, n.const("fused_axis0", [0])], "fused_qkv")
        q, k, v = (n.add("Slice", [rows, n.const(f"fused_start_{i}", [i * channels]),
                                   n.const(f"fused_end_{i}", [(i + 1) * channels]), n.const("fused_axis2", [2])],
                         f"fused_{part}") for i, part in enumerate("qkv"))
        if op == "ms-multiheadattention":
            out = n.add("MultiHeadAttention", [q, k, v], "fused_mha", domain="com.microsoft", num_heads=heads,
                        scale=scale)
        else:
            out = n.add("Attention", [q, k, v], "fused_attention", q_num_heads=heads, kv_num_heads=heads,
                        scale=scale)
        return n.add("Reshape", [out, n.const("fused_rows", [-1, channels])], "fused_out")

    return body


def export_variant(model: Segmenter, variant: str, path: Path) -> Path:
    """``model``'s portable graph (logits out) with the Loop body of ``variant``."""
    shipped = attention._attention
    if variant in VARIANTS[2:]:
        attention._attention = fused_body(variant)
    try:
        graph = inline_portable(attention.expand_attention(
            export_plugin_graph(model, SIZE, DEFAULT_OPSET, False, ("logits",)), "loop"))
    finally:
        attention._attention = shipped
    if variant == "ms-multiheadattention":
        graph.opset_import.append(onnx.helper.make_opsetid("com.microsoft", 1))
    if variant == "onnx-attention-23":  # the ops of this graph mean the same at opset 23 (type additions only)
        for opset in graph.opset_import:
            if opset.domain in ("", "ai.onnx"):
                opset.version = 23
    onnx.save(graph, path)
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--preset", default="small", help="sample ViT size (default small)")
    parser.add_argument("--out", type=Path, default=Path("/tmp/attention_variants"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    merged = make_sample_segmenter(args.preset, SIZE[0], fit_steps=0).eval()
    dense = Segmenter(merged.config, None).eval()
    dense.load_state_dict(merged.state_dict())
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    sessions = {variant: ort.InferenceSession(
        str(export_variant(dense if variant == "dense" else merged, variant, args.out / f"{variant}.onnx")),
        options, providers=["CPUExecutionProvider"]) for variant in VARIANTS}
    photos = bench_photos(None)
    names = [*photos, *photos][:8]
    images = [make_batch([photos[name]], SIZE, merged.config.normalization) for name in names]
    batch = np.concatenate(images)
    logits = {variant: session.run(["logits"], {"images": batch})[0] for variant, session in sessions.items()}
    times = {(variant, size): [] for variant in VARIANTS for size in (1, 8)}
    for _ in range(args.runs):
        for variant, session in sessions.items():
            start = time.perf_counter()
            for image in images:
                session.run(["logits"], {"images": image})
            times[variant, 1].append((time.perf_counter() - start) / len(images) * 1e3)
            start = time.perf_counter()
            session.run(["logits"], {"images": batch})
            times[variant, 8].append((time.perf_counter() - start) / len(images) * 1e3)
    median = {key: statistics.median(values) for key, values in times.items()}
    print("variant                  ms/image b1  b8      dense/ALGM b1  b8    kept  max |dlogit| vs shipped")
    for variant in VARIANTS:
        line = f"{variant:24} {median[variant, 1]:8.1f} {median[variant, 8]:8.1f}"
        if variant != "dense":
            b1, b8 = (median["dense", size] / median[variant, size] for size in (1, 8))
            difference = float(np.abs(logits[variant] - logits["shipped"]).max())
            line += f"      {b1:6.2f} {b8:6.2f}  {b8 / b1:5.2f}  {difference:.1e}"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
