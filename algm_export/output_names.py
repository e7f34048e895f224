"""Names of the deployment outputs (contract: docs/outputs.md); no heavy imports (the CLI parses them)."""

from __future__ import annotations

from typing import Iterable

from .errors import AlgmExportError

LABELS, SCORES, LOGITS = "labels", "scores", "logits"
OUTPUT_NAMES = (LABELS, SCORES, LOGITS)  # also the order of the graph outputs
DEFAULT_OUTPUTS = (LABELS, SCORES)


def parse_outputs(choice: str | Iterable[str]) -> tuple[str, ...]:
    """``"labels,scores"`` or a list of names -> the chosen names in contract order; AlgmExportError otherwise."""
    names = [n.strip() for n in (choice.split(",") if isinstance(choice, str) else choice) if n.strip()]
    unknown = [n for n in names if n not in OUTPUT_NAMES]
    if unknown or not names:
        raise AlgmExportError(f"--outputs: expected one or more of {', '.join(OUTPUT_NAMES)} (comma-separated), "
                              f"got {','.join(names) or 'nothing'}")
    return tuple(n for n in OUTPUT_NAMES if n in names)
