"""Where ONNX Runtime's time goes in a graph: its profiler's node times, grouped the way the bench reports them.

Two questions are answered from the profiles: how much of the ALGM graph's time the merge/unmerge nodes
take, and how much INT8 can gain at most on this machine. INT8 only changes the Linear layers the recipe
quantizes; everything else (attention, Softmax, LayerNorm, the merges, the FP32 Linear layers upstream of a
merge) runs as in FP32. So with ``share`` the fraction of FP32 node time in those layers and ``speedup``
how much faster they run in INT8 (their QuantizeLinear nodes counted), the INT8/FP32 latency is about
``1 - share * (1 - 1 / speedup)``, and can be no lower than ``1 - share`` however fast the CPU's integer
kernels are.
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from .errors import AlgmExportError
from .export.graph_edits import NODE_PREFIX
from .runtime.onnxruntime_backend import OnnxRuntimeBackend, session_options

KERNEL_SUFFIX = "_kernel_time"
QUANTIZE = "QuantizeLinear"
# What ONNX Runtime turns a Q/DQ MatMul into on the CPU: integer kernels (MLAS: VNNI where the CPU has it, else
# AVX2/AVX-512 pair sums), or, were it left as DequantizeLinear + MatMul, a float MatMul (no INT8 speed at all).
INTEGER_MATMULS = ("MatMulIntegerToFloat", "QLinearMatMul", "MatMulInteger", "DynamicQuantizeMatMul", "QGemm")


@dataclass(frozen=True)
class NodeTime:
    """One node's kernel time summed over the profiled runs."""

    name: str
    op_type: str
    microseconds: float


def profile_node_times(graph: Path, images: np.ndarray, runs: int, folder: Path) -> list[NodeTime]:
    """Run ``graph`` ``runs`` times on ``images`` under ONNX Runtime's profiler (trace written in ``folder``,
    then removed) and return each node's kernel time (nodes keep their names through ONNX Runtime's fusions
    of Q/DQ MatMuls)."""
    backend = OnnxRuntimeBackend(graph, profile_prefix=str(folder / "ort_profile"))
    for _ in range(runs):
        backend.run(images)
    (trace,) = backend.end_profiling()  # one session: every output was asked for
    events = json.loads(trace.read_text())
    trace.unlink()
    totals: dict[tuple[str, str], float] = {}
    for event in events:
        name = event.get("name", "")
        if event.get("cat") == "Node" and name.endswith(KERNEL_SUFFIX):
            key = (name[: -len(KERNEL_SUFFIX)], event.get("args", {}).get("op_name", ""))
            totals[key] = totals.get(key, 0.0) + float(event["dur"])
    return [NodeTime(name, op_type, time) for (name, op_type), time in totals.items()]


def merge_time_share(nodes: list[NodeTime]) -> float:
    """Fraction of the node time spent in the inlined merge/unmerge nodes."""
    total = sum(node.microseconds for node in nodes)
    return sum(node.microseconds for node in nodes if node.name.startswith(NODE_PREFIX)) / total if total else 0.0


def int8_headroom(fp32_nodes: list[NodeTime], int8_nodes: list[NodeTime], quantized: set[str]) -> dict:
    """What INT8 changes, from the FP32 and INT8 profiles of one graph: the share of FP32 node time in the
    ``quantized`` MatMuls, how much faster they run in INT8 (with the QuantizeLinear nodes of their inputs),
    and the INT8/FP32 latency this implies when nothing else changes (and the floor, were INT8 free).

    A quantized MatMul missing from either profile is an error: the split would be silently wrong."""
    if not quantized:
        raise AlgmExportError("INT8 profile: the graph has no quantized MatMuls")
    fp32_found = {node.name for node in fp32_nodes} & quantized
    int8_found = {node.name for node in int8_nodes} & quantized
    if fp32_found != quantized or int8_found != quantized:
        missing = sorted(quantized - (fp32_found & int8_found))
        raise AlgmExportError(f"INT8 profile: {len(missing)} quantized MatMuls not found in the node times "
                              f"(e.g. {missing[0]})")
    fp32_total = sum(node.microseconds for node in fp32_nodes)
    fp32_quantized = sum(node.microseconds for node in fp32_nodes if node.name in quantized)
    int8_quantized = sum(node.microseconds for node in int8_nodes
                         if node.name in quantized or node.op_type == QUANTIZE)
    share, speedup = fp32_quantized / fp32_total, fp32_quantized / int8_quantized
    return {"quantized_matmuls": len(quantized),
            "quantized_share_of_fp32_time": round(share, 4),
            "quantized_layers_speedup": round(speedup, 3),
            "implied_latency_vs_fp32": round(1.0 - share * (1.0 - 1.0 / speedup), 3),
            "floor_latency_vs_fp32": round(1.0 - share, 3)}


def optimized_op_counts(graph: Path) -> dict[str, int]:
    """Node types of ``graph`` after ONNX Runtime's CPU optimizations (its optimized model, saved and counted): shows
    whether the Q/DQ MatMuls run as integer kernels (:data:`INTEGER_MATMULS`) and what stays separate (QuantizeLinear,
    the bias Add)."""
    with tempfile.TemporaryDirectory(prefix="algm-optimized-") as folder:
        options = session_options()
        options.optimized_model_filepath = str(Path(folder) / "optimized.onnx")
        ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
        model = onnx.load(options.optimized_model_filepath)
    return dict(Counter(node.op_type for node in model.graph.node))


def integer_kernel_counts(graph: Path) -> dict[str, int]:
    """The integer kernels ONNX Runtime runs for a Q/DQ ``graph`` on this CPU: each of :data:`INTEGER_MATMULS` it
    fused the quantized MatMuls into, and the QuantizeLinear nodes left in front of them (what differs by CPU)."""
    counts = optimized_op_counts(graph)
    return {op: counts[op] for op in (*INTEGER_MATMULS, "QuantizeLinear") if counts.get(op)}
