"""``load_segmenter``: one entry point for research checkpoints and bundles."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ..config import ALGMConfig
from ..errors import AlgmExportError
from ..models.segmenter import Segmenter
from .bundle import is_bundle, read_bundle
from .files import check_finite, check_state_dict, first_line, read_torch_file
from .research import configs_from_variant, read_variant, variant_path

AUTO = "auto"


def load_segmenter(path: str | os.PathLike, algm: ALGMConfig | str | None = AUTO,
                   trust_checkpoint: bool = False) -> Segmenter:
    """Load a trained Segmenter in eval mode.

    ``path``: a research ``checkpoint.pth`` (any name) with ``variant.yml`` beside it, or a bundle written by
    :func:`save_bundle`. ``algm``: ``"auto"`` uses the ALGM settings stored with the checkpoint, ``None``
    gives the dense model, an :class:`ALGMConfig` overrides. Files that need unpickling code are refused
    unless ``trust_checkpoint``. Raises :class:`AlgmExportError` with a one-line reason.
    """
    if not isinstance(path, (str, os.PathLike)) or not str(path):
        raise AlgmExportError(f"load_segmenter: path must be a file name, got {type(path).__name__} {path!r:.40}")
    if not isinstance(trust_checkpoint, bool):
        raise AlgmExportError(f"load_segmenter: trust_checkpoint must be True or False, got {trust_checkpoint!r:.40}")
    path = Path(path)
    data = read_torch_file(path, trust_checkpoint)
    if is_bundle(data):
        config, stored_algm, state_dict = read_bundle(path, data)
    elif isinstance(data, dict) and "model" in data:
        state_dict = data["model"]
        if not isinstance(state_dict, dict):
            raise AlgmExportError(f"{path}: 'model' entry is not a state dict")
        config, stored_algm = configs_from_variant(variant_path(path), read_variant(variant_path(path)), state_dict)
    else:
        raise AlgmExportError(f"{path}: neither a research checkpoint (dict with 'model') nor an algm-export bundle")

    chosen = stored_algm if isinstance(algm, str) and algm == AUTO else algm
    if chosen is not None and not isinstance(chosen, ALGMConfig):
        raise AlgmExportError(f"algm must be 'auto', None or an ALGMConfig, got {chosen!r}")
    if chosen is not None:
        try:
            chosen.validate(config.n_layers, config.grid)
        except AlgmExportError as error:
            source = path if chosen is stored_algm else "ALGM override"
            raise AlgmExportError(f"{source}: {error}") from error
    try:
        with torch.device("meta"):  # shapes only: a variant.yml that asks for a huge model allocates nothing
            skeleton = Segmenter(config, chosen)
    except (RuntimeError, ValueError, OverflowError) as error:
        raise AlgmExportError(f"{path}: the model described cannot be built ({first_line(error)})") from error
    check_state_dict(path, state_dict, skeleton.state_dict())
    check_finite(path, state_dict)
    with torch.device("cpu"):
        model = Segmenter(config, chosen)
    model.load_state_dict(state_dict, strict=True)
    return model.eval()
