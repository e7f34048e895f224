"""``algm-export serve MODEL``: a Triton server on this machine (PyTriton's bundled tritonserver) with
  algm_window   windows [B, 3, H, W] float32 -> the graph's outputs, dynamic batching up to --max-batch
  algm_segment  one whole image per request -> labels [H, W] at its size; its windows run on algm_window
                through Triton (gRPC on 127.0.0.1), so windows of concurrent requests form batches there
  algm_info     the deployment metadata (JSON bytes) for clients: classes, normalization, windows
"""

from __future__ import annotations

import argparse
import os
import sys
import sysconfig
import threading
from typing import Sequence

import numpy as np

from ..artifacts import INPUT_NAME, TOKEN_COUNTS, TOKEN_MAPS
from ..errors import AlgmExportError
from ..runtime.base import Backend
from ..runtime.sliding import SlidingWindow
from .model_config import PREFERRED_BATCH_SIZES, QUEUE_DELAY_US
from .requests import request_photo
from .windows import RemoteWindows, token_count_array

WINDOW_MODEL, SEGMENT_MODEL, INFO_MODEL = "algm_window", "algm_segment", "algm_info"
START_ATTEMPTS = 3  # PyTriton's start-up race (handshake_race) costs a restart, at most this many
CALL_TIMEOUT_S = 120  # one window batch through the server; far above a batch's run time on 2 cores
DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(int32)": np.int32,
          "tensor(int64)": np.int64}


def _import_pytriton():
    try:
        import pytriton  # noqa: F401
        import tritonclient.grpc  # noqa: F401
    except ImportError as error:
        raise AlgmExportError(f"serve needs PyTriton and tritonclient ({error.name} is missing): "
                              "pip install 'algm-export[serve]' (numpy<2: use its own environment)") from error


def window_tensors(backend: Backend) -> list[tuple[str, type, tuple[int, ...]]]:
    """The window model's outputs: (name, dtype, dims without the batch) from the backend's graph."""
    height, width = backend.info.image_size
    session = getattr(backend, "session", None)
    if session is not None:
        return [(o.name, DTYPES[o.type], tuple(d if isinstance(d, int) else -1 for d in o.shape[1:]))
                for o in session.get_outputs()]
    prediction = backend.run(np.zeros((1, 3, height, width), np.float32))  # TensorRT: ask the engine
    found = {**prediction.outputs, TOKEN_COUNTS: prediction.token_counts, TOKEN_MAPS: prediction.token_maps}
    return [(name, value.dtype.type, value.shape[1:]) for name, value in found.items() if value is not None]


class WindowModel:
    """algm_window's inference callable: requests' windows run together, split back per request."""

    def __init__(self, backend: Backend):
        self.backend = backend

    def __call__(self, requests) -> list[dict[str, np.ndarray]]:
        images = [request[INPUT_NAME] for request in requests]
        wanted = {name for request in requests for name in (request.requested_output_names or ())}
        outputs = tuple(n for n in self.backend.info.outputs if n in wanted) or self.backend.info.outputs
        # One run for all; a window with NaN fails this execute as a whole (PyTriton answers it as one).
        prediction = self.backend.run(np.concatenate(images), outputs)  # checks type, shape and finiteness
        results = {**{n: prediction.outputs[n] for n in outputs if n in prediction.outputs},
                   TOKEN_COUNTS: prediction.token_counts, TOKEN_MAPS: prediction.token_maps}
        responses, start = [], 0
        for batch in images:
            stop = start + len(batch)
            responses.append({n: v[start:stop] for n, v in results.items() if v is not None})
            start = stop
        return responses


class SegmentModel:
    """algm_segment's inference callable (one instance): the sliding window over algm_window."""

    def __init__(self, backend: Backend, url: str, window_batch: int, max_pixels: int):
        self.url, self.max_pixels, self._client = url, max_pixels, None
        self.sliding = SlidingWindow(RemoteWindows(backend.info, self._infer, WINDOW_MODEL), batch=window_batch)

    def _infer(self, images: np.ndarray, names: Sequence[str]) -> dict[str, np.ndarray]:
        import tritonclient.grpc as grpc

        if self._client is None:
            self._client = grpc.InferenceServerClient(self.url)
        data = grpc.InferInput(INPUT_NAME, list(images.shape), "FP32")
        data.set_data_from_numpy(images)
        result = self._client.infer(WINDOW_MODEL, [data], outputs=[grpc.InferRequestedOutput(n) for n in names],
                                    client_timeout=CALL_TIMEOUT_S)
        return {name: result.as_numpy(name) for name in names}

    def __call__(self, requests) -> list[dict[str, np.ndarray]]:
        responses = []
        for request in requests:
            photo = request_photo(request.data.get("image"), request.data.get("encoded"), self.max_pixels)
            result = next(iter(self.sliding.run([photo])))
            responses.append({"labels": result.labels.astype(np.int32), "token_counts": token_count_array(result)})
        return responses

    def close(self) -> None:
        """Close the gRPC connection (the server waits for open connections when it stops)."""
        if self._client is not None:
            self._client.close()
            self._client = None


def triton_config(args: argparse.Namespace):
    """PyTriton's server settings: every endpoint on --host (127.0.0.1 by default, never 0.0.0.0 unasked)."""
    from pytriton.triton import TritonConfig

    return TritonConfig(http_address=args.host, grpc_address=args.host, metrics_address=args.host,
                        http_port=args.port, grpc_port=args.port + 1, metrics_port=args.port + 2,
                        exit_timeout_secs=5, log_verbose=1 if args.verbose else 0)


