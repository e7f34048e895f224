"""MODEL as the command line gives it, shared by the subcommands: loaded with the ALGM overrides of the
arguments, and the image size to export at."""

from __future__ import annotations

import argparse

from ..config import ALGMConfig, check_patch_count
from ..errors import AlgmExportError
from ..models.segmenter import Segmenter
from .loader import load_segmenter


def algm_choice(args: argparse.Namespace) -> dict | str | None:
    """What the flags ask for: "auto", None (dense) or a dict of ALGMConfig fields to override."""
    overrides = {k: v for k, v in (("layers", args.layers), ("window", args.window), ("threshold", args.threshold),
                                   ("batch_rule", args.batch_rule)) if v is not None}
    if args.dense:
        if overrides:
            raise AlgmExportError("--dense cannot be combined with --layers/--window/--threshold/--batch-rule")
        return None
    return overrides or "auto"


def load_model(args: argparse.Namespace) -> Segmenter:
    """Load MODEL with the ALGM overrides of ``args`` applied."""
    choice = algm_choice(args)
    if isinstance(choice, dict):
        model = load_segmenter(args.model, algm="auto", trust_checkpoint=args.trust_checkpoint)
        base = model.algm or ALGMConfig()
        override = ALGMConfig(**{**base.to_dict(), **choice})
        try:
            model.set_algm(override)
        except AlgmExportError as error:
            raise AlgmExportError(f"ALGM override: {error}") from error
        return model
    return load_segmenter(args.model, algm=choice, trust_checkpoint=args.trust_checkpoint)


def export_size(model: Segmenter, requested: tuple[int, int] | None) -> tuple[int, int]:
    """The image size to export and verify at, checked against the patch size and the ALGM window."""
    size = tuple(requested or model.config.image_size)
    patch = model.config.patch_size
    check_patch_count(size, patch, "--image-size")
    if size[0] % patch or size[1] % patch:
        raise AlgmExportError(f"--image-size {size[0]}x{size[1]} is not a multiple of the patch size {patch}")
    if model.algm is not None:
        try:
            model.algm.validate(model.config.n_layers, (size[0] // patch, size[1] // patch))
        except AlgmExportError as error:
            raise AlgmExportError(f"--image-size {size[0]}x{size[1]}: {error}") from error
    return size
