"""The benchmark itself: export the dense and ALGM graphs, time every backend and batch, gather the record."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import onnx

from ..artifacts import INT8_GRAPH, OUTPUT_NAMES
from ..calibration.int8 import Int8Settings, write_int8_graphs
from ..calibration.recipe import dequantized_inputs
from ..errors import AlgmExportError
from ..export.onnx_export import export_graphs
from ..files import prepare_output_folder
from ..flops import segmenter_flops
from ..models.segmenter import Segmenter
from ..preprocess import make_batch
from ..profiling import int8_headroom, integer_kernel_counts, merge_time_share, profile_node_times
from ..runtime.base import Backend
from ..runtime.onnxruntime_backend import OnnxRuntimeBackend
from ..runtime.torch_backend import TorchBackend
from .gpu_timing import gpu_backends, gpu_environment, on_gpu, time_on_gpu
from .predict_timing import time_predict
from .records import padded_work_share, speed_record
from .timing import Timing, time_interleaved, time_outputs, time_research_style


def run_benchmark(model: Segmenter, folder: Path, image_size: tuple[int, int], batches: Sequence[int],
                  runs: int, warmup: int, photos: dict[str, np.ndarray], fp16: bool = False,
                  plugin_library: Path | None = None, int8: Int8Settings | None = None, frames: int = 4) -> dict:
    """Export dense and ALGM graphs into ``folder``, time every backend (returning ``labels``), every output
    choice, our PyTorch ALGM against the research code's way of running it, and ``predict`` on ``frames``
    1920x1080 video frames (0: not); return the ``speed`` record. Every batch size runs the same
    ``max(batches)`` images (``photos`` in turn), in consecutive batches of that size, so that the rows of all
    batch sizes compare (latency: per batch of that size); the GPU rows time the first batch. With ``int8``
    also the INT8 Q/DQ graphs of both in ONNX Runtime (calibrated per ``int8``). Where TensorRT and a GPU
    exist, FP16 engines and PyTorch on the GPU are timed too."""
    if model.algm is None:
        raise AlgmExportError("bench compares dense and ALGM: the model has no ALGM settings (use --layers ...)")
    algm = model.algm
    dense_model = Segmenter(model.config, None)
    dense_model.load_state_dict(model.state_dict())
    dense_model.eval()
    environment, tensorrt = gpu_environment(plugin_library)
    with_engines = environment is not None
    print(f"exporting the dense and ALGM graphs to {folder}/ ...", flush=True)
    folders = {"dense": prepare_output_folder(folder / "dense"), "ALGM": prepare_output_folder(folder / "algm")}
    dense_graphs = export_graphs(dense_model, folders["dense"], image_size, fp16=with_engines)
    algm_graphs = export_graphs(model, folders["ALGM"], image_size, fp16=fp16 or with_engines, outputs=OUTPUT_NAMES)
    backends: list[tuple[Backend, str]] = [
        (TorchBackend(dense_model, image_size, "pytorch dense"), "fp32"),
        (TorchBackend(model, image_size, "pytorch ALGM"), "fp32"),
        (OnnxRuntimeBackend(dense_graphs.portable, "onnxruntime dense"), "fp32"),
        (OnnxRuntimeBackend(algm_graphs.portable, "onnxruntime ALGM"), "fp32"),
    ]
    if fp16:
        backends.append((OnnxRuntimeBackend(algm_graphs.fp16, "onnxruntime ALGM"), "fp16"))
    int8_counts = {}
    if int8:
        for kind, kind_folder in folders.items():
            print(f"INT8 graph of the {kind} model ({int8.scope}) ...", flush=True)
            entry = write_int8_graphs(kind_folder, int8, fp16=False)
            int8_counts[kind] = {"int8_matmuls": entry["quantized_matmuls"], "scope_matmuls": entry["scope_matmuls"],
                                 "summary": entry["summary"]}
            backends.append((OnnxRuntimeBackend(kind_folder / INT8_GRAPH, f"onnxruntime {kind}"), "int8"))
    if with_engines:
        backends.extend(gpu_backends({"dense": dense_model, "ALGM": model}, folders, image_size, max(batches),
                                     environment))
    names = list(photos)
    timings, flop_ratios, padded_shares = [], {}, {}
    mixed = [photos[names[i % len(names)]] for i in range(max(batches))]  # every batch size runs these images
    for batch in batches:
        chunks = [make_batch(mixed[i:i + batch], image_size, model.config.normalization)
                  for i in range(0, len(mixed), batch)]
        on_cpu = [(backend, precision) for backend, precision in backends if not on_gpu(backend.name)]
        print(f"  timing {', '.join(f'{b.name} {p}' for b, p in on_cpu)} batch {batch} ({len(chunks)} x), "
              "interleaved ...", flush=True)
        for (backend, precision), (latency, counts) in zip(on_cpu, time_interleaved([b for b, _ in on_cpu], chunks,
                                                                                   warmup, runs)):
            timings.append(Timing(backend.name, precision, batch, latency * batch / len(mixed), counts))
        for backend, precision in backends:
            if on_gpu(backend.name):
                print(f"  timing {backend.name} {precision} batch {batch} ...", flush=True)
                latency, copy_in, copy_out, counts = time_on_gpu(backend, chunks[0], warmup, runs)
                timings.append(Timing(backend.name, precision, batch, latency, counts, copy_in, copy_out))
        counts = next(t.token_counts for t in timings if t.batch == batch and t.backend == "onnxruntime ALGM")
        flop_ratios[batch] = (segmenter_flops(model.config, image_size, None, None)
                              / np.mean([segmenter_flops(model.config, image_size, algm, c) for c in counts]))
        padded_shares[batch] = padded_work_share(counts, batch)
    share_images = make_batch([photos[names[0]]], image_size, model.config.normalization)
    profile_runs = max(3, runs // 4)
    fp32_nodes = profile_node_times(algm_graphs.portable, share_images, profile_runs, folder)
    share = merge_time_share(fp32_nodes)
    headroom = None
    quantized = set(dequantized_inputs(onnx.load(folders["ALGM"] / INT8_GRAPH))) if int8 else set()
    if quantized:  # the MatMuls mixed precision kept INT8 (none: nothing for INT8 to change)
        int8_nodes = profile_node_times(folders["ALGM"] / INT8_GRAPH, share_images, profile_runs, folder)
        headroom = {**int8_headroom(fp32_nodes, int8_nodes, quantized),
                    "kernels": integer_kernel_counts(folders["ALGM"] / INT8_GRAPH)}
    print(f"  timing every output choice, one window of each of the {len(names)} photos ...", flush=True)
    algm_backends = [backend for backend, precision in backends
                     if backend.name.endswith("ALGM") and precision == "fp32"]
    windows = [make_batch([photos[name]], image_size, model.config.normalization) for name in names]
    outputs = time_outputs(algm_backends, windows, warmup, runs)
    print("  timing our PyTorch ALGM and the research code's way of running it, batch 1, training size ...",
          flush=True)
    research_images = make_batch([photos[names[0]]], model.config.image_size, model.config.normalization)
    research = time_research_style(model, research_images, warmup, runs)  # the restatement: training size only
    predict = {"status": "skipped", "reason": "--frames 0"}
    if frames:
        print(f"  timing predict on {frames} 1920x1080 video frames, ONNX Runtime dense and ALGM ...", flush=True)
        onnxruntime = {kind: next(b for b, _ in backends if b.name == f"onnxruntime {kind}")
                       for kind in ("dense", "ALGM")}
        predict = time_predict(onnxruntime, model, folder, photos, frames)
    return {**speed_record(timings, flop_ratios, share, runs, warmup, image_size, model, headroom, int8_counts,
                           padded_shares),
            "tensorrt": tensorrt,
            "outputs": outputs, "research_style_pytorch": research, "predict_1080p": predict}
