"""The ``algm-export`` command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

import torch

from .bench import bench_command, build_bench_parser
from .command import (
    PROG, add_model_arguments, add_output_argument, add_verify_arguments, export_size, load_model,
    parse_batch_range, run,
)
from .errors import AlgmExportError
from .export.onnx_export import PORTABLE_GRAPH
from .models.segmenter import Segmenter
from .photos import sample_photo
from .pipeline import (
    TENSORRT_BACKEND, Progress, TensorRTOptions, VerifyOptions, check_output_folder, print_outcome, run_pipeline,
    tensorrt_stage, verification_photos, verify,
)
from .preprocess import make_batch
from .runtime.onnxruntime_backend import OnnxRuntimeBackend
from .verify.report import load_report, save_report


DESCRIPTION = """\
Deploy an ALGM/Segmenter checkpoint: load it, export ONNX graphs with explicit merge/unmerge ops,
build TensorRT engines where TensorRT and a GPU exist, and verify parity against PyTorch.

MODEL is a research checkpoint (checkpoint.pth or any name, with variant.yml beside it) or an
algm-export bundle (a single .pt file written by algm_export.save_bundle).

Writes to the output folder: model.onnx (standard ops: ONNX Runtime anywhere), model.trt.onnx (one
algm node per merge/unmerge, for the TensorRT plugins), model.fp16.onnx (--fp16), report.json
(parity per backend), and polygraphy_* files + torch_outputs.json to re-check parity with polygraphy.

other commands (each has --help):
  algm-export verify MODEL -o DIR   re-verify the graphs in DIR against MODEL
  algm-export build MODEL -o DIR    build the FP16 TensorRT engine from DIR's graphs, verify it
  algm-export bench MODEL -o DIR    speed table: PyTorch vs ONNX Runtime (and TensorRT), dense vs ALGM
"""

EPILOG = """\
exit codes: 0 success; 1 a parity check failed or an internal error; 2 bad input (one-line reason).

example:
  algm-export samples/checkpoints/vit_tiny/checkpoint.pth --fp16 -o out/
