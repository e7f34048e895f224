"""The graphs and expected outputs that travel to the GPU machine (tools/gpu_check/fixtures/), and how an
engine's outputs are judged against them. numpy and the standard library only (the GPU side may lack PyTorch).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

FIXTURES = Path(__file__).resolve().parent / "fixtures"
# Fixture key -> graph file: the FP16 plugin graph and its INT8 Q/DQ version (made by tools/make_gpu_fixtures.py).
GRAPHS = {"fp16": "model.fp16.onnx", "fp16_int8": "model.fp16.int8.onnx"}
FUNCTIONS = "functions.onnx"  # the algm nodes' standard-op bodies (model-local functions) of the FP16 graph


@dataclass(frozen=True)
class Gate:
    """What an engine's outputs must meet against the stored ONNX Runtime outputs of the same graph."""

    label_agreement: float  # per image: share of pixels with ONNX Runtime's label
    count_tolerance: float  # per image and merge: |T'_engine - T'_ort| <= tolerance * T'_ort


# Why these numbers. The engine runs the same graph as ONNX Runtime did, but TensorRT's FP16 kernels (tensor-core
# accumulation, fused attention/normalization) round differently from ONNX Runtime's CPU FP16 ops. Measured on
# these fixtures (tools/make_gpu_fixtures.py): ONNX Runtime's FP16 graph agrees with PyTorch FP32 on 0.9989 to
# 0.9995 of each image's pixels with identical token counts, its FP16 Q/DQ graph on 0.984 to 0.995. So one
# rounding change costs about 0.1 % of the labels in FP16 and about 1.5 % with INT8 GEMMs; the gates leave
# ten times (FP16: 0.99) and about three times (INT8: 0.95) that, while an engine computing the wrong rows
# scores like another photo's labels, 0.007 to 0.12 here. A merge decision within rounding of its threshold
# can flip, moving a token per flip: counts may differ by 3 % (2 tokens at the smallest count, 76), and
# exact equality is reported as a figure.
GATES = {"fp16": Gate(label_agreement=0.99, count_tolerance=0.03),
         "fp16_int8": Gate(label_agreement=0.95, count_tolerance=0.03)}


def normalize(photos: np.ndarray, mean, std) -> np.ndarray:
    """RGB uint8 ``[B, H, W, 3]`` -> normalized float32 ``[B, 3, H, W]`` ((pixel/255 - mean) / std), the same
    float32 operations as algm_export.preprocess.normalize, so both sides feed identical inputs."""
    pixels = photos.astype(np.float32) / np.float32(255.0)
    mean = np.asarray(mean, dtype=np.float32)
    std = np.asarray(std, dtype=np.float32)
    return np.ascontiguousarray(((pixels - mean) / std).transpose(0, 3, 1, 2))


def load_inputs(folder: Path = FIXTURES) -> tuple[np.ndarray, list[str]]:
    """The normalized batch ``[4, 3, H, W]`` float32 and the photo names."""
    with np.load(folder / "inputs.npz") as data:
        return normalize(data["photos"], data["mean"], data["std"]), [str(n) for n in data["names"]]


def load_expected(folder: Path = FIXTURES) -> dict[str, np.ndarray]:
    """``expected.npz`` as a dict (keys ``<graph>.labels``, ``.token_counts``, ``.token_maps``, ``.scores``,
    ``torch_fp32.labels``, ``torch_fp32.token_counts``)."""
    with np.load(folder / "expected.npz") as data:
        return {key: data[key] for key in data.files}


def judge(key: str, labels: np.ndarray, token_counts: np.ndarray, expected: dict[str, np.ndarray]) -> dict:
    """Compare an engine's ``labels [B, H, W]`` and ``token_counts [B, merges]`` with ONNX Runtime's outputs of
    the same graph (and PyTorch FP32's, reported only); ``passed`` and the figures, with the failures."""
    gate = GATES[key]
    reference_labels = expected[f"{key}.labels"].astype(np.int64)
    reference_counts = expected[f"{key}.token_counts"].astype(np.int64)
    labels, token_counts = labels.astype(np.int64), token_counts.astype(np.int64)
    failures = []
    if labels.shape != reference_labels.shape or token_counts.shape != reference_counts.shape:
        return {"passed": False, "failures": [f"shapes: labels {list(labels.shape)} vs {list(reference_labels.shape)},"
                                              f" token_counts {list(token_counts.shape)} vs "
                                              f"{list(reference_counts.shape)}"]}
    agreement = (labels == reference_labels).reshape(len(labels), -1).mean(axis=1)
    torch_agreement = (labels == expected["torch_fp32.labels"].astype(np.int64)).reshape(len(labels), -1).mean(axis=1)
    count_error = np.abs(token_counts - reference_counts) / np.maximum(reference_counts, 1)
    for image, share in enumerate(agreement):
        if share < gate.label_agreement:
            failures.append(f"image {image}: labels agree with ONNX Runtime on {share:.4f} < {gate.label_agreement}")
    for image, merge in zip(*np.nonzero(count_error > gate.count_tolerance)):
        failures.append(f"image {image} merge {merge}: {token_counts[image, merge]} tokens vs ONNX Runtime "
                        f"{reference_counts[image, merge]} (more than {gate.count_tolerance:.0%} apart)")
    return {
        "passed": not failures,
        "failures": failures,
        "label_agreement_vs_onnxruntime": [round(float(v), 5) for v in agreement],
        "label_agreement_vs_torch_fp32": [round(float(v), 5) for v in torch_agreement],
        "token_counts": token_counts.tolist(),
        "token_counts_onnxruntime": reference_counts.tolist(),
        "token_counts_equal": bool(np.array_equal(token_counts, reference_counts)),
        "gate": {"label_agreement": gate.label_agreement, "count_tolerance": gate.count_tolerance},
    }
