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
from ..runtime.torch_backend import TorchBackend
from .cases import Case

CRITERIA = {
    "fp32": {"max_abs_logit": 1e-3, "label_agreement": 0.9999, "same_token_counts": True},
    "fp16": {"label_agreement": 0.995},
    # INT8 (Q/DQ graphs): labels vs PyTorch FP32; decision differences are reported, not judged.
    "int8": {"label_agreement": 0.99},
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
    for case, expected in zip(reference.cases, reference.predictions):
        got = backend.run(case.images)
        same_decisions = _same_maps(got.token_maps, expected.token_maps)
        target = expected if same_decisions else reference.torch.replay(case.images, got.token_maps)
        difference = np.abs(got.logits - target.logits)
        own_difference = float(np.abs(got.logits - expected.logits).max())
        equal_labels = int((got.labels() == expected.labels()).sum())
        worst, worst_own = max(worst, float(difference.max())), max(worst_own, own_difference)
        abs_sum += float(difference.sum(dtype=np.float64))
        count += difference.size
        agree += equal_labels
        pixels += expected.logits.shape[0] * expected.logits.shape[2] * expected.logits.shape[3]
        mismatches += not same_decisions
        cases.append({
            "images": list(case.names), "batch": len(case.names), "max_abs_logit": float(difference.max()),
            "label_agreement": equal_labels / (expected.logits.shape[0] * np.prod(expected.logits.shape[2:])),
            "token_counts": got.token_counts, "reference_token_counts": expected.token_counts,
            "same_merge_decisions": same_decisions, "max_abs_logit_own_decisions": own_difference,
        })
    entry = {
        "graph": graph,
        "precision": precision,
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
