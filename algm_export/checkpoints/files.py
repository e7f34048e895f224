"""Reading checkpoint files safely, with one-line errors."""

from __future__ import annotations

import pickle
import pickletools
import re
import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch

from ..console import one_line
from ..errors import AlgmExportError

UNSAFE_GLOBAL = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")


def read_torch_file(path: Path, trust: bool = False) -> Any:
    """``torch.load`` on CPU, with ``weights_only=True`` unless ``trust``; raises AlgmExportError on failure."""
    if path.is_dir():
        raise AlgmExportError(f"{path}: is a folder; MODEL is a checkpoint file (e.g. {path}/checkpoint.pth)")
    if not path.is_file():
        raise AlgmExportError(f"{path}: no such file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns about pickle protocols; the outcome is reported below
            return torch.load(path, map_location="cpu", weights_only=not trust)
    except pickle.UnpicklingError as error:
        found = UNSAFE_GLOBAL.search(str(error))
        if found:
            raise AlgmExportError(
                f"{path}: the file needs code to unpickle ({found.group(1)}); pass --trust-checkpoint "
                "(trust_checkpoint=True) only if you trust its source"
            ) from error
        if "Weights only load failed" in str(error) and is_pickle(path):
            raise AlgmExportError(
                f"{path}: a plain pickle that the safe loader cannot read; pass --trust-checkpoint "
                "(trust_checkpoint=True) only if you trust its source"
            ) from error
        raise AlgmExportError(f"{path}: not a readable PyTorch checkpoint (damaged, or another format)") from error
    except Exception as error:  # torch raises RuntimeError, KeyError, EOFError... for damaged files
        if is_cut_zip(path):
            raise AlgmExportError(f"{path}: not a readable PyTorch checkpoint (a zip archive cut short: truncated "
                                  "by an interrupted copy or download?)") from error
        raise AlgmExportError(
            f"{path}: not a readable PyTorch checkpoint (truncated or another format: {first_line(error)})"
        ) from error


def is_cut_zip(path: Path) -> bool:
    """Whether ``path`` begins as a zip archive (a torch checkpoint) but lacks the directory at its end."""
    with path.open("rb") as handle:
        return handle.read(4) == b"PK\x03\x04" and not zipfile.is_zipfile(path)


def is_pickle(path: Path) -> bool:
    """Whether ``path`` (or the ``data.pkl`` of a torch zip file) is one complete pickle stream; scanned
    with pickletools, nothing is executed."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                members = [name for name in archive.namelist() if name.endswith("data.pkl")]
                data = archive.read(members[0]) if members else b""
        else:
            data = path.read_bytes()
        return bool(data) and any(op.name == "STOP" for op, _, _ in pickletools.genops(data))
    except Exception:  # noqa: BLE001 - any failure to scan means "not a pickle"
        return False


def first_line(error: BaseException) -> str:
    """The first line of an exception message, shortened, for one-line reports."""
    return one_line(str(error), 160) or type(error).__name__


def check_state_dict(path: Path, state_dict: dict[str, Any], expected: dict[str, torch.Tensor]) -> None:
    """Raise AlgmExportError unless ``state_dict`` has exactly the keys and shapes of ``expected``."""
    if not isinstance(state_dict, dict) or not all(isinstance(v, torch.Tensor) for v in state_dict.values()):
        raise AlgmExportError(f"{path}: the weights are not a state dict of tensors")
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    wrong = [
        f"{key} {list(state_dict[key].shape)} != {list(value.shape)}"
        for key, value in expected.items()
        if key in state_dict and tuple(state_dict[key].shape) != tuple(value.shape)
    ]
    problems = []
    for label, items in (("missing keys", missing), ("unexpected keys", unexpected), ("wrong shapes", wrong)):
        if items:
            shown = ", ".join(items[:3]) + (f", ... ({len(items)} in all)" if len(items) > 3 else "")
            problems.append(f"{label}: {shown}")
    if problems:
        raise AlgmExportError(f"{path}: weights do not match the model config; " + "; ".join(problems))


def check_finite(path: Path, state_dict: dict[str, torch.Tensor]) -> None:
    """Raise AlgmExportError naming the first tensor (and element) that holds NaN or Infinity."""
    for key, value in state_dict.items():
        if value.is_floating_point() or value.is_complex():
            bad = ~torch.isfinite(value)
            if bad.any():
                where = [int(i) for i in bad.nonzero()[0]]
                raise AlgmExportError(
                    f"{path}: {key}{where if where else ''} is {value[tuple(where)].item()} "
                    f"({int(bad.sum())} non-finite values in that tensor); the checkpoint cannot be exported"
                )
