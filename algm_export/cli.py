"""The ``algm-export`` command line."""

from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path
from typing import Callable, Sequence

import torch

from .checkpoints import load_segmenter
from .config import ALGMConfig
from .errors import AlgmExportError
from .models.segmenter import Segmenter
from .photos import sample_photo
from .preprocess import make_batch

PROG = "algm-export"
DEFAULT_OUTPUT = "algm_export_out"

DESCRIPTION = """\
Deploy an ALGM/Segmenter checkpoint: load it, export ONNX graphs with explicit merge/unmerge ops,
build TensorRT engines where TensorRT and a GPU exist, and verify parity and speed against PyTorch.

MODEL is a research checkpoint (checkpoint.pth or any name, with variant.yml beside it) or an
algm-export bundle (a single .pt file written by algm_export.save_bundle).
"""

EPILOG = """\
exit codes: 0 success; 1 a parity check failed or an internal error; 2 bad input (one-line reason).

example:
  algm-export samples/checkpoints/vit_tiny/checkpoint.pth --fp16 -o out/
"""


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


def build_parser() -> argparse.ArgumentParser:
    """The main pipeline's parser."""
    parser = argparse.ArgumentParser(prog=PROG, description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(parser)
    parser.add_argument("-o", "--output", type=Path, default=Path(DEFAULT_OUTPUT), metavar="DIR",
                        help=f"output folder (default: ./{DEFAULT_OUTPUT}/)")
    parser.add_argument("--images", type=Path, metavar="DIR",
                        help="verify on these images instead of the bundled sample photos")
    parser.add_argument("--verify-batch", type=int, default=4, metavar="N",
                        help="size of the mixed batch used for verification (default 4)")
    parser.add_argument("--batch", type=parse_batch_range, default=(1, 8, 32), metavar="MIN,OPT,MAX",
                        help="batch sizes of the TensorRT optimization profile (default 1,8,32)")
    parser.add_argument("--fp16", action="store_true",
                        help="also write model.fp16.onnx (FP16 with merge maths, norms and softmax in FP32), "
                             "verify it, and build the FP16 TensorRT engine where TensorRT is available")
    parser.add_argument("--int8", action="store_true", help="INT8 engines (not available in this release)")
    return parser


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


def describe(model: Segmenter, size: tuple[int, int]) -> str:
    """A short human-readable summary of the model."""
    config = model.config
    names = config.names()
    shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
    algm = model.algm
    merging = (f"CLAP in block {algm.layers[0]} (window {algm.window[0]}x{algm.window[1]}, threshold "
               f"{algm.threshold:g})" + "".join(f", GBM in block {n}" for n in algm.layers[1:])
               if algm else "none (dense model)")
    params = sum(p.numel() for p in model.parameters())
    return "\n".join([
        f"  backbone       {config.backbone}: {config.n_layers} blocks, d_model {config.d_model}, "
        f"{config.n_heads} heads, patch {config.patch_size}{', distilled' if config.distilled else ''}",
        f"  decoder        {config.decoder}" + (f" ({config.decoder_layers} blocks)" if config.decoder_layers else ""),
        f"  classes        {config.n_cls}: {shown}",
        f"  image size     trained at {config.image_size[0]}x{config.image_size[1]}, export at {size[0]}x{size[1]}",
        f"  normalization  {config.normalization.name}: mean {list(config.normalization.mean)}, "
        f"std {list(config.normalization.std)}",
        f"  ALGM           {merging}",
        f"  parameters     {params / 1e6:.2f} M",
    ])


def sample_token_counts(model: Segmenter, size: tuple[int, int], photo: str = "astronaut") -> list[int]:
    """Token counts after each merge on one bundled sample photo."""
    images = torch.from_numpy(make_batch([sample_photo(photo)], size, model.config.normalization))
    with torch.no_grad():
        model(images)
    return model.token_counts


def run_pipeline(args: argparse.Namespace) -> int:
    """``algm-export MODEL``: summary and sample token counts."""
    if args.int8:
        raise AlgmExportError("--int8 is not available in this release (FP32 and --fp16 are)")
    model = load_model(args)
    size = export_size(model, args.image_size)
    print(f"{args.model}")
    print(describe(model, size))
    grid = (size[0] // model.config.patch_size) * (size[1] // model.config.patch_size)
    counts = sample_token_counts(model, size)
    print(f"  tokens         {1 + grid} -> " + (" -> ".join(map(str, counts)) if counts else "no merging")
          + " on the sample photo 'astronaut'")
    return 0


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


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``algm-export`` console script."""
    args = build_parser().parse_args(argv)
    return run(run_pipeline, args)


if __name__ == "__main__":
    sys.exit(main())
