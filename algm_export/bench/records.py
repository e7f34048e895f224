"""The ``speed`` entry of report.json, built from the timings."""

from __future__ import annotations

from ..models.segmenter import Segmenter
from .gpu_timing import on_gpu
from .machine import machine_description
from .timing import Timing


def padded_work_share(counts: list[list[int]], batch: int) -> float:
    """Tokens a padded layout computes over real tokens, for per-image counts ``[images][merges]`` run in
    consecutive batches of ``batch``: each batch pads every image to its longest one after each merge
    (``len(batch) x max`` tokens), the real tokens are the counts' sum. 1.0 at batch 1 or for equal counts."""
    computed = sum(len(chunk) * max(stage) for start in range(0, len(counts), batch)
                   for chunk in [counts[start:start + batch]] for stage in zip(*chunk))
    return computed / sum(sum(image) for image in counts)


def speed_record(timings: list[Timing], flop_ratios: dict[int, float], share: float, runs: int, warmup: int,
                 image_size: tuple[int, int], model: Segmenter, headroom: dict | None = None,
                 int8_counts: dict | None = None, padded_shares: dict[int, float] | None = None) -> dict:
    """The ``speed`` entry of report.json (``headroom``: :func:`algm_export.profiling.int8_headroom` of the
    ALGM graph at batch 1, with ``--int8``; ``int8_counts``: per model kind, how many MatMuls mixed precision
    kept INT8 of those its scope allowed; ``padded_shares``: :func:`padded_work_share` per batch)."""
    rows = []
    for timing in timings:
        baseline = "pytorch dense (cuda)" if on_gpu(timing.backend) else "pytorch dense"  # same device as the row
        base = next(t for t in timings if t.batch == timing.batch and t.backend == baseline)
        rows.append({
            "backend": timing.backend, "precision": timing.precision, "batch": timing.batch,
            "latency_ms": round(timing.latency_ms, 2), "images_per_s": round(timing.images_per_second, 3),
            "speedup_vs_pytorch_dense": round(base.latency_ms / timing.latency_ms, 3),
            "token_counts": timing.token_counts,
            **({"copy_in_ms": round(timing.copy_in_ms, 3), "copy_out_ms": round(timing.copy_out_ms, 3)}
               if timing.copy_in_ms is not None else {}),
        })
    ort_speedups, int8 = {}, {}
    for batch in flop_ratios:
        dense = next(t for t in timings if t.batch == batch and t.backend == "onnxruntime dense")
        merged = next(t for t in timings if t.batch == batch and t.backend == "onnxruntime ALGM"
                      and t.precision == "fp32")
        ort_speedups[str(batch)] = round(dense.latency_ms / merged.latency_ms, 3)
        quantized = next((t for t in timings if t.batch == batch and t.backend == "onnxruntime ALGM"
                          and t.precision == "int8"), None)
        if quantized is not None:
            int8[str(batch)] = {"latency_vs_fp32_algm": round(quantized.latency_ms / merged.latency_ms, 3),
                                "speedup_over_fp32_dense": round(dense.latency_ms / quantized.latency_ms, 3),
                                "flop_ratio_dense_over_algm": round(flop_ratios[batch], 3)}
    return {
        "machine": machine_description(),
        "model": f"{model.config.backbone} {image_size[0]}x{image_size[1]}, {model.config.decoder} decoder",
        "runs": runs, "warmup": warmup,
        "rows": rows,
        "flop_ratio_dense_over_algm": {str(b): round(r, 3) for b, r in flop_ratios.items()},
        "onnxruntime_algm_speedup_over_dense": ort_speedups,
        "onnxruntime_speedup_over_flop_ratio": {b: round(r / flop_ratios[int(b)], 3) for b, r in ort_speedups.items()},
        **({"padded_work_share": {str(b): round(r, 3) for b, r in padded_shares.items()}} if padded_shares else {}),
        "merge_unmerge_time_share_onnxruntime": round(share, 4),
        **({"onnxruntime_int8_algm": int8} if int8 else {}),
        **({"onnxruntime_int8_headroom": headroom} if headroom else {}),
        **({"onnxruntime_int8_matmuls": int8_counts} if int8_counts else {}),
    }
