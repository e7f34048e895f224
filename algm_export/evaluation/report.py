"""What ``algm-export eval`` writes: the table, eval.json, the per-class CSV and confusion-matrix pictures."""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ..files import write_atomically
from .metrics import ConfusionMatrix, Scores

CONFUSION_SIDE = 600  # the confusion picture is scaled up (nearest) to at least this many pixels a side


@dataclass
class BackendResult:
    """One backend's run over the dataset."""

    name: str
    source: str  # the file it ran
    confusion: ConfusionMatrix
    images: int = 0
    seconds: float = 0.0
    windows: int = 0
    tokens: list[int] = field(default_factory=list)  # per window: tokens after the last merge
    dense_tokens: int = 0  # tokens of a window without merging (class token included)

    @property
    def scores(self) -> Scores:
        return self.confusion.scores()

    @property
    def images_per_second(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else float("nan")

    @property
    def mean_tokens(self) -> float:
        """Mean tokens per window after the last merge (all patches + class token when it does not merge)."""
        return float(np.mean(self.tokens)) if self.tokens else float(self.dense_tokens)


def _number(value: float, digits: int = 2) -> float | None:
    return None if value is None or not math.isfinite(value) else round(float(value), digits)


def _percent(value: float) -> str:
    return "nan" if not math.isfinite(value) else f"{100 * value:.2f}"


def delta(result: BackendResult, reference: BackendResult | None) -> float:
    """mIoU of ``result`` minus the reference's, in points (NaN without a reference)."""
    if reference is None:
        return float("nan")
    return 100 * (result.scores.mean_iou - reference.scores.mean_iou)


def table(results: list[BackendResult], reference: BackendResult | None) -> str:
    """The printed table: one row per backend."""
    header = f"{'backend':<28} {'mIoU':>7} {'ΔmIoU':>7} {'mAcc':>7} {'aAcc':>7} {'images/s':>9} {'tokens':>7}"
    lines = [header, "-" * len(header)]
    for result in results:
        scores = result.scores
        change = delta(result, reference)
        shown = "nan" if not math.isfinite(change) else f"{round(change, 2) + 0.0:+.2f}"  # never "-0.00"
        shown = "" if result is reference else shown
        lines.append(f"{result.name:<28} {_percent(scores.mean_iou):>7} {shown:>7} {_percent(scores.mean_accuracy):>7} "
                     f"{_percent(scores.all_accuracy):>7} {result.images_per_second:>9.2f} {result.mean_tokens:>7.1f}")
    return "\n".join(lines)


def summary(results: list[BackendResult], reference: BackendResult | None, class_names: tuple[str, ...],
            settings: dict) -> dict:
    """eval.json: the protocol settings and, per backend, the metrics (in %), speed and tokens."""
    backends = {}
    for result in results:
        scores = result.scores
        backends[result.name] = {
            "file": result.source, "mIoU": _number(100 * scores.mean_iou), "mAcc": _number(100 * scores.mean_accuracy),
            "aAcc": _number(100 * scores.all_accuracy),
            "delta_mIoU": None if result is reference else _number(delta(result, reference), 3),
            "images": result.images, "windows": result.windows, "seconds": _number(result.seconds, 3),
            "images_per_s": _number(result.images_per_second, 3), "mean_tokens": _number(result.mean_tokens, 1),
            "per_class": {name: {"IoU": _number(100 * iou), "Acc": _number(100 * acc)}
                          for name, iou, acc in zip(class_names, scores.iou, scores.accuracy)},
        }
    return {**settings, "reference_backend": reference.name if reference else None, "backends": backends}


def write_outputs(folder: Path, results: list[BackendResult], reference: BackendResult | None,
                  class_names: tuple[str, ...], settings: dict) -> list[Path]:
    """eval.json, per_class.csv and confusion_<backend>.png in ``folder``, each written atomically."""
    report = summary(results, reference, class_names, settings)
    written = [write_atomically(folder / "eval.json",
                                lambda path: path.write_text(json.dumps(report, indent=2, allow_nan=False) + "\n"))]
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["class", *(f"{r.name} {what}" for r in results for what in ("IoU", "Acc"))])
    per_backend = [r.scores for r in results]
    for index, name in enumerate(class_names):
        row = [name]
        for scores in per_backend:
            row += [_percent(scores.iou[index]), _percent(scores.accuracy[index])]
        writer.writerow(row)
    written.append(write_atomically(folder / "per_class.csv", lambda path: path.write_text(text.getvalue())))
    for result in results:
        picture = confusion_picture(result.confusion)
        written.append(write_atomically(folder / f"confusion_{result.name}.png",
                                        lambda path: Image.fromarray(picture).save(path, format="PNG")))
    return written


def confusion_picture(confusion: ConfusionMatrix) -> np.ndarray:
    """The confusion matrix as an RGB picture: row = ground-truth class, column = predicted class, each row
    normalized by its class's pixels (white 0 -> dark blue 1), scaled up to about :data:`CONFUSION_SIDE`."""
    counts = confusion.counts[: confusion.n_cls].astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.nan_to_num(counts / counts.sum(axis=1, keepdims=True))
    white, dark = np.array([255.0, 255.0, 255.0]), np.array([8.0, 48.0, 107.0])
    picture = (white + share[..., None] * (dark - white)).round().astype(np.uint8)
    scale = max(1, -(-CONFUSION_SIDE // confusion.n_cls))
    return np.ascontiguousarray(picture.repeat(scale, axis=0).repeat(scale, axis=1))
