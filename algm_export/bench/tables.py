"""The ``speed`` record as printable tables and summary lines."""

from __future__ import annotations

import numpy as np

from ..artifacts import LOGITS
from ..verify.report import format_table


def mean_counts(counts: list[list[int]] | None) -> str:
    """Per-image token counts [B][merges] as the mean count after each merge ("-" for a dense row)."""
    if not counts:
        return "-"
    return " -> ".join(f"{value:.0f}" for value in np.mean(counts, axis=0))


def speed_table(speed: dict) -> str:
    """The speed record as a printable table plus the summary lines."""
    rows = [[r["backend"], r["precision"], str(r["batch"]), f"{r['latency_ms']:.1f}", f"{r['images_per_s']:.2f}",
             f"{r['speedup_vs_pytorch_dense']:.2f}x",
             mean_counts(r["token_counts"])] for r in speed["rows"]]
    table = format_table(["backend", "precision", "batch", "latency ms", "images/s", "vs pytorch dense",
                          "tokens after merges (mean)"], rows)
    lines = [table, "",
             "FLOP ratio dense/ALGM (measured token counts): "
             + ", ".join(f"batch {b}: {r:.2f}" for b, r in speed["flop_ratio_dense_over_algm"].items()),
             "ONNX Runtime ALGM speedup over ONNX Runtime dense: "
             + ", ".join(f"batch {b}: {r:.2f}x" for b, r in speed["onnxruntime_algm_speedup_over_dense"].items()),
             *batch_lines(speed),
             f"merge/unmerge nodes: {100 * speed['merge_unmerge_time_share_onnxruntime']:.1f} % of ONNX Runtime "
             "ALGM node time (batch 1, profiled)",
             *int8_lines(speed.get("onnxruntime_int8_algm", {}), speed.get("onnxruntime_int8_headroom"),
                         speed.get("onnxruntime_int8_matmuls")),
             f"machine: {speed['machine']}"]
    if "outputs" in speed:
        lines.extend(["", outputs_table(speed["outputs"])])
    if "research_style_pytorch" in speed:
        lines.extend(["", research_line(speed["research_style_pytorch"])])
    if "predict_1080p" in speed:
        lines.append(predict_line(speed["predict_1080p"]))
    tensorrt = speed.get("tensorrt", {})
    copies = [r for r in speed["rows"] if "copy_in_ms" in r]
    if copies:
        lines.append("GPU rows: inference only (batch already on the GPU, CUDA events); copies timed apart: "
                     + ", ".join(f"{r['backend']} batch {r['batch']}: in {r['copy_in_ms']:.2f} ms, "
                                 f"out {r['copy_out_ms']:.2f} ms" for r in copies))
    if tensorrt.get("status") == "skipped":
        lines.append(f"TensorRT rows: skipped ({tensorrt['reason']})")
    elif tensorrt:
        lines.append(f"TensorRT rows: {tensorrt['gpu']}, TensorRT {tensorrt['tensorrt_version']}")
    return "\n".join(lines)


def batch_lines(speed: dict) -> list[str]:
    """How much of the FLOP ratio ONNX Runtime realises per batch, and how much of batch 1's speedup each
    larger batch keeps (with per-image merging a batch should keep it: each image merges as it would alone)."""
    flops, measured = speed["flop_ratio_dense_over_algm"], speed["onnxruntime_algm_speedup_over_dense"]
    lines = ["ONNX Runtime speedup / FLOP ratio: "
             + ", ".join(f"batch {b}: {measured[b] / flops[b]:.2f}" for b in measured)]
    if "1" in measured and len(measured) > 1:
        lines.append("ONNX Runtime speedup kept relative to batch 1: "
                     + ", ".join(f"batch {b}: {measured[b] / measured['1']:.2f}" for b in measured if b != "1"))
    if "padded_work_share" in speed:
        lines.append("tokens computed / real tokens in the padded layout (merges, decoder; the encoder blocks and "
                     "their attention run on each image's real tokens): "
                     + ", ".join(f"batch {b}: {r:.2f}" for b, r in speed["padded_work_share"].items()))
    return lines


