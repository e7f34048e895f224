"""The INT8 scopes (light: the command line imports this before any heavy module)."""

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
