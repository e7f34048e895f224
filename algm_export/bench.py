"""Speed table: PyTorch eager vs ONNX Runtime, dense vs ALGM, on real photos.

    python -m algm_export.bench MODEL [-o DIR] [--batches 1,8] [--runs 20]
    algm-export bench MODEL ...

Exports the dense and the ALGM graph of MODEL into DIR/bench/, then times every backend in this one
process (on a machine with TensorRT, a GPU and the plugin library also PyTorch on the GPU and the dense
and ALGM FP16 engines; run `--batches 1,32` there): warm-up runs, then the median of ``--runs`` runs per (backend, batch). Batches are filled with
the sample photos in turn (a mixed batch; each image merges as alone under the per-image rule). Also reports the FLOP
ratio dense/ALGM from the measured per-image token counts and, from ONNX Runtime's profiler, the share of ALGM
time spent in the merge/unmerge nodes (with ``--int8`` also what INT8 can reach on this CPU:
:mod:`algm_export.profiling`). The table is printed and stored under ``speed`` in report.json.
"""

from __future__ import annotations

import argparse
import copy
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import onnx
import onnxruntime as ort
import torch

from .artifacts import FP16_PLAN, INT8_GRAPH, LABELS, LOGITS, OUTPUT_NAMES, SCORES, TOKEN_COUNTS
from .calibration.int8 import Int8Settings, write_int8_graphs
from .calibration.recipe import dequantized_inputs
from .checkpoints.command_line import export_size, load_model
from .errors import AlgmExportError
from .export.onnx_export import export_graphs
from .files import check_output_target, prepare_output_folder, replaced_folder
from .flops import segmenter_flops
from .models.segmenter import Segmenter
from .pipeline import verification_photos
from .preprocess import make_batch, resize_rgb
from .profiling import int8_headroom, merge_time_share, profile_node_times
from .reference.research_algm import reference_forward
from .runtime.base import Backend
from .runtime.onnxruntime_backend import OnnxRuntimeBackend
from .runtime.sliding import SlidingWindow
from .runtime.torch_backend import TorchBackend
from .trt.availability import Unavailable, tensorrt_environment
from .verify.report import REPORT, format_table, load_report, save_report

OUTPUT_CHOICES = [(LABELS,), (SCORES,), (LOGITS,), (LABELS, SCORES)]


@dataclass
class Timing:
    """One row of the speed table."""

    backend: str
    precision: str
    batch: int
    latency_ms: float
    token_counts: list[list[int]] | None  # [B][merges]: each image's tokens after each merge
    copy_in_ms: float | None = None  # GPU rows: host -> device copy of the batch, timed apart
    copy_out_ms: float | None = None  # GPU rows: device -> host copy of the deployment outputs

    @property
    def images_per_second(self) -> float:
        """Throughput."""
        return 1000.0 * self.batch / self.latency_ms


def median_ms(run: Callable[[], object], warmup: int, runs: int) -> tuple[float, object]:
    """Median wall time (ms) of ``runs`` calls of ``run`` after ``warmup`` calls, and the last result."""
    for _ in range(warmup):
        result = run()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        result = run()
        samples.append(1000.0 * (time.perf_counter() - start))
    return statistics.median(samples), result


def time_interleaved(backends: list[Backend], images: np.ndarray, warmup: int, runs: int,
                     outputs: tuple[str, ...] = (LABELS,)) -> list[tuple[float, list[list[int]] | None]]:
    """Per backend: the median latency (ms) of ``runs`` runs returning ``outputs`` after ``warmup`` runs, and
    the per-image token counts ``[B][merges]``. The backends take turns run after run (interleaved), so that
    a change in machine load affects them alike."""
    for backend in backends:
        for _ in range(warmup):
            backend.run(images, outputs)
    samples: list[list[float]] = [[] for _ in backends]
    predictions: list = [None] * len(backends)
    for _ in range(runs):
        for index, backend in enumerate(backends):
            latency, predictions[index] = median_ms(lambda: backend.run(images, outputs), 0, 1)
            samples[index].append(latency)
    return [(statistics.median(times), prediction.token_counts.tolist() if prediction.token_counts is not None
             else None) for times, prediction in zip(samples, predictions)]


