"""Accuracy-guided mixed precision: which of the candidate MatMuls stay INT8.

1. The graph with every candidate MatMul INT8 is judged on the calibration images against the FP32 graph (both in
   ONNX Runtime), with the INT8 verdict's tie rule but a stricter target (:data:`TARGET_AGREEMENT`,
   :data:`TARGET_EXACT`). If it holds, every candidate stays INT8 (2 ONNX Runtime sessions in all).
2. Else each candidate's sensitivity is measured alone: the mean |d score| on the first
   :data:`SENSITIVITY_IMAGES` calibration images when only that MatMul is INT8 (one session each).
3. The most sensitive are kept float, as few as the target allows: a bisection over how many (about log2(M)
   sessions), each candidate graph judged on all calibration images. At worst nothing stays INT8, and the
   report says so ("0 of M MatMuls INT8"): a FP32 graph is never called INT8 silently.

The graphs judged are the graph written (:func:`.recipe.keep_quantized` of one Q/DQ graph), so the search never
disagrees with what ships. Verification then runs on the verification images, which the search never saw.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx
import onnxruntime as ort
from tqdm import tqdm

from algm_export.artifacts import INPUT_NAME, LOGITS, SCORES
from algm_export.runtime.onnxruntime_backend import session_options
from algm_export.verify.parity import INT8_EXACT_FLOOR, INT8_LABEL_TIE, label_agreement

from .recipe import keep_quantized

# The search's target on the calibration images, stricter than the verification gate (0.99 of the pixels with
# ties within INT8_LABEL_TIE, all-pixel floor INT8_EXACT_FLOOR) so that what it accepts passes verification on
# unseen images with margin: at most 0.2 % errors (5x fewer than the gate allows) and an all-pixel agreement
# 0.1 above the floor.
TARGET_AGREEMENT = 0.998
TARGET_EXACT = INT8_EXACT_FLOOR + 0.1
# Sensitivity is a ranking, not a verdict: two images rank the MatMuls as four do (measured on the ViT-Tiny
# sample) at half the cost of the search's largest part (one ONNX Runtime session per candidate MatMul).
SENSITIVITY_IMAGES = 2
# The search judges on at most this many calibration images (the first ones; the ranges use all of them): its
# cost is sessions x images, and a deployment may calibrate on a few hundred.
SEARCH_IMAGES = 8


@dataclass
class Judgement:
    """How a graph's labels compare with the FP32 graph's on the calibration images (worst image)."""

    agreement: float  # ties within INT8_LABEL_TIE counting as agreeing
    exact: float  # all pixels

    @property
    def holds(self) -> bool:
        """Whether the search's target holds."""
        return self.agreement >= TARGET_AGREEMENT and self.exact >= TARGET_EXACT

    def to_dict(self) -> dict:
        """For report.json."""
        return {"label_agreement": self.agreement, "label_agreement_exact": self.exact}


@dataclass
class Choice:
    """The search's outcome: the INT8 MatMuls, the float ones with their sensitivity, and how it was found."""

    int8: list[str]
    candidates: list[str]
    sensitivity: dict[str, float] = field(default_factory=dict)
    judgement: Judgement | None = None
    sessions: int = 0
    images: int = 0
    output: str | None = None

    @property
    def floats(self) -> list[str]:
        """Candidates kept float, most sensitive first."""
        kept = set(self.int8)
        return sorted((n for n in self.candidates if n not in kept), key=lambda n: -self.sensitivity.get(n, 0.0))

    def summary(self) -> str:
        """``N of M MatMuls INT8``, and why the others are float."""
        line = f"{len(self.int8)} of {len(self.candidates)} MatMuls INT8"
        if self.floats:
            line += (f"; {len(self.floats)} kept float (most sensitive on the calibration images: "
                     f"mean |d {self.output}| {self.sensitivity[self.floats[-1]]:.2g} to "
                     f"{self.sensitivity[self.floats[0]]:.2g} each alone)")
        return line

    def to_dict(self) -> dict:
        """The ``mixed_precision`` entry of report.json → ``int8``."""
        return {
            "int8_matmuls": len(self.int8),
            "candidate_matmuls": len(self.candidates),
            "float_matmuls": [{"name": n, "sensitivity": self.sensitivity[n],
                               "reason": f"mean |d {self.output}| {self.sensitivity[n]:.3g} on the calibration "
                                         "images with only this MatMul INT8; among the most sensitive, kept float "
                                         "for the target"} for n in self.floats],
            "sensitivity": self.sensitivity,
            "sensitivity_metric": (f"mean |d {self.output}| vs the FP32 graph with only that MatMul INT8, on "
                                   f"{min(SENSITIVITY_IMAGES, self.images)} calibration image(s)"
                                   if self.sensitivity else "not measured: the target held with every candidate INT8"),
            "target": {"label_agreement": TARGET_AGREEMENT, "label_tie": INT8_LABEL_TIE,
                       "label_agreement_exact": TARGET_EXACT},
            "search_images": self.images,
            "calibration_result": self.judgement.to_dict() if self.judgement else None,
            "onnxruntime_sessions": self.sessions,
            "summary": self.summary(),
        }


