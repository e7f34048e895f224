"""The Ray actor of ``predict --ray``: holds one backend, reads its inputs (images, or videos decoded frame by
frame), runs the sliding window, writes the same files as local predict and returns one manifest row per
image or frame (JSON text, so that rows of any shape travel as one string column)."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import time
from collections import deque
from typing import Iterator

import numpy as np

from .errors import AlgmExportError
from .photos import read_image
from .predict import frame_stem, output_names, write_outputs
from .runtime.sliding import Segmentation
from .storage import OutputFolder, input_stem, is_video, local_copy
from .video import read_frames

TOP_CLASSES = 10  # classes listed per manifest row (largest areas first)


@dataclasses.dataclass(frozen=True)
class JobSettings:
    """What every actor needs to know (sent once, when the actor starts)."""

    model: str  # path every node can read, or a URI
    output: str  # folder path or URI
    threads: int  # ONNX Runtime / PyTorch threads of the actor
    batch: int = 4  # windows per model run
    every: int = 1
    im_size: int | None = None
    window_stride: int | None = None
    overlay: bool = False
    merges: bool = False
    resume: bool = False
    trust_checkpoint: bool = False


class SegmentActor:
    """Callable class for ``Dataset.map_batches``: the model is loaded once, in ``__init__``."""

    def __init__(self, job: JobSettings):
        import torch

        from .runtime.loading import open_backend
        from .runtime.sliding import SlidingWindow

        torch.set_num_threads(job.threads)
        self.job = job
        self.output = OutputFolder(job.output)
        with local_copy(job.model) as model:
            self.backend = open_backend(model, job.trust_checkpoint, threads=job.threads)
        overrides = {k: v for k, v in (("im_size", job.im_size), ("window_stride", job.window_stride))
                     if v is not None}
        windows = dataclasses.replace(self.backend.info.windows, **overrides)
        self.sliding = SlidingWindow(self.backend, windows, job.batch)
        self.merges = job.merges and self.backend.info.algm is not None
        self.where = f"{socket.gethostname()}:{os.getpid()}"

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """``{"input": [path or URI, ...]}`` -> ``{"row": [manifest row as JSON, ...]}``. As in local predict,
        the windows of consecutive images and frames share model runs."""
        rows: list[dict] = []
        pending: deque[tuple[str, int | None, str, np.ndarray]] = deque()
        start = time.perf_counter()
        photos = self._photos([str(name) for name in batch["input"]], pending, rows)
        for result in self.sliding.run(photos):
            name, frame, stem, photo = pending.popleft()
            with self.output.writing() as folder:
                write_outputs(folder, stem, photo, result, self.backend.info, self.job.overlay, self.merges)
            now = time.perf_counter()
            rows.append(self._row(name, frame, stem, result, now - start))
            start = now
        return {"row": np.array([json.dumps(row) for row in rows], dtype=object)}

    def _done(self, stem: str) -> bool:
        return self.job.resume and all(self.output.exists(name) for name in
                                       output_names(stem, self.job.overlay, self.merges))

    def _photos(self, names: list[str], pending: deque, rows: list[dict]) -> Iterator[np.ndarray]:
        """The photos to segment, in order, with their names queued in ``pending``; rows for the inputs that
        are skipped (unreadable, or complete already with --resume) go straight to ``rows``."""
        for name in names:
            stem = input_stem(name)
            if not is_video(name):
                if self._done(stem):
                    rows.append(self._row(name, None, stem))
                    continue
                try:
                    with local_copy(name) as path:
                        photo = read_image(path)
                except AlgmExportError as error:
                    rows.append(self._skipped(name, str(error)))
                    continue
                pending.append((name, None, stem, photo))
                yield photo
                continue
            delivered = 0
            try:
                with local_copy(name) as path:
                    for index, frame in read_frames(path, self.job.every):
                        delivered += 1
                        if self._done(frame_stem(stem, index)):
                            rows.append(self._row(name, index, frame_stem(stem, index)))
                            continue
                        pending.append((name, index, frame_stem(stem, index), frame))
                        yield frame
            except AlgmExportError as error:  # unreadable, or decoding failed part way: keep what was read
                kept = f" (kept the {delivered} frames read before)" if delivered else ""
                rows.append(self._skipped(name, f"{error}{kept}"))

    def _skipped(self, name: str, reason: str) -> dict:
        return {"input": name, "frame": None, "output": None, "skipped": reason, "worker": self.where}

    def _row(self, name: str, frame: int | None, stem: str, result: Segmentation | None = None,
             seconds: float = 0.0) -> dict:
        """A manifest row (fields: :data:`algm_export.distributed.MANIFEST_FIELDS`); without ``result``, the row
        of an output that was complete already (--resume)."""
        row = {"input": name, "frame": frame, "output": self.output.location(f"{stem}.png"), "skipped": None,
               "worker": self.where}
        if result is None:
            return {**row, "resumed": True}
        labels = result.labels
        counts = np.bincount(labels.ravel(), minlength=len(self.backend.info.class_names))
        top = np.argsort(-counts, kind="stable")[:TOP_CLASSES]
        return {**row, "size": list(labels.shape), "windows": len(result.plan.anchors),
                "tokens": result.token_counts,
                "classes": {self.backend.info.class_names[i]: round(float(counts[i]) / labels.size, 6)
                            for i in top if counts[i]},
                "seconds": round(seconds, 4)}