def time_research_style(model: Segmenter, images: np.ndarray, warmup: int, runs: int) -> dict:
    """Our PyTorch ALGM and the research code's way of running it (:mod:`algm_export.reference`), both
    returning full-resolution logits, timed side by side."""
    batch = torch.from_numpy(images)
    with torch.no_grad():
        ours, _ = median_ms(lambda: model(batch), warmup, runs)
        research, _ = median_ms(lambda: reference_forward(model, batch, model.algm), warmup, runs)
    return {"ours_ms": round(ours, 2), "research_style_ms": round(research, 2),
            "speedup_over_research_style": round(research / ours, 3)}


PREDICT_FRAME = (1080, 1920)


def write_test_video(path: Path, photos: dict[str, np.ndarray], frames: int, size: tuple[int, int]) -> Path:
    """A short video of the sample photos resized to ``size`` (PyAV, MPEG-4 part 2)."""
    import av

    names = list(photos)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = size[1], size[0], "yuv420p"
        stream.options = {"qscale": "3"}
        for index in range(frames):
            image = resize_rgb(photos[names[index % len(names)]], size)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    return path


def time_predict(backends: dict[str, Backend], model: Segmenter, folder: Path, photos: dict[str, np.ndarray],
                 frames: int) -> dict:
    """``predict`` on a 1920x1080 video end to end (decode, resize, windows, run, merge, write the PNGs) with
    the dense and the ALGM backend; frames/s, and the FLOP ratio of the windows' measured token counts."""
    try:
        import av  # noqa: F401
    except ImportError:
        return {"status": "skipped", "reason": "PyAV is not installed (pip install 'algm-export[video]')"}
    from .arguments import DEFAULT_PREDICT_BATCH as DEFAULT_BATCH
    from .predict import Predictor, Source

    video = write_test_video(folder / "frames_1080p.mp4", photos, frames, PREDICT_FRAME)
    record = {"status": "timed", "frames": frames, "frame_size": list(PREDICT_FRAME), "batch": DEFAULT_BATCH}
    for kind, backend in backends.items():
        sliding = SlidingWindow(backend, batch=DEFAULT_BATCH)
        next(sliding.segment([photos[next(iter(photos))]]))  # warm-up (builds the scores-only session)
        predictor = Predictor(backend, prepare_output_folder(folder / f"predict_{kind}"), sliding)
        start = time.perf_counter()
        predictor.run([Source(video)])
        elapsed = time.perf_counter() - start
        if predictor.images != frames:  # predict skips what it cannot read: a timing needs every frame
            raise AlgmExportError(f"predict timing: {predictor.images} of the {frames} test frames were segmented "
                                  f"({'; '.join(predictor.skipped) or 'none skipped'})")
        record[f"{kind}_frames_per_s"] = round(predictor.images / elapsed, 3)
        if predictor.token_counts:
            windows = [counts for image in predictor.token_counts for counts in image]
            size = backend.info.image_size
            dense = segmenter_flops(model.config, size, None, None)
            merged = statistics.mean(segmenter_flops(model.config, size, model.algm, c) for c in windows)
            record["flop_ratio_dense_over_algm"] = round(dense / merged, 3)
    record["speedup"] = round(record["ALGM_frames_per_s"] / record["dense_frames_per_s"], 3)
    record["speedup_over_flop_ratio"] = round(record["speedup"] / record["flop_ratio_dense_over_algm"], 3)
    return record


def time_outputs(backends: list[Backend], windows: list[np.ndarray], warmup: int, runs: int) -> list[dict]:
    """Per-window latency of every output choice for each backend, averaged over ``windows`` (one image each:
    what a head costs depends on the content): each run times every window once per choice, the choices
    taking turns run after run (interleaved), so that a change in machine load affects them alike; medians."""
    rows = []
    for backend in backends:
        for outputs in OUTPUT_CHOICES:
            for _ in range(max(1, warmup)):  # also builds ONNX Runtime's pruned session for the choice
                backend.run(windows[0], outputs)
        samples: dict[tuple[str, ...], list[float]] = {outputs: [] for outputs in OUTPUT_CHOICES}
        for _ in range(runs):
            for outputs in OUTPUT_CHOICES:
                samples[outputs].append(sum(median_ms(lambda: backend.run(images, outputs), 0, 1)[0]
                                            for images in windows) / len(windows))
        rows.extend({"backend": backend.name, "outputs": ",".join(outputs), "batch": 1,
                     "latency_ms": round(statistics.median(times), 2)} for outputs, times in samples.items())
    return rows


