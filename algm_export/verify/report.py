"""report.json and the tables printed from it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..files import write_atomically

REPORT = "report.json"


def load_report(folder: Path) -> dict[str, Any]:
    """The report in ``folder``, or an empty one."""
    path = folder / REPORT
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except ValueError:
        return {}


def save_report(folder: Path, report: dict[str, Any]) -> Path:
    """Write ``report.json`` atomically."""
    return write_atomically(folder / REPORT, lambda p: p.write_text(json.dumps(report, indent=2) + "\n"))


def format_table(headers: list[str], rows: list[list[str]]) -> str:
    """A plain-text table with aligned columns."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows)]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def parity_table(parity: dict[str, dict]) -> str:
    """One row per backend: logits, labels, token counts, decision mismatches, verdict."""
    rows = []
    for name, entry in parity.items():
        if entry.get("skipped"):
            rows.append([name, "-", "-", "-", "-", "-", "skipped (the reason is above and in report.json)"])
            continue
        rows.append([
            name, entry["graph"], f"{entry['max_abs_logit']:.2e}", f"{entry['label_agreement']:.5f}",
            str(entry["token_count_difference"]), str(entry["decision_mismatches"]),
            "passed" if entry["passed"] else "FAILED: " + "; ".join(entry["failures"]),
        ])
    return format_table(["backend", "graph", "max|dlogit|", "labels", "dtokens", "decision diffs", "result"], rows)