def _library_path() -> None:
    """The Python-backend stub embeds libpython: find this interpreter's (a pyenv/conda Python is not the
    system one; the system's fails with '_thread.RLock' object has no attribute '_recursion_count')."""
    libdir = sysconfig.get_config_var("LIBDIR")
    paths = os.environ.get("LD_LIBRARY_PATH", "").split(os.pathsep)
    if libdir and libdir not in paths:
        os.environ["LD_LIBRARY_PATH"] = os.pathsep.join([libdir, *filter(None, paths)])


def serve(backend: Backend, args: argparse.Namespace, ready: threading.Event | None = None) -> None:
    """Bind the three models and serve until SIGINT/SIGTERM (or until the server dies)."""
    from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
    from pytriton.triton import DEFAULT_PROTECTED_ENDPOINTS, Triton, TritonSecurityConfig

    height, width = backend.info.image_size
    batcher = DynamicBatcher(max_queue_delay_microseconds=QUEUE_DELAY_US,
                             preferred_batch_size=sorted({s for s in PREFERRED_BATCH_SIZES if s <= args.max_batch}
                                                         | {args.max_batch}))
    connect = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    segments = [SegmentModel(backend, f"{connect}:{args.port + 1}", args.max_batch, args.max_pixels)
                for _ in range(args.image_instances)]
    info = np.frombuffer(backend.info.to_json().encode(), dtype=np.uint8)
    _library_path()
    # Statistics (read-only: batch sizes formed, queue and compute times) open to clients; the endpoints that
    # change the server (model repository, shared memory, ...) stay behind PyTriton's generated access token.
    security = TritonSecurityConfig(restricted_endpoints=[e for e in DEFAULT_PROTECTED_ENDPOINTS if e != "statistics"])
    try:
        for attempt in range(1, START_ATTEMPTS + 1):
            with Triton(config=triton_config(args), security_config=security) as triton:
                triton.bind(WINDOW_MODEL, WindowModel(backend),
                            inputs=[Tensor(name=INPUT_NAME, dtype=np.float32, shape=(3, height, width))],
                            outputs=[Tensor(name=n, dtype=t, shape=s) for n, t, s in window_tensors(backend)],
                            config=ModelConfig(max_batch_size=args.max_batch, batcher=batcher))
                triton.bind(SEGMENT_MODEL, segments,
                            inputs=[Tensor(name="image", dtype=np.uint8, shape=(-1, -1, 3), optional=True),
                                    Tensor(name="encoded", dtype=np.uint8, shape=(-1,), optional=True)],
                            outputs=[Tensor(name="labels", dtype=np.int32, shape=(-1, -1)),
                                     Tensor(name=TOKEN_COUNTS, dtype=np.int64, shape=(-1, -1))],
                            config=ModelConfig(batching=False))
                triton.bind(INFO_MODEL, lambda requests: [{"deployment": info} for _ in requests],
                            inputs=[Tensor(name="query", dtype=np.uint8, shape=(-1,))],
                            outputs=[Tensor(name="deployment", dtype=np.uint8, shape=(-1,))],
                            config=ModelConfig(batching=False))
                try:
                    triton.run()
                except Exception as error:  # PyTriton raises tritonclient's exception types here
                    if attempt == START_ATTEMPTS or not handshake_race(error):
                        raise
                    print(f"note: PyTriton's model handshake raced (attempt {attempt} of {START_ATTEMPTS}); "
                          "starting the server again", file=sys.stderr, flush=True)
                    continue
                print(f"serving {backend.name} ({height}x{width} windows, batches up to {args.max_batch}) on "
                      f"{args.host}: HTTP {args.port}, gRPC {args.port + 1}, metrics {args.port + 2}; models "
                      f"{WINDOW_MODEL}, {SEGMENT_MODEL}, {INFO_MODEL}. Ctrl-C or SIGTERM stops it.", flush=True)
                if ready is not None:
                    ready.set()
                triton.serve()
                return
    finally:
        for segment in segments:
            segment.close()


def handshake_race(error: BaseException) -> bool:
    """Whether a failed model load is PyTriton's start-up race: a model's second instance connects to the first
    instance's handshake socket after the socket file appears (bind) but before it listens, and is refused.
    Nothing of ours is wrong then, and a fresh start succeeds."""
    text = str(error)
    return "get_config_from_handshake_server" in text and "ConnectionRefusedError" in text


def serve_command(args: argparse.Namespace) -> int:
    """Run ``algm-export serve``; returns the exit code."""
    _import_pytriton()
    for flag, value in (("--max-batch", args.max_batch), ("--image-instances", args.image_instances),
                        ("--max-pixels", args.max_pixels)):
        if value < 1:
            raise AlgmExportError(f"{flag} must be >= 1, got {value}")
    if not 0 < args.port <= 65533:
        raise AlgmExportError(f"--port must be in 1..65533 (gRPC and metrics take the next two), got {args.port}")
    from ..runtime.loading import open_backend
    from ..runtime.onnxruntime_backend import OnnxRuntimeBackend

    backend = (OnnxRuntimeBackend(args.model, threads=args.threads) if args.model.suffix == ".onnx"
               else open_backend(args.model))
    serve(backend, args)
    print("server stopped", file=sys.stderr)
    return 0
