"""Parity of a backend with PyTorch FP32 on verification cases.

Merge decisions are discrete: where two windows' similarities are within float rounding of each other
(uniform image regions), two correct backends can order them differently, and the outputs then differ
by more than rounding. So logits are compared with PyTorch run under the backend's own merge decisions
(replayed from its ``token_maps`` output: :meth:`TorchBackend.replay`), which isolates arithmetic errors;
label agreement and token counts are compared with plain PyTorch, which is what a user sees. Cases where
the decisions differ are counted in ``decision_mismatches``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..runtime.base import Backend, Prediction
from ..runtime.outputs import LOGITS, SCORES
from ..runtime.torch_backend import TorchBackend
from .cases import Case

CRITERIA = {
    "fp32": {"max_abs_logit": 1e-3, "label_agreement": 0.9999, "same_token_counts": True},
    "fp16": {"label_agreement": 0.995},
}


@dataclass
class Reference:
    """PyTorch FP32 results of the verification cases."""

    torch: TorchBackend
    cases: list[Case]
    predictions: list[Prediction]

    @classmethod
    def run(cls, torch_backend: TorchBackend, cases: list[Case]) -> "Reference":
        """Run PyTorch on every case."""
        return cls(torch_backend, cases, [torch_backend.run(case.images) for case in cases])


def _same_maps(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    return (a is None and b is None) or (a is not None and b is not None and np.array_equal(a, b))


def compare(reference: Reference, backend: Backend, precision: str, graph: str) -> dict:
    """The ``parity`` entry of the report for ``backend``."""
    cases, worst, worst_own, abs_sum, count, agree, pixels, mismatches = [], 0.0, 0.0, 0.0, 0, 0, 0, 0
    floats = [name for name in (SCORES, LOGITS) if name in backend.info.outputs]  # what was exported
    size = backend.info.image_size
    for case, expected in zip(reference.cases, reference.predictions):
        got = backend.run(case.images)
        same_decisions = _same_maps(got.token_maps, expected.token_maps)
        target = expected if same_decisions else reference.torch.replay(case.images, got.token_maps)
        differences = [np.abs(got.outputs[name] - target.outputs[name]) for name in floats]
        case_worst = max((float(d.max()) for d in differences), default=0.0)
        own_difference = max((float(np.abs(got.outputs[name] - expected.outputs[name]).max()) for name in floats),
                             default=0.0)
        labels = expected.labels(size)
        equal_labels = int((got.labels(size) == labels).sum())
        worst, worst_own = max(worst, case_worst), max(worst_own, own_difference)
        abs_sum += sum(float(d.sum(dtype=np.float64)) for d in differences)
        count += sum(d.size for d in differences)
        agree += equal_labels
        pixels += labels.size
        mismatches += not same_decisions
        cases.append({
            "images": list(case.names), "batch": len(case.names), "max_abs_logit": case_worst,
            "label_agreement": equal_labels / labels.size,
            "token_counts": got.token_counts, "reference_token_counts": expected.token_counts,
            "same_merge_decisions": same_decisions, "max_abs_logit_own_decisions": own_difference,
        })
    entry = {
        "graph": graph,
        "precision": precision,
        "outputs": list(backend.info.outputs),
        "max_abs_logit": worst,
        "mean_abs_logit": abs_sum / max(count, 1),
        "label_agreement": agree / max(pixels, 1),
        "token_counts": [c["token_counts"] for c in cases],
        "reference_token_counts": [c["reference_token_counts"] for c in cases],
        "token_count_difference": max((_count_difference(c) for c in cases), default=0),
        "decision_mismatches": mismatches,
        "max_abs_logit_own_decisions": worst_own,
        "cases": cases,
        "criteria": CRITERIA[precision],
    }
    entry["failures"] = failures(entry)
    entry["passed"] = not entry["failures"]
    return entry


def _count_difference(case: dict) -> int:
    got, expected = case["token_counts"] or [], case["reference_token_counts"] or []
    if len(got) != len(expected):
        return max(len(got), len(expected)) * 10**6
    return max((abs(a - b) for a, b in zip(got, expected)), default=0)


def failures(entry: dict) -> list[str]:
    """Which criteria an entry misses, as sentences."""
    criteria, missed = entry["criteria"], []
    if "max_abs_logit" in criteria and entry["max_abs_logit"] > criteria["max_abs_logit"]:
        missed.append(f"max |logit difference| {entry['max_abs_logit']:.3g} > {criteria['max_abs_logit']:g}")
    if entry["label_agreement"] < criteria["label_agreement"]:
        missed.append(f"label agreement {entry['label_agreement']:.5f} < {criteria['label_agreement']}")
    if criteria.get("same_token_counts") and entry["token_count_difference"]:
        missed.append(f"token counts differ from PyTorch's by up to {entry['token_count_difference']}")
    return missed
