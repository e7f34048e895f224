"""The program's name and version, and its one-line notes to the user (stderr, above any progress bar)."""

from __future__ import annotations

import sys

PROG = "algm-export"
VERSION = "0.1.0"  # also pyproject.toml's (tests/test_import_graph.py checks)


def note(command: str, text: str) -> None:
    """Write ``algm-export COMMAND: text`` on stderr without breaking a tqdm progress bar."""
    from tqdm import tqdm

    tqdm.write(f"{PROG} {command}: {text}", file=sys.stderr)
