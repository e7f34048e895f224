"""Command-line plumbing shared by ``algm-export`` and its subcommands: argument types, the model
arguments, loading with overrides, and turning errors into one-line messages with exit code 2."""

from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path
from typing import Callable

from .checkpoints import load_segmenter
from .config import ALGMConfig
from .errors import AlgmExportError
from .models.segmenter import Segmenter

PROG = "algm-export"
DEFAULT_OUTPUT = "algm_export_out"


def parse_size(text: str) -> tuple[int, int]:
    """``512`` or ``512x640`` (height x width)."""
    parts = text.lower().replace(",", "x").split("x")
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected SIZE or HEIGHTxWIDTH, got {text!r}") from None
    if len(values) not in (1, 2) or min(values) <= 0:
        raise argparse.ArgumentTypeError(f"expected SIZE or HEIGHTxWIDTH with positive sizes, got {text!r}")
    return (values[0], values[-1])


def parse_ints(text: str) -> tuple[int, ...]:
    """A comma-separated list of positive integers (``1,5``)."""
    try:
        values = tuple(int(p) for p in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) <= 0:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def parse_batch_range(text: str) -> tuple[int, int, int]:
    """``N`` or ``MIN,OPT,MAX`` batch sizes for engine optimization profiles."""
    values = parse_ints(text)
    if len(values) == 1:
        values = values * 3
    if len(values) != 3 or not values[0] <= values[1] <= values[2]:
        raise argparse.ArgumentTypeError(f"expected N or MIN,OPT,MAX with MIN <= OPT <= MAX, got {text!r}")
    return values


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments every subcommand takes: the checkpoint and how to read it."""
    parser.add_argument("model", metavar="MODEL", type=Path, help="checkpoint.pth (+ variant.yml) or a bundle .pt")
    parser.add_argument("--trust-checkpoint", action="store_true",
                        help="allow checkpoints that need code to unpickle (only for files you trust)")
    algm = parser.add_argument_group("ALGM overrides (default: the settings stored with the checkpoint)")
    algm.add_argument("--dense", action="store_true", help="ignore ALGM: export/measure the dense model")
    algm.add_argument("--layers", type=parse_ints, metavar="L1,L2",
                      help="1-based encoder blocks that merge: CLAP in the first, GBM in the others (e.g. 1,5)")
    algm.add_argument("--window", type=parse_size, metavar="HxW", help="CLAP window, e.g. 2x2")
    algm.add_argument("--threshold", type=float, help="CLAP similarity threshold, in (0, 1.5]")
    parser.add_argument("--image-size", type=parse_size, metavar="HxW",
                        help="input size of the exported graphs (default: the training size)")
    parser.add_argument("-v", "--verbose", action="store_true", help="full tracebacks and detailed progress")


def add_output_argument(parser: argparse.ArgumentParser) -> None:
    """``-o/--output``."""
    parser.add_argument("-o", "--output", type=Path, default=Path(DEFAULT_OUTPUT), metavar="DIR",
                        help=f"output folder (default: ./{DEFAULT_OUTPUT}/; its parent must exist)")


def add_verify_arguments(parser: argparse.ArgumentParser) -> None:
    """Which images verification uses."""
    parser.add_argument("--images", type=Path, metavar="DIR",
                        help="verify on the images in DIR instead of the bundled sample photos")
    parser.add_argument("--verify-batch", type=int, default=4, metavar="N",
                        help="size of the mixed batch used for verification (default 4)")


def algm_choice(args: argparse.Namespace) -> dict | str | None:
    """What the flags ask for: "auto", None (dense) or a dict of ALGMConfig fields to override."""
    overrides = {k: v for k, v in (("layers", args.layers), ("window", args.window), ("threshold", args.threshold))
                 if v is not None}
    if args.dense:
        if overrides:
            raise AlgmExportError("--dense cannot be combined with --layers/--window/--threshold")
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
    if size[0] % patch or size[1] % patch:
        raise AlgmExportError(f"--image-size {size[0]}x{size[1]} is not a multiple of the patch size {patch}")
    if model.algm is not None:
        try:
            model.algm.validate(model.config.n_layers, (size[0] // patch, size[1] // patch))
        except AlgmExportError as error:
            raise AlgmExportError(f"--image-size {size[0]}x{size[1]}: {error}") from error
    return size


def run(handler: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Call ``handler``; turn AlgmExportError into a one-line message and exit code 2."""
    try:
        return handler(args)
    except AlgmExportError as error:
        if args.verbose:
            traceback.print_exc()
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001 - last resort: one line unless --verbose
        if args.verbose:
            traceback.print_exc()
        print(f"{PROG}: internal error: {type(error).__name__}: {error} (rerun with --verbose for details)",
              file=sys.stderr)
        return 1
