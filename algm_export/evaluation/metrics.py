"""mmseg 0.x ``mean_iou`` as the research code uses it, accumulated over a dataset.

Per image, pixels whose ground truth is the ignore index are dropped; the rest are counted in a confusion
matrix (ground truth x prediction) summed over the dataset. From it: intersection (diagonal), union (label area
+ prediction area - intersection), IoU = I / U and Acc = I / label area per class, aAcc = sum I / sum label
area. Classes with union 0 are NaN and left out of mIoU and mAcc (``nanmean``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

IGNORE_INDEX = 255


@dataclass(frozen=True)
class Scores:
    """The metric of one backend over a dataset."""

    iou: np.ndarray  # [n_cls] float64, NaN where the class is absent from both prediction and ground truth
    accuracy: np.ndarray  # [n_cls] float64, NaN where the class is absent from the ground truth
    all_accuracy: float  # aAcc: correctly labelled pixels / labelled pixels (NaN without any)

    @property
    def mean_iou(self) -> float:
        """mIoU over the classes whose IoU is defined (NaN when none is)."""
        return _nanmean(self.iou)

    @property
    def mean_accuracy(self) -> float:
        """mAcc over the classes whose accuracy is defined."""
        return _nanmean(self.accuracy)


def _nanmean(values: np.ndarray) -> float:
    return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")


class ConfusionMatrix:
    """Counts of (ground truth, prediction) pixel pairs over a dataset, ``[n_cls + 1, n_cls]`` int64.

    The extra last row holds pixels whose ground truth is neither a class nor the ignore index: mmseg counts
    them in the prediction area (so in the union of the predicted class) but in no class's label area.
    """

    def __init__(self, n_cls: int, ignore_index: int = IGNORE_INDEX):
        if n_cls < 1:
            raise ValueError(f"n_cls must be positive, got {n_cls}")
        self.n_cls, self.ignore_index = n_cls, ignore_index
        self.counts = np.zeros((n_cls + 1, n_cls), dtype=np.int64)

    def add(self, prediction: np.ndarray, label: np.ndarray) -> None:
        """Count one image: ``prediction`` (class indices in [0, n_cls)) and ``label`` of the same shape."""
        if prediction.shape != label.shape:
            raise ValueError(f"prediction {prediction.shape} and label {label.shape} differ in shape")
        keep = label != self.ignore_index
        truth = label[keep].astype(np.int64)
        predicted = prediction[keep].astype(np.int64)
        if predicted.size and (predicted.min() < 0 or predicted.max() >= self.n_cls):
            raise ValueError(f"predicted classes must lie in [0, {self.n_cls})")
        truth = np.where((truth < 0) | (truth >= self.n_cls), self.n_cls, truth)
        self.counts += np.bincount(truth * self.n_cls + predicted,
                                   minlength=(self.n_cls + 1) * self.n_cls).reshape(self.n_cls + 1, self.n_cls)

    def scores(self) -> Scores:
        """IoU and accuracy per class, and aAcc, of everything counted so far."""
        classes = self.counts[: self.n_cls]
        intersection = np.diag(classes).astype(np.float64)
        label_area = classes.sum(axis=1).astype(np.float64)
        prediction_area = self.counts.sum(axis=0).astype(np.float64)
        union = label_area + prediction_area - intersection
        with np.errstate(divide="ignore", invalid="ignore"):
            iou = np.where(union > 0, intersection / union, np.nan)
            accuracy = np.where(label_area > 0, intersection / label_area, np.nan)
        total = label_area.sum()
        return Scores(iou, accuracy, float(intersection.sum() / total) if total else float("nan"))