DEPLOYMENT_OUTPUTS = ("labels", "scores")  # what a deployment copies back (logits when the graph has neither)


def _event_ms(torch, work) -> tuple[float, object]:
    """Milliseconds between CUDA events recorded around ``work()`` on the current stream, and its result."""
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    result = work()
    stop.record()
    stop.synchronize()
    return start.elapsed_time(stop), result


def time_on_gpu(backend: Backend, images: np.ndarray, warmup: int,
                runs: int) -> tuple[float, float, float, list[int] | None]:
    """GPU rows: median inference time with the batch already on the GPU in buffers reused across runs (CUDA
    events), then the median host->device copy of the batch and device->host copy of the deployment outputs,
    timed apart; and the token counts. ``backend`` is a TensorRTBackend or a TorchBackend on "cuda"."""
    from .runtime.tensorrt_backend import TensorRTBackend

    batch = images.shape[0]
    if isinstance(backend, TensorRTBackend):
        device_input = backend.buffers(batch)[backend.input_name]

        def infer():
            return backend.enqueue(batch)

        def deployment(outputs):
            return [outputs[n] for n in DEPLOYMENT_OUTPUTS if n in outputs] or [outputs[LOGITS]]
    else:
        device_input = torch.empty(images.shape, dtype=torch.float32, device="cuda")

        def infer():
            with torch.no_grad():
                return {"labels": backend.model(device_input).argmax(dim=1)}

        def deployment(outputs):
            return [outputs["labels"]]
    host = torch.from_numpy(images).pin_memory()
    copy_in = [_event_ms(torch, lambda: device_input.copy_(host, non_blocking=True))[0] for _ in range(runs)]
    for _ in range(warmup):
        _event_ms(torch, infer)
    samples, outputs = [], None
    for _ in range(runs):
        elapsed, outputs = _event_ms(torch, infer)
        samples.append(elapsed)
    copy_out = [_event_ms(torch, lambda: [t.to("cpu", non_blocking=True) for t in deployment(outputs)])[0]
                for _ in range(runs)]
    if isinstance(backend, TensorRTBackend):
        counts = outputs.get(TOKEN_COUNTS)
        counts = counts.cpu().tolist() if counts is not None else None
    else:
        counts = backend.model.token_counts.tolist() if backend.model.algm else None
    return statistics.median(samples), statistics.median(copy_in), statistics.median(copy_out), counts


SIMD_FLAGS = (("avx2", "AVX2"), ("avx512f", "AVX-512"), ("avx_vnni", "AVX-VNNI"), ("avx512_vnni", "AVX-512 VNNI"),
              ("amx_int8", "AMX-INT8"))  # /proc/cpuinfo flag -> name; VNNI/AMX are what make INT8 GEMMs fast


def machine_description() -> str:
    """CPU model, its SIMD extensions for FP32/INT8 GEMMs, and thread counts, for the record."""
    cpu, flags = platform.processor() or platform.machine(), set()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        lines = cpuinfo.read_text().splitlines()
        names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
        cpu = names[0] if names else cpu
        flags = next((set(line.split(":", 1)[1].split()) for line in lines if line.startswith("flags")), set())
    if flags:
        simd = [name for flag, name in SIMD_FLAGS if flag in flags]
        vnni = "" if flags & {"avx_vnni", "avx512_vnni", "amx_int8"} else ", no VNNI"
        cpu = f"{cpu} ({', '.join(simd) or 'no AVX2'}{vnni})"
    return f"{cpu}; torch threads {torch.get_num_threads()}; onnxruntime {ort.__version__}; torch {torch.__version__}"


def gpu_environment(plugin_library: Path | None) -> tuple[tuple | None, dict]:
    """(tensorrt, GPU name, plugin library) when engines can be timed, else None; and the report entry."""
    try:
        environment = tensorrt_environment(plugin_library)
    except Unavailable as reason:
        print(f"TensorRT rows skipped: {reason}", flush=True)
        return None, {"status": "skipped", "reason": str(reason)}
    return environment, {"status": "timed", "gpu": environment[1], "tensorrt_version": environment[0].__version__}


