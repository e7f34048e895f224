"""CPU timing: medians of repeated runs, backends taking turns, every output choice, and our PyTorch ALGM
against the research code's way of running it."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch

from ..artifacts import LABELS, LOGITS, SCORES
from ..models.segmenter import Segmenter
from ..reference.research_algm import reference_forward
from ..runtime.base import Backend

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


def time_interleaved(backends: list[Backend], batches: Sequence[np.ndarray], warmup: int, runs: int,
                     outputs: tuple[str, ...] = (LABELS,)) -> list[tuple[float, list[list[int]] | None]]:
    """Per backend: the median time (ms) of one pass over ``batches`` (each run through the backend returning
    ``outputs``) over ``runs`` passes after ``warmup`` passes, and the per-image token counts ``[images][merges]``
    of all the batches in turn. The backends take turns pass after pass (interleaved), so that a change in
    machine load affects them alike."""
    def one_pass(backend: Backend) -> list:
        return [backend.run(images, outputs) for images in batches]

    for backend in backends:
        for _ in range(warmup):
            one_pass(backend)
    samples: list[list[float]] = [[] for _ in backends]
    predictions: list = [None] * len(backends)
    for _ in range(runs):
        for index, backend in enumerate(backends):
            latency, predictions[index] = median_ms(lambda: one_pass(backend), 0, 1)
            samples[index].append(latency)
    return [(statistics.median(times), _counts(passed)) for times, passed in zip(samples, predictions)]


def _counts(predictions: list) -> list[list[int]] | None:
    """The token counts ``[images][merges]`` of a pass's predictions, batch after batch (None: a dense model)."""
    if predictions[0].token_counts is None:
        return None
    return [counts for prediction in predictions for counts in prediction.token_counts.tolist()]


def time_research_style(model: Segmenter, images: np.ndarray, warmup: int, runs: int) -> dict:
    """Our PyTorch ALGM and the research code's way of running it (:mod:`algm_export.reference`), both
    returning full-resolution logits, timed side by side."""
    batch = torch.from_numpy(images)
    with torch.no_grad():
        ours, _ = median_ms(lambda: model(batch), warmup, runs)
        research, _ = median_ms(lambda: reference_forward(model, batch, model.algm), warmup, runs)
    return {"ours_ms": round(ours, 2), "research_style_ms": round(research, 2),
            "speedup_over_research_style": round(research / ours, 3)}


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
