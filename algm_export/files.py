"""Output folders and all-or-nothing file writes."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable

from .errors import AlgmExportError


def prepare_output_folder(folder: Path) -> Path:
    """Create ``folder`` (and parents) if needed and check that it is writable."""
    if folder.exists() and not folder.is_dir():
        raise AlgmExportError(f"{folder}: output path exists and is not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
            pass
    except OSError as error:
        raise AlgmExportError(f"{folder}: cannot write to the output folder ({error.strerror or error})") from error
    return folder


def write_atomically(path: Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(temporary_path)``, then rename the result to ``path``; nothing is left on failure."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    os.close(handle)
    temporary_path = Path(temporary)
    try:
        write(temporary_path)
        temporary_path.chmod(0o666 & ~_umask())
        temporary_path.replace(path)
    finally:
        temporary_path.unlink(missing_ok=True)
    return path


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current
