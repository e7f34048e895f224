"""``algm-export predict --server URL INPUT... -o DIR``: segment through a running server (``algm-export
serve``, or Triton on a repository from ``algm-export triton``) and write the same files as local predict."""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Iterable, Iterator

import numpy as np

from ..deployment import DeploymentInfo
from ..errors import AlgmExportError
from ..runtime.sliding import Segmentation, WindowPlan

SEGMENT_MODEL, INFO_MODEL = "algm_segment", "algm_info"
IN_FLIGHT = 4  # requests a client keeps in flight: enough for the server to batch windows of several images
REQUEST_TIMEOUT_S = 300.0  # one whole image (a 4K frame is 16 windows of 512 on a 2-core server: ~10 s)


def grpc_address(url: str) -> str:
    """``grpc://host:port`` or ``host:port`` -> ``host:port``; AlgmExportError for other schemes."""
    scheme, _, rest = url.rpartition("://")
    if scheme not in ("", "grpc"):
        raise AlgmExportError(f"--server {url}: expected the server's gRPC address, e.g. grpc://127.0.0.1:8001")
    host, _, port = rest.rpartition(":")
    if not host or not port.isdigit():
        raise AlgmExportError(f"--server {url}: expected HOST:PORT (the server's gRPC port, e.g. 127.0.0.1:8001)")
    return rest


def server_message(error: Exception) -> str:
    """The meaningful line of a server's error (PyTriton sends a whole traceback)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    named = [line for line in lines if "AlgmExportError:" in line]
    if named:
        return named[-1].split("AlgmExportError:", 1)[1].strip()
    return lines[0] if lines else type(error).__name__


class ServerSegmenter:
    """Segments photos through ``algm_segment`` with up to ``in_flight`` requests at once, results in order."""

    def __init__(self, url: str, in_flight: int = IN_FLIGHT, timeout: float = REQUEST_TIMEOUT_S):
        import tritonclient.grpc  # noqa: F401 - the serve extra

        self.address, self.in_flight, self.timeout = grpc_address(url), in_flight, timeout
        self._local = threading.local()
        self._clients: list = []
        self._lock = threading.Lock()
        self.info = self._deployment()
        self.name = f"server {self.address}"

    def _client(self):
        import tritonclient.grpc as grpc

        if getattr(self._local, "client", None) is None:
            self._local.client = grpc.InferenceServerClient(self.address)
            with self._lock:
                self._clients.append(self._local.client)
        return self._local.client

    def _deployment(self) -> DeploymentInfo:
        """The model's deployment metadata: the repository config's parameters, else algm_info (serve)."""
        import tritonclient.grpc as grpc
        from tritonclient.utils import InferenceServerException

        client = self._client()
        try:
            if not client.is_model_ready(SEGMENT_MODEL, client_timeout=self.timeout):
                raise AlgmExportError(f"--server {self.address}: model {SEGMENT_MODEL} is not ready")
            config = client.get_model_config(SEGMENT_MODEL, as_json=True, client_timeout=self.timeout)["config"]
            text = config.get("parameters", {}).get("algm_export", {}).get("string_value")
            if text is None:
                query = grpc.InferInput("query", [1], "UINT8")
                query.set_data_from_numpy(np.zeros(1, np.uint8))
                text = client.infer(INFO_MODEL, [query], client_timeout=self.timeout).as_numpy("deployment") \
                    .tobytes().decode()
            return DeploymentInfo.from_dict(json.loads(text))
        except InferenceServerException as error:
            raise AlgmExportError(f"--server {self.address}: {server_message(error)}") from error

    def segment(self, photo: np.ndarray) -> Segmentation:
        """One photo (RGB uint8) through the server."""
        import tritonclient.grpc as grpc
        from tritonclient.utils import InferenceServerException

        image = grpc.InferInput("image", list(photo.shape), "UINT8")
        image.set_data_from_numpy(np.ascontiguousarray(photo))
        try:
            result = self._client().infer(SEGMENT_MODEL, [image], client_timeout=self.timeout)
        except InferenceServerException as error:
            raise AlgmExportError(f"--server {self.address}: {server_message(error)}") from error
        counts = result.as_numpy("token_counts")
        plan = WindowPlan.of(photo.shape[:2], self.info.windows, self.info.image_size)
        return Segmentation(result.as_numpy("labels"), plan, None, counts.tolist() if counts.size else None)

    def run(self, photos: Iterable[np.ndarray]) -> Iterator[Segmentation]:
        """Segmentations of ``photos`` in order (photos read lazily, ``in_flight`` requests at a time)."""
        with ThreadPoolExecutor(self.in_flight) as pool:
            pending: deque = deque()
            for photo in photos:
                pending.append(pool.submit(self.segment, photo))
                while len(pending) >= self.in_flight:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()

    def close(self) -> None:
        """Close every connection."""
        for client in self._clients:
            client.close()
        self._clients.clear()


def predict_with_server(args: argparse.Namespace) -> int:
    """``algm-export predict --server URL INPUT... -o DIR``: the files local predict writes (label PNGs,
    --overlay pictures), computed by the server."""
    from tqdm import tqdm

    from ..files import prepare_output_folder
    from ..predict import Predictor, collect_sources, expected_images, mark_written

    unsupported = [flag for flag, value in (("--im-size", args.im_size), ("--window-stride", args.window_stride),
                                            ("--show-merges", args.show_merges)) if value]
    if unsupported:
        raise AlgmExportError(f"--server: {', '.join(unsupported)} cannot be used with a server (the server's "
                              "model settings apply and it returns no merge maps)")
    if args.every < 1:
        raise AlgmExportError(f"--every must be >= 1, got {args.every}")
    grpc_address(args.server)
    sources = collect_sources([args.model, *args.inputs])  # with --server there is no MODEL: all are inputs
    try:
        import tritonclient.grpc  # noqa: F401
    except ImportError as error:
        raise AlgmExportError("--server needs tritonclient: pip install 'algm-export[serve]'") from error
    segmenter = ServerSegmenter(args.server)
    try:
        folder = prepare_output_folder(args.output)
        predictor = Predictor(segmenter, folder, segmenter, args.every, args.overlay, False)
        start = time.perf_counter()
        try:
            with tqdm(total=expected_images(sources, args.every), unit="img", desc="segmenting", file=sys.stderr,
                      dynamic_ncols=True) as progress:
                predictor.run(sources, progress)
        finally:
            if predictor.written:
                mark_written(folder, predictor)
        elapsed = time.perf_counter() - start
    finally:
        segmenter.close()
    if predictor.images == 0:
        raise AlgmExportError("no readable images among the inputs")
    skipped = f"; skipped {len(predictor.skipped)} unreadable" if predictor.skipped else ""
    print(f"segmented {predictor.images} images in {elapsed:.1f} s ({predictor.images / elapsed:.2f} images/s) "
          f"through {segmenter.address}; wrote {folder}/{skipped}")
    return 0
