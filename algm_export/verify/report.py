"""report.json and the tables printed from it."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from ..artifacts import REPORT
from ..console import one_line
from ..files import write_atomically


def load_report(folder: Path) -> dict[str, Any]:
    """The report in ``folder``, or an empty one."""
    path = folder / REPORT
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except ValueError:
        return {}


def strict_json(value: Any) -> Any:
    """``value`` with every NaN/Infinity float replaced by None (null), so the file is strict JSON; the
    parity entries say in words which values were not finite."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: strict_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(item) for item in value]
    return value


def save_report(folder: Path, report: dict[str, Any]) -> Path:
    """Write ``report.json`` atomically, as strict JSON (no bare NaN/Infinity)."""
    text = json.dumps(strict_json(report), indent=2, allow_nan=False) + "\n"
    return write_atomically(folder / REPORT, lambda p: p.write_text(text))


def format_table(headers: list[str], rows: list[list[str]]) -> str:
    """A plain-text table with aligned columns."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows)]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def parity_table(parity: dict[str, dict]) -> str:
    """One row per backend: logits, labels (the worst case's agreement the backend is judged on: against PyTorch
    replaying its decisions, or for INT8 against plain PyTorch), token counts, decision mismatches, verdict."""
    rows = []
    for name, entry in parity.items():
        if entry.get("skipped"):
            rows.append([name, "-", "-", "-", "-", "-", "-", f"skipped: {one_line(str(entry['skipped']), 70)}"])
            continue
        rows.append([
            name, entry["graph"], _number(_float_difference(entry), ".2e"),
            _number(entry[_judged_labels(entry)], ".5f"),
            str(entry["token_count_difference"]), str(entry.get("decisions_differing", "-")),
            _number(entry.get("required_epsilon"), ".1e"),
            _verdict(entry),
        ])
    return format_table(["backend", "graph", "max|dlogit|", "labels", "dtokens", "decision diffs", "needs eps",
                         "result"], rows)


def _float_difference(entry: dict) -> float | None:
    """The largest logit difference, or None ("-") for a graph without float outputs (labels only)."""
    has_floats = any(name in entry.get("outputs", ()) for name in ("scores", "logits"))
    return entry["max_abs_logit"] if has_floats else None


def _verdict(entry: dict) -> str:
    """passed / FAILED with the first reasons; says when criterion 4 was reported but not judged."""
    if not entry["passed"]:
        return "FAILED: " + _shortened(entry["failures"])
    return "passed" if entry.get("batch_independence_judged", True) else "passed (batch rule min: 4 reported only)"


def _judged_labels(entry: dict) -> str:
    """The label-agreement key a parity entry is judged on."""
    own = "label_agreement_own_decisions"
    return own if own in entry.get("criteria", {}) and "label_agreement" not in entry["criteria"] else "label_agreement"


def _number(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _shortened(failures: list[str], shown: int = 2) -> str:
    text = "; ".join(failures[:shown])
    return text + (f"; ... ({len(failures)} in all, see report.json)" if len(failures) > shown else "")
