"""What the ``algm-export`` subcommands do (export, verify, build); imported only when one runs."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from .arguments import PROG
from .command import export_size, load_model
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


def engine_options(args: argparse.Namespace) -> TensorRTOptions:
    """TensorRTOptions from the engine arguments."""
    if args.workspace < 1:
        raise AlgmExportError("--workspace must be at least 1 MiB")
    return TensorRTOptions(tuple(args.batch), args.plugin_lib, args.workspace, args.timing_cache, args.verbose)
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


def export_command(args: argparse.Namespace) -> int:
    """``algm-export [export] MODEL``: summary, export, verification, report."""
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
    return run_pipeline(model, args.output, size, args.fp16, options, engine_options(args), args.verbose, args.outputs)


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
