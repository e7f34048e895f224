"""algm-export's single-file bundle: weights, model config, ALGM config, normalization and class names."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from ..config import ALGMConfig, SegmenterConfig
from ..errors import AlgmExportError
from ..files import write_atomically

BUNDLE_FORMAT = "algm-export-bundle"
BUNDLE_VERSION = 1


def is_bundle(data: Any) -> bool:
    """True when a loaded file is one of our bundles."""
    return isinstance(data, dict) and data.get("format") == BUNDLE_FORMAT


def save_bundle(model, path: str | os.PathLike) -> Path:
    """Write ``model`` (a Segmenter) as one file readable with ``torch.load(weights_only=True)``.

    The file is written under a temporary name and renamed, so a failed save leaves nothing behind.
    """
    path = Path(path)
    data = {
        "format": BUNDLE_FORMAT,
        "version": BUNDLE_VERSION,
        "model_config": model.config.to_dict(),
        "algm": model.algm.to_dict() if model.algm is not None else None,
        "state_dict": {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
    }
    return write_atomically(path, lambda temporary: torch.save(data, temporary))


def read_bundle(path: Path, data: dict[str, Any]) -> tuple[SegmenterConfig, ALGMConfig | None, dict[str, Any]]:
    """Configs and state dict stored in a loaded bundle."""
    if data.get("version") != BUNDLE_VERSION:
        raise AlgmExportError(f"{path}: bundle version {data.get('version')!r} is not supported "
                              f"(this release reads version {BUNDLE_VERSION})")
    try:
        config = SegmenterConfig.from_dict(data["model_config"])
        algm = ALGMConfig.from_dict(data["algm"]) if data.get("algm") else None
        return config, algm, data["state_dict"]
    except (KeyError, TypeError, ValueError) as error:
        raise AlgmExportError(f"{path}: damaged bundle ({error!r})") from error
