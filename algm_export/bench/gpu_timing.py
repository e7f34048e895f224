"""GPU rows: PyTorch on the GPU and FP16 TensorRT engines, timed with CUDA events, copies timed apart."""

from __future__ import annotations

import copy
import statistics
from pathlib import Path

import numpy as np
import torch

from ..artifacts import FP16_PLAN, LOGITS, TOKEN_COUNTS
from ..models.segmenter import Segmenter
from ..runtime.base import Backend
from ..runtime.torch_backend import TorchBackend
from ..trt.availability import Unavailable, tensorrt_environment

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
    from ..runtime.tensorrt_backend import TensorRTBackend

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
    from ..runtime.tensorrt_backend import TensorRTBackend
    from ..trt.builder import EngineRequest, build_engine

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


def on_gpu(backend_name: str) -> bool:
    """Whether a row runs on the GPU (its latency excludes the copies, reported apart)."""
    return backend_name.startswith("tensorrt") or backend_name.endswith("(cuda)")