def int8_lines(int8: dict, headroom: dict | None = None, counts: dict | None = None) -> list[str]:
    """Summary lines of the INT8 rows: how many MatMuls are INT8, latency vs FP32 ALGM, speedup over FP32 dense
    beside the FLOP ratio, and what the profiles say INT8 can reach on this machine."""
    if not int8:
        return []
    matmuls = [] if not counts else ["INT8 MatMuls (mixed precision): " + ", ".join(
        f"{kind} {c['int8_matmuls']} of {c['scope_matmuls']}" for kind, c in counts.items())]
    limit = [] if headroom is None else [
        f"INT8 changes only the {headroom['quantized_matmuls']} quantized Linear MatMuls: "
        f"{100 * headroom['quantized_share_of_fp32_time']:.0f} % of FP32 ALGM node time, "
        f"{headroom['quantized_layers_speedup']:.2f}x faster in INT8 here, so INT8/FP32 ALGM ~ "
        f"{headroom['implied_latency_vs_fp32']:.2f}x (at best {headroom['floor_latency_vs_fp32']:.2f}x were INT8 "
        "free; batch 1, profiled)",
        "ONNX Runtime kernels of the INT8 ALGM graph on this CPU: "
        + (", ".join(f"{n} {op}" for op, n in headroom.get("kernels", {}).items()) or "no integer kernels")]
    return [*matmuls, *limit, "ONNX Runtime INT8 ALGM latency / FP32 ALGM latency: "
            + ", ".join(f"batch {b}: {r['latency_vs_fp32_algm']:.2f}x" for b, r in int8.items()),
            "ONNX Runtime INT8 ALGM speedup over FP32 dense: "
            + ", ".join(f"batch {b}: {r['speedup_over_fp32_dense']:.2f}x "
                        f"(FLOP ratio {r['flop_ratio_dense_over_algm']:.2f}, "
                        f"x1.2 = {1.2 * r['flop_ratio_dense_over_algm']:.2f})" for b, r in int8.items())]


def outputs_table(rows: list[dict]) -> str:
    """Latency per output choice, and labels relative to logits."""
    def logits_ms(backend: str) -> float:
        return next(o["latency_ms"] for o in rows if o["backend"] == backend and o["outputs"] == LOGITS)

    table = format_table(["backend", "outputs", "batch", "latency ms", "vs logits"], [
        [r["backend"], r["outputs"], str(r["batch"]), f"{r['latency_ms']:.1f}",
         f"{r['latency_ms'] / logits_ms(r['backend']):.2f}x"] for r in rows])
    return "latency per output choice (per window, mean over the photos):\n" + table


def research_line(research: dict) -> str:
    """Our PyTorch ALGM against the research code's way of running it."""
    return (f"PyTorch ALGM, batch 1, full logits: ours {research['ours_ms']:.1f} ms, research-style "
            f"(algm_export.reference) {research['research_style_ms']:.1f} ms: ours "
            f"{research['speedup_over_research_style']:.2f}x as fast")


def predict_line(predict: dict) -> str:
    """``predict`` on 1080p frames: dense vs ALGM frames/s against the FLOP ratio."""
    if predict.get("status") != "timed":
        return f"predict on 1920x1080 frames: skipped ({predict['reason']})"
    return (f"predict on {predict['frames']} 1920x1080 frames end to end (batch {predict['batch']}): ONNX Runtime "
            f"dense {predict['dense_frames_per_s']:.2f} frames/s, ALGM {predict['ALGM_frames_per_s']:.2f} frames/s: "
            f"{predict['speedup']:.2f}x; FLOP ratio dense/ALGM {predict['flop_ratio_dense_over_algm']:.2f}; "
            f"speedup / FLOP ratio = {predict['speedup_over_flop_ratio']:.2f}")
