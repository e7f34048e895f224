"""The INT8 choices of the command line: scopes and calibration methods (light: the command line imports this
before any heavy module)."""

from __future__ import annotations

from algm_export.errors import AlgmExportError

AFTER_MERGE, ALL_LINEAR = "after-merge", "all-linear"
SCOPES = (AFTER_MERGE, ALL_LINEAR)
# Default: quantize only what no merge decision depends on, so INT8 keeps the FP32 model's token maps.
DEFAULT_SCOPE = AFTER_MERGE


def check_scope(scope: str) -> str:
    """``scope`` when it is one of :data:`SCOPES`; else a one-line AlgmExportError."""
    if scope not in SCOPES:
        raise AlgmExportError(f"--int8-scope must be one of {', '.join(SCOPES)}, got {scope!r}")
    return scope


# --calib-method: ONNX Runtime's calibration methods (onnxruntime.quantization.CalibrationMethod). minmax: the
# largest value seen (default, what the INT8 verdict's numbers were measured with); percentile: the 99.999th
# percentile of |x| (clips rare outliers); entropy: the range minimizing the KL divergence of the histograms.
CALIBRATION_METHODS = ("minmax", "percentile", "entropy")
DEFAULT_METHOD = "minmax"


def check_method(method: str) -> str:
    """``method`` when it is one of :data:`CALIBRATION_METHODS`; else a one-line AlgmExportError."""
    if method not in CALIBRATION_METHODS:
        raise AlgmExportError(f"--calib-method must be one of {', '.join(CALIBRATION_METHODS)}, got {method!r}")
    return method


# --smooth-alpha: SmoothQuant's migration strength (calibration/smoothing.py); 0 (the default) turns smoothing off.
# Off by default because it did not help here (docs/int8.md, 2026-12-02): on the random-head ViT-S/16 alpha 0.5 left
# 36 of 41 MatMuls INT8 instead of 38; on the ViT-Tiny sample it changed |dlogit| by a few %. 0.5 is SmoothQuant's
# usual strength (activation and weight ranges meet half-way).
DEFAULT_ALPHA = 0.0
SMOOTHQUANT_ALPHA = 0.5
