"""What the ``algm-export`` subcommands do (export, verify, build); imported only when one runs."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from ..artifacts import PORTABLE_GRAPH
from ..backends import BACKENDS, ENGINES, FP16_ENGINE, BackendKind
from ..calibration.int8 import Int8Settings
from ..calibration.scopes import DEFAULT_ALPHA, DEFAULT_METHOD, DEFAULT_SCOPE
from ..checkpoints.command_line import export_size, load_model
from ..console import PROG
from ..errors import AlgmExportError
from ..files import check_output_target, replaced_folder
from ..models.segmenter import Segmenter
from ..photos import sample_photo
from ..pipeline import (
    Progress,
    TensorRTOptions,
    VerifyOptions,
    build_engines,
    print_outcome,
    record_engine,
    run_pipeline,
    verification_photos,
    verify,
)
from ..preprocess import make_batch
from ..verify.graph_settings import check_graphs
from ..verify.report import load_report, save_report


def engine_options(args: argparse.Namespace) -> TensorRTOptions:
    """TensorRTOptions from the engine arguments."""
    if args.workspace < 1:
        raise AlgmExportError("--workspace must be at least 1 MiB")
    return TensorRTOptions(tuple(args.batch), args.plugin_lib, args.workspace, args.timing_cache, args.verbose)


def int8_settings(args: argparse.Namespace) -> Int8Settings | None:
    """Int8Settings from the arguments (None without --int8); calibration flags need --int8."""
    if not args.int8:
        if (args.calib_images is not None or args.calib_count is not None or args.int8_scope != DEFAULT_SCOPE
                or args.calib_method != DEFAULT_METHOD or args.smooth_alpha != DEFAULT_ALPHA):
            raise AlgmExportError("--calib-images, --calib-count, --calib-method, --smooth-alpha and --int8-scope "
                                  "need --int8")
        return None
    settings = Int8Settings(args.calib_images, args.calib_count, args.int8_scope, args.calib_method, args.smooth_alpha)
    settings.check()
    return settings


def describe(model: Segmenter, size: tuple[int, int]) -> str:
    """A short human-readable summary of the model."""
    config = model.config
    names = config.names()
    shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
    algm = model.algm
    merging = (f"CLAP in block {algm.layers[0]} (window {algm.window[0]}x{algm.window[1]}, threshold "
               f"{algm.threshold:g})" + "".join(f", GBM in block {n}" for n in algm.layers[1:])
               + f"; batch rule {algm.batch_rule}"
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
    """Token counts after each merge on one bundled sample photo (empty without ALGM)."""
    images = torch.from_numpy(make_batch([sample_photo(photo)], size, model.config.normalization))
    with torch.no_grad():
        model(images)
    return model.token_counts[0].tolist() if model.token_counts is not None else []


def print_summary(model: Segmenter, size: tuple[int, int], source: Path) -> None:
    """Model summary and the token counts on a sample photo."""
    print(f"{source}")
    print(describe(model, size))
    grid = (size[0] // model.config.patch_size) * (size[1] // model.config.patch_size)
    counts = sample_token_counts(model, size)
    print(f"  tokens         {1 + grid} -> " + (" -> ".join(map(str, counts)) if counts else "no merging")
          + " on the sample photo 'astronaut'")


def export_command(args: argparse.Namespace) -> int:
    """``algm-export [export] MODEL``: summary, export, verification, report. ``--dry-run`` runs every
    check a real run makes (flags, images, output folder, model) and writes nothing."""
    check_output_target(args.output)
    int8 = int8_settings(args)
    if int8 and args.dry_run:
        int8.calibration_images()
    options = VerifyOptions(args.images, args.verify_batch)
    options.check()
    engine = engine_options(args)
    model = load_model(args)
    size = export_size(model, args.image_size)
    photos = verification_photos(args.images)
    print_summary(model, size, args.model)
    if args.dry_run:
        print(f"dry run: nothing written (would write to {args.output}/)")
        return 0
    return run_pipeline(model, args.output, size, args.fp16, options, engine, args.verbose, photos, int8,
                        args.outputs)


def build_command(args: argparse.Namespace) -> int:
    """``algm-export build MODEL -o DIR``: the engines of ``--engines`` (default: every one whose graph is in
    DIR), each built or skipped with its reason, recorded in report.json as the export pipeline does; the
    built ones verified against PyTorch. Exit 1 when a build or a parity check failed."""
    engine = engine_options(args)
    check_engine_inputs(engine)
    check_output_target(args.output, carries_everything=True)
    kinds = engines_to_build(args.output, args.engines)
    model, size = model_for_graphs(args)
    options = VerifyOptions(args.images, args.verify_batch)
    options.check()
    photos = verification_photos(args.images)
    progress = Progress(len(kinds) + 1)
    with replaced_folder(args.output, keep=None) as staging:
        outcomes = build_engines(staging, engine, kinds, progress)
        if all(outcome.backend is None for outcome in outcomes):
            report = load_report(staging)
            for outcome in outcomes:
                record_engine(report, outcome.kind, *outcome.entries())
            save_report(staging, report)
            return 1 if any(outcome.failed for outcome in outcomes) else 0
        with progress.stage("verify the built engines against PyTorch"):
            report = verify(model, staging, size, options, photos, [], outcomes, shown=args.output)
    return print_outcome(args.output, report)


def engines_to_build(folder: Path, names: tuple[str, ...] | None) -> list[BackendKind]:
    """The engines named by ``--engines`` (AlgmExportError when one's graph is not in ``folder``), or by
    default every engine whose graph is there (at least the FP16 one)."""
    if names is None:
        present = [kind for kind in ENGINES.values() if (folder / kind.graph).is_file()]
        names = tuple(kind.cli_name for kind in present) or (FP16_ENGINE.cli_name,)
    kinds = [ENGINES[name] for name in names]
    for kind in kinds:
        graph = folder / kind.graph
        if not graph.is_file():
            raise AlgmExportError(f"{graph}: missing; export it first with `{PROG} MODEL {kind.export_flags} -o "
                                  f"{folder}` (the {kind.precision} engine is built from it)")
    return kinds


def check_engine_inputs(engine: TensorRTOptions) -> None:
    """What ``build`` needs besides the graphs, checked even where TensorRT is absent: the plugin library,
    a usable timing cache path."""
    if engine.plugin_library is not None and not engine.plugin_library.is_file():
        raise AlgmExportError(f"--plugin-lib {engine.plugin_library}: no such file")
    cache = engine.timing_cache
    if cache is not None and (cache.is_dir() or not cache.absolute().parent.is_dir()):
        raise AlgmExportError(f"--timing-cache {cache}: " + ("is a folder" if cache.is_dir() else
                                                             f"the folder {cache.absolute().parent} does not exist"))


def model_for_graphs(args: argparse.Namespace) -> tuple[Segmenter, tuple[int, int]]:
    """MODEL (with the flags) and the image size of the graphs already exported to the output folder,
    refused when the graphs were exported with other settings."""
    graph = args.output / PORTABLE_GRAPH
    if not graph.is_file():
        raise AlgmExportError(f"{graph}: missing; export first with `{PROG} {args.model} -o {args.output}`")
    check_output_target(args.output, carries_everything=True)
    model = load_model(args)
    graphs = list(dict.fromkeys(kind.graph for kind in BACKENDS))  # every graph a backend runs or builds from
    size = check_graphs(args.output, graphs, model, args.image_size)
    return model, export_size(model, size)


def verify_command(args: argparse.Namespace) -> int:
    """``algm-export verify MODEL -o DIR``."""
    if args.ort_ops is not None and not args.ort_ops.is_file():
        raise AlgmExportError(f"--ort-ops {args.ort_ops}: no such file")
    model, size = model_for_graphs(args)
    options = VerifyOptions(args.images, args.verify_batch, args.ort_ops)
    options.check()
    photos = verification_photos(args.images)
    with replaced_folder(args.output, keep=None) as staging:
        report = verify(model, staging, size, options, photos, shown=args.output)
    return print_outcome(args.output, report)