def gpu_backends(models: dict[str, Segmenter], folders: dict[str, Path], image_size: tuple[int, int],
                 max_batch: int, environment: tuple) -> list[tuple[Backend, str]]:
    """PyTorch on the GPU and the FP16 TensorRT engines, dense and ALGM (graphs already in ``folders``)."""
    from .runtime.tensorrt_backend import TensorRTBackend
    from .trt.builder import EngineRequest, build_engine

    tensorrt, gpu, library = environment
    backends: list[tuple[Backend, str]] = []
    for kind, model in models.items():
        print(f"building the {kind} TensorRT engine ...", flush=True)
        request = EngineRequest(folders[kind], FP16_PLAN, (1, max_batch, max_batch), library,
                                timing_cache=folders[kind].parent / "timing.cache")
        engine = build_engine(tensorrt, request, gpu)
        backends.append((TorchBackend(copy.deepcopy(model).cuda(), image_size, f"pytorch {kind} (cuda)", "cuda"),
                         "fp32"))
        backends.append((TensorRTBackend(engine, library, f"tensorrt {kind}"), "fp16"))
    return backends


def run_benchmark(model: Segmenter, folder: Path, image_size: tuple[int, int], batches: Sequence[int],
                  runs: int, warmup: int, photos: dict[str, np.ndarray], fp16: bool = False,
                  plugin_library: Path | None = None, int8: Int8Settings | None = None, frames: int = 4) -> dict:
    """Export dense and ALGM graphs into ``folder``, time every backend (returning ``labels``), every output
    choice, our PyTorch ALGM against the research code's way of running it, and ``predict`` on ``frames``
    1920x1080 video frames (0: not); return the ``speed`` record. With ``int8`` also the INT8 Q/DQ graphs of
    both in ONNX Runtime (calibrated per ``int8``). Where TensorRT and a GPU exist, FP16 engines and PyTorch
    on the GPU are timed too."""
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
    timings, flop_ratios = [], {}
    for batch in batches:
        images = make_batch([photos[names[i % len(names)]] for i in range(batch)], image_size,
                            model.config.normalization)
        on_cpu = [(backend, precision) for backend, precision in backends if not on_gpu(backend.name)]
        print(f"  timing {', '.join(f'{b.name} {p}' for b, p in on_cpu)} batch {batch}, interleaved ...", flush=True)
        for (backend, precision), (latency, counts) in zip(on_cpu, time_interleaved([b for b, _ in on_cpu], images,
                                                                                   warmup, runs)):
            timings.append(Timing(backend.name, precision, batch, latency, counts))
        for backend, precision in backends:
            if on_gpu(backend.name):
                print(f"  timing {backend.name} {precision} batch {batch} ...", flush=True)
                latency, copy_in, copy_out, counts = time_on_gpu(backend, images, warmup, runs)
                timings.append(Timing(backend.name, precision, batch, latency, counts, copy_in, copy_out))
        counts = next(t.token_counts for t in timings if t.batch == batch and t.backend == "onnxruntime ALGM")
        flop_ratios[batch] = (segmenter_flops(model.config, image_size, None, None)
                              / np.mean([segmenter_flops(model.config, image_size, algm, c) for c in counts]))
    share_images = make_batch([photos[names[0]]], image_size, model.config.normalization)
    profile_runs = max(3, runs // 4)
    fp32_nodes = profile_node_times(algm_graphs.portable, share_images, profile_runs, folder)
    share = merge_time_share(fp32_nodes)
    headroom = None
    quantized = set(dequantized_inputs(onnx.load(folders["ALGM"] / INT8_GRAPH))) if int8 else set()
    if quantized:  # the MatMuls mixed precision kept INT8 (none: nothing for INT8 to change)
        int8_nodes = profile_node_times(folders["ALGM"] / INT8_GRAPH, share_images, profile_runs, folder)
        headroom = int8_headroom(fp32_nodes, int8_nodes, quantized)
    print(f"  timing every output choice, one window of each of the {len(names)} photos ...", flush=True)
    algm_backends = [backend for backend, precision in backends if backend.name.endswith("ALGM") and precision == "fp32"]
    windows = [make_batch([photos[name]], image_size, model.config.normalization) for name in names]
    outputs = time_outputs(algm_backends, windows, warmup, runs)
    print("  timing our PyTorch ALGM and the research code's way of running it, batch 1, training size ...",
          flush=True)
    research_images = make_batch([photos[names[0]]], model.config.image_size, model.config.normalization)
    research = time_research_style(model, research_images, warmup, runs)  # the restatement: training size only
    predict = {"status": "skipped", "reason": "--frames 0"}
    if frames:
        print(f"  timing predict on {frames} 1920x1080 video frames, ONNX Runtime dense and ALGM ...", flush=True)
        onnxruntime = {kind: next(b for b, _ in backends if b.name == f"onnxruntime {kind}") for kind in ("dense", "ALGM")}
        predict = time_predict(onnxruntime, model, folder, photos, frames)
    return {**speed_record(timings, flop_ratios, share, runs, warmup, image_size, model, headroom, int8_counts),
            "tensorrt": tensorrt,
            "outputs": outputs, "research_style_pytorch": research, "predict_1080p": predict}


def on_gpu(backend_name: str) -> bool:
    """Whether a row runs on the GPU (its latency excludes the copies, reported apart)."""
    return backend_name.startswith("tensorrt") or backend_name.endswith("(cuda)")


def speed_record(timings: list[Timing], flop_ratios: dict[int, float], share: float, runs: int, warmup: int,
                 image_size: tuple[int, int], model: Segmenter, headroom: dict | None = None,
                 int8_counts: dict | None = None) -> dict:
    """The ``speed`` entry of report.json (``headroom``: :func:`algm_export.profiling.int8_headroom` of the
    ALGM graph at batch 1, with ``--int8``; ``int8_counts``: per model kind, how many MatMuls mixed precision
    kept INT8 of those its scope allowed)."""
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
        "merge_unmerge_time_share_onnxruntime": round(share, 4),
        **({"onnxruntime_int8_algm": int8} if int8 else {}),
        **({"onnxruntime_int8_headroom": headroom} if headroom else {}),
        **({"onnxruntime_int8_matmuls": int8_counts} if int8_counts else {}),
    }


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
        "free; batch 1, profiled)"]
    return [*matmuls, *limit, "ONNX Runtime INT8 ALGM latency / FP32 ALGM latency: "
            + ", ".join(f"batch {b}: {r['latency_vs_fp32_algm']:.2f}x" for b, r in int8.items()),
            "ONNX Runtime INT8 ALGM speedup over FP32 dense: "
            + ", ".join(f"batch {b}: {r['speedup_over_fp32_dense']:.2f}x (FLOP ratio {r['flop_ratio_dense_over_algm']:.2f}, "
                        f"x1.2 = {1.2 * r['flop_ratio_dense_over_algm']:.2f})" for b, r in int8.items())]