"""


def build_parser() -> argparse.ArgumentParser:
    """The main pipeline's parser."""
    parser = argparse.ArgumentParser(prog=PROG, description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(parser)
    add_output_argument(parser)
    add_verify_arguments(parser)
    add_engine_arguments(parser)
    parser.add_argument("--fp16", action="store_true",
                        help="also write model.fp16.onnx (FP16 with merge maths, norms and softmax in FP32), "
                             "verify it, and build the FP16 TensorRT engine where TensorRT is available")
    parser.add_argument("--int8", action="store_true", help="INT8 engines (not available in this release)")
    parser.add_argument("--dry-run", action="store_true",
                        help="check the checkpoint and settings, print the summary, write nothing")
    return parser


def add_engine_arguments(parser: argparse.ArgumentParser) -> None:
    """TensorRT engine settings."""
    engine = parser.add_argument_group("TensorRT engine (built where TensorRT and a GPU exist)")
    engine.add_argument("--batch", type=parse_batch_range, default=(1, 8, 32), metavar="MIN,OPT,MAX",
                        help="batch sizes of the optimization profile (default 1,8,32)")
    engine.add_argument("--plugin-lib", type=Path, metavar="SO",
                        help="libalgm_plugins.so (default: $ALGM_PLUGIN_LIBRARY, then build/trt/)")
    engine.add_argument("--workspace", type=int, default=4096, metavar="MB",
                        help="builder workspace limit in MiB (default 4096)")
    engine.add_argument("--timing-cache", type=Path, metavar="FILE",
                        help="timing cache reused across builds (default: OUTPUT/timing.cache)")


def engine_options(args: argparse.Namespace) -> TensorRTOptions:
    """TensorRTOptions from the engine arguments."""
    if args.workspace < 1:
        raise AlgmExportError("--workspace must be at least 1 MiB")
    return TensorRTOptions(tuple(args.batch), args.plugin_lib, args.workspace, args.timing_cache, args.verbose)


def build_build_parser() -> argparse.ArgumentParser:
    """``algm-export build``."""
    parser = argparse.ArgumentParser(
        prog=f"{PROG} build", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Build the FP16 TensorRT engine (model.fp16.plan + sidecar) from the graphs already exported "
                    "to the output folder, then verify it against PyTorch. Without TensorRT or a GPU it says so "
                    "in one line, records the reason in report.json and exits 0.")
    add_model_arguments(parser)
    add_output_argument(parser)
    add_verify_arguments(parser)
    add_engine_arguments(parser)
    return parser


def build_verify_parser() -> argparse.ArgumentParser:
    """``algm-export verify``."""
    parser = argparse.ArgumentParser(
        prog=f"{PROG} verify", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Compare the graphs already exported to the output folder with PyTorch FP32 and rewrite "
                    "report.json and the polygraphy files. Exits 1 when a parity check fails.")
    add_model_arguments(parser)
    add_output_argument(parser)
    add_verify_arguments(parser)
    return parser


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


def print_summary(model: Segmenter, size: tuple[int, int], source: Path) -> None:
    """Model summary and the token counts on a sample photo."""
    print(f"{source}")
    print(describe(model, size))
    grid = (size[0] // model.config.patch_size) * (size[1] // model.config.patch_size)
    counts = sample_token_counts(model, size)
    print(f"  tokens         {1 + grid} -> " + (" -> ".join(map(str, counts)) if counts else "no merging")
          + " on the sample photo 'astronaut'")


def main_command(args: argparse.Namespace) -> int:
    """``algm-export MODEL``: summary, export, verification, report."""
    if args.int8:
        raise AlgmExportError("--int8 is not available in this release (FP32 and --fp16 are)")
    check_output_folder(args.output)
    model = load_model(args)
    size = export_size(model, args.image_size)
    print_summary(model, size, args.model)
    if args.dry_run:
        print(f"dry run: nothing written (would write to {args.output}/)")
        return 0
    options = VerifyOptions(args.images, args.verify_batch)
    return run_pipeline(model, args.output, size, args.fp16, options, engine_options(args), args.verbose)


def build_command(args: argparse.Namespace) -> int:
    """``algm-export build MODEL -o DIR``."""
    model, size = model_for_graphs(args)
    photos = verification_photos(args.images)
    progress = Progress(2)
    with progress.stage("build the FP16 TensorRT engine with the algm plugins"):
        outcome = tensorrt_stage(args.output, engine_options(args))
    if outcome.backend is None:
        report = load_report(args.output)
        report["tensorrt"] = {"status": "skipped", "reason": outcome.skipped}
        report.setdefault("parity", {})[TENSORRT_BACKEND] = {"skipped": outcome.skipped}
        save_report(args.output, report)
        return 0
    with progress.stage("verify the engine against PyTorch"):
        report = verify(model, args.output, size, VerifyOptions(args.images, args.verify_batch), photos, [], outcome)
    return print_outcome(args.output, report)


def model_for_graphs(args: argparse.Namespace) -> tuple[Segmenter, tuple[int, int]]:
    """MODEL and the image size of the graphs already exported to the output folder."""
    graph = args.output / PORTABLE_GRAPH
    if not graph.is_file():
        raise AlgmExportError(f"{graph}: missing; export first with `{PROG} {args.model} -o {args.output}`")
    model = load_model(args)
    size = OnnxRuntimeBackend(graph).info.image_size
    if args.image_size and tuple(args.image_size) != tuple(size):
        raise AlgmExportError(f"--image-size {args.image_size[0]}x{args.image_size[1]} differs from the "
                              f"exported graphs' {size[0]}x{size[1]}")
    return model, export_size(model, size)


def verify_command(args: argparse.Namespace) -> int:
    """``algm-export verify MODEL -o DIR``."""
    model, size = model_for_graphs(args)
    photos = verification_photos(args.images)
    report = verify(model, args.output, size, VerifyOptions(args.images, args.verify_batch), photos)
    return print_outcome(args.output, report)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``algm-export`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "verify":
        return run(verify_command, build_verify_parser().parse_args(argv[1:]))
    if argv and argv[0] == "build":
        return run(build_command, build_build_parser().parse_args(argv[1:]))
    if argv and argv[0] == "bench":
        return run(bench_command, build_bench_parser(prog=f"{PROG} bench").parse_args(argv[1:]))
    return run(main_command, build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
