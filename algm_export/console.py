"""The program's name and version, and its one-line notes to the user (stderr, above any progress bar)."""

from __future__ import annotations

import sys

PROG = "algm-export"
VERSION = "0.1.0"  # also pyproject.toml's (tests/test_import_graph.py checks)


def note(command: str, text: str) -> None:
    """Write ``algm-export COMMAND: text`` on stderr without breaking a tqdm progress bar."""
    from tqdm import tqdm

    tqdm.write(f"{PROG} {command}: {text}", file=sys.stderr)


def one_line(text: str, width: int) -> str:
    """The first line of ``text``, cut to ``width`` characters (ending in "...") for one-line reports."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= width else line[:width - 3] + "..."