def outputs_table(rows: list[dict]) -> str:
    """Latency per output choice, and labels relative to logits."""
    table = format_table(["backend", "outputs", "batch", "latency ms", "vs logits"], [
        [r["backend"], r["outputs"], str(r["batch"]), f"{r['latency_ms']:.1f}",
         f"{r['latency_ms'] / next(o['latency_ms'] for o in rows if o['backend'] == r['backend'] and o['outputs'] == LOGITS):.2f}x"]
        for r in rows])
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


def bench_command(args: argparse.Namespace) -> int:
    """Run the benchmark, print the table, store it in report.json."""
    if args.runs < 1 or args.warmup < 0 or args.frames < 0:
        raise AlgmExportError("--runs must be >= 1, --warmup >= 0 and --frames >= 0")
    check_output_target(args.output, carries_everything=True)
    photos = verification_photos(args.images)
    model = load_model(args)
    size = export_size(model, args.image_size)
    int8 = Int8Settings(args.images, None, args.int8_scope, args.calib_method) if args.int8 else None
    if int8:
        int8.check()
    with replaced_folder(args.output, keep=None) as staging:
        speed = run_benchmark(model, staging / "bench", size, args.batches, args.runs, args.warmup, photos,
                              args.fp16, args.plugin_lib, int8, args.frames)
        print()
        print(speed_table(speed))
        report = load_report(staging)
        report["speed"] = speed
        save_report(staging, report)
    graphs = args.output / "bench"
    size_mb = sum(f.stat().st_size for f in graphs.rglob("*") if f.is_file()) / 1e6
    print(f"\nstored under 'speed' in {args.output / REPORT}; the graphs it timed are in {graphs}/ "
          f"(dense/, algm/: {size_mb:.0f} MB, delete them when done)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m algm_export.bench`` = ``algm-export bench``."""
    from .cli import main as cli_main

    return cli_main(["bench", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