class Evaluator:
    """Runs graphs on the calibration batch in ONNX Runtime and judges them against the FP32 graph."""

    def __init__(self, fp32: onnx.ModelProto, qdq: onnx.ModelProto, batch: np.ndarray, output: str):
        self.fp32, self.qdq, self.batch, self.output, self.sessions = fp32, qdq, batch, output, 0
        self.reference = self.run(fp32, batch)

    def run(self, model: onnx.ModelProto, batch: np.ndarray) -> np.ndarray:
        """``output`` of ``model`` for ``batch``, one image at a time (memory stays that of batch 1)."""
        self.sessions += 1
        session = ort.InferenceSession(model.SerializeToString(), session_options(),
                                       providers=["CPUExecutionProvider"])
        return np.concatenate([session.run([self.output], {INPUT_NAME: batch[i : i + 1]})[0]
                               for i in range(len(batch))])

    def judge(self, int8: set[str]) -> Judgement:
        """The graph with only ``int8`` quantized, on the whole batch, against the FP32 graph (worst image)."""
        got = self.run(keep_quantized(self.qdq, self.fp32, int8), self.batch)
        labels = got.argmax(axis=1)
        per_image = [(label_agreement(labels[i : i + 1], self.reference[i : i + 1], INT8_LABEL_TIE),
                      label_agreement(labels[i : i + 1], self.reference[i : i + 1])) for i in range(len(got))]
        return Judgement(min(a for a, _ in per_image), min(e for _, e in per_image))

    def sensitivity(self, name: str) -> float:
        """Mean |d output| on the first :data:`SENSITIVITY_IMAGES` images with only ``name`` INT8."""
        count = min(SENSITIVITY_IMAGES, len(self.batch))
        got = self.run(keep_quantized(self.qdq, self.fp32, {name}), self.batch[:count])
        return float(np.abs(got - self.reference[:count]).mean(dtype=np.float64))


def judged_output(model: onnx.ModelProto) -> str | None:
    """The float output the search judges labels on: ``scores`` (patch grid, cheaper), else ``logits``."""
    names = {output.name for output in model.graph.output}
    return next((name for name in (SCORES, LOGITS) if name in names), None)


def choose_int8(fp32: onnx.ModelProto, qdq: onnx.ModelProto, candidates: list[str], batch: np.ndarray) -> Choice:
    """Which of ``candidates`` (quantized in ``qdq``) stay INT8 so that the target holds on ``batch``
    (the calibration images, preprocessed ``[N, 3, H, W]``); see the module docstring."""
    output = judged_output(fp32)
    if output is None or not candidates:  # a labels-only graph: nothing to measure a margin on
        return Choice(list(candidates), list(candidates), images=len(batch))
    evaluator = Evaluator(fp32, qdq, batch, output)
    choice = Choice(list(candidates), list(candidates), images=len(batch), output=output)
    choice.judgement = evaluator.judge(set(candidates))
    if not choice.judgement.holds:
        for name in tqdm(candidates, desc="      INT8 sensitivity", unit="MatMul", leave=False):
            choice.sensitivity[name] = evaluator.sensitivity(name)
        order = sorted(candidates, key=lambda n: -choice.sensitivity[n])
        low, high = 1, len(order)  # how many of the most sensitive stay float; 0 failed above
        choice.int8, choice.judgement = [], Judgement(1.0, 1.0)  # all float: the FP32 graph itself
        while low <= high:
            middle = (low + high) // 2
            kept = set(order[middle:])
            judgement = evaluator.judge(kept)
            if judgement.holds:
                choice.int8, choice.judgement = [n for n in candidates if n in kept], judgement
                high = middle - 1
            else:
                low = middle + 1
    choice.sessions = evaluator.sessions
    return choice
