"""The stages of ``algm-export MODEL``: export, verify, TensorRT (where available), report."""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import AlgmExportError
from .export.onnx_export import FP16_GRAPH, PLUGIN_GRAPH, PORTABLE_GRAPH, export_graphs
from .files import prepare_output_folder
from .models.segmenter import Segmenter
from .photos import read_image_folder, sample_photos
from .runtime.onnxruntime_backend import OnnxRuntimeBackend
from .runtime.outputs import DEFAULT_OUTPUTS
from .runtime.torch_backend import TorchBackend
from .verify.cases import make_cases
from .verify.parity import Reference, compare
from .runtime.base import Backend
from .trt.availability import AUTOREGISTER_LIBRARY_NAME, PLUGIN_LIBRARY_NAME, Unavailable, tensorrt_environment
from .verify.polygraphy_files import as_shell, onnxrt_command, tensorrt_command, write_polygraphy_files
from .verify.report import load_report, parity_table, save_report

ENGINE_NAME = "model.fp16.plan"
TENSORRT_BACKEND = "tensorrt_fp16"

# Backends verified on this machine: report key -> (graph file, precision).
ONNXRUNTIME_BACKENDS = {
    "onnxruntime_fp32": (PORTABLE_GRAPH, "fp32"),
    "onnxruntime_fp32_trt_graph": (PLUGIN_GRAPH, "fp32"),
    "onnxruntime_fp16": (FP16_GRAPH, "fp16"),
}


class Progress:
    """Numbered stage lines with elapsed times."""

    def __init__(self, total: int):
        self.total, self.done = total, 0

    @contextmanager
    def stage(self, title: str):
        """Print ``[k/n] title ...`` then the time it took."""
        self.done += 1
        print(f"[{self.done}/{self.total}] {title} ...", flush=True)
        start = time.perf_counter()
        yield
        print(f"      done in {time.perf_counter() - start:.1f} s", flush=True)


@dataclass
class VerifyOptions:
    """Inputs of the verification stage."""

    images: Path | None
    mixed_batch: int

    def check(self) -> None:
        """AlgmExportError for settings that cannot work."""
        if self.mixed_batch < 1:
            raise AlgmExportError(f"--verify-batch must be >= 1, got {self.mixed_batch}")


@dataclass
class TensorRTOptions:
    """Inputs of the engine build."""

    batch: tuple[int, int, int]
    plugin_library: Path | None = None
    workspace_mb: int = 4096
    timing_cache: Path | None = None
    verbose: bool = False


@dataclass
class TensorRTOutcome:
    """The engine stage's result: a backend to verify, or why the stage was skipped."""

    backend: Backend | None = None
    skipped: str | None = None
    details: dict | None = None


def tensorrt_stage(folder: Path, options: TensorRTOptions) -> TensorRTOutcome:
    """Build the FP16 engine when TensorRT, a GPU and the plugin library are present; else say why not."""
    try:
        tensorrt, gpu, library = tensorrt_environment(options.plugin_library)
    except Unavailable as reason:
        print(f"      skipped: {reason}")
        return TensorRTOutcome(skipped=str(reason))
    from .runtime.tensorrt_backend import TensorRTBackend
    from .trt.builder import EngineRequest, build_engine

    request = EngineRequest(folder, ENGINE_NAME, options.batch, library, options.workspace_mb,
                            options.timing_cache or folder / "timing.cache", options.verbose)
    engine = build_engine(tensorrt, request, gpu)
    print(f"      {engine.name} built for {gpu} with TensorRT {tensorrt.__version__}")
    details = {"engine": str(engine), "gpu": gpu, "tensorrt_version": tensorrt.__version__,
               "plugin_library": str(library)}
    return TensorRTOutcome(TensorRTBackend(engine, library, TENSORRT_BACKEND), details=details)


def verification_photos(images: Path | None) -> dict[str, np.ndarray]:
    """The user's images, or the bundled sample photos."""
    return read_image_folder(images) if images is not None else sample_photos()


def check_output_folder(folder: Path) -> None:
    """Refuse an output folder whose parent does not exist (a typo, most likely)."""
    parent = folder.resolve().parent
    if not parent.is_dir():
        raise AlgmExportError(f"{folder}: the parent folder {parent} does not exist")


def verify(model: Segmenter, folder: Path, image_size: tuple[int, int], options: VerifyOptions,
           photos: dict[str, np.ndarray], graphs: list[str] | None = None,
           tensorrt: TensorRTOutcome | None = None) -> dict:
    """Compare the exported graphs in ``folder`` (``graphs``, default: all present) and the TensorRT
    engine (when built) with PyTorch; write the polygraphy files and report.json."""
    options.check()
    cases = make_cases(photos, image_size, model.config.normalization, options.mixed_batch)
    reference = Reference.run(TorchBackend(model, image_size), cases)
    parity = {}
    for name, (graph, precision) in ONNXRUNTIME_BACKENDS.items():
        if (folder / graph).is_file() and (graphs is None or graph in graphs):
            parity[name] = compare(reference, OnnxRuntimeBackend(folder / graph, name), precision, graph)
    commands = {name: as_shell(onnxrt_command(folder / entry["graph"], folder, entry["precision"]))
                for name, entry in parity.items()}
    report = load_report(folder)
    if tensorrt is not None:
        parity[TENSORRT_BACKEND], report["tensorrt"] = tensorrt_entries(reference, tensorrt)
        batch = max(len(case.names) for case in cases)
        commands[f"{TENSORRT_BACKEND} (GPU machine with TensorRT)"] = as_shell(tensorrt_command(
            folder / FP16_GRAPH, folder, autoregistering_library(tensorrt), image_size, (1, batch, batch)))
    write_polygraphy_files(folder, reference)
    report.update({
        "model_summary": {"image_size": list(image_size), "algm": model.algm.to_dict() if model.algm else None,
                          "classes": model.config.n_cls, "backbone": model.config.backbone},
        "verification_images": list(photos),
        "verification_cases": [list(case.names) for case in cases],
        "parity": parity,
        "polygraphy_commands": commands,
    })
    save_report(folder, report)
    return report


def tensorrt_entries(reference: Reference, tensorrt: TensorRTOutcome) -> tuple[dict, dict]:
    """The ``parity`` and ``tensorrt`` report entries of the engine stage."""
    if tensorrt.backend is None:
        return {"skipped": tensorrt.skipped}, {"status": "skipped", "reason": tensorrt.skipped}
    return compare(reference, tensorrt.backend, "fp16", ENGINE_NAME), {"status": "built", **tensorrt.details}


def autoregistering_library(tensorrt: TensorRTOutcome) -> str:
    """The plugin library flavour for polygraphy, which only dlopens libraries."""
    library = tensorrt.details["plugin_library"] if tensorrt.details else f"build/plugins/trt/{PLUGIN_LIBRARY_NAME}"
    return library.replace(PLUGIN_LIBRARY_NAME, AUTOREGISTER_LIBRARY_NAME)


def run_pipeline(model: Segmenter, folder: Path, image_size: tuple[int, int], fp16: bool, options: VerifyOptions,
                 engine: TensorRTOptions, verbose: bool = False, outputs: tuple[str, ...] = DEFAULT_OUTPUTS) -> int:
    """Export (with the deployment ``outputs``), build the engine (with ``fp16``), verify and report; returns the
    exit code (1: parity failed)."""
    check_output_folder(folder)
    options.check()
    photos = verification_photos(options.images)
    progress = Progress(3 if fp16 else 2)
    prepare_output_folder(folder)
    with progress.stage(f"export ONNX to {folder}/"):
        graphs = export_graphs(model, folder, image_size, fp16=fp16, verbose=verbose, outputs=outputs)
        for path in (graphs.portable, graphs.plugin, graphs.fp16):
            if path is not None:
                print(f"      {path.name:<16} {path.stat().st_size / 1e6:6.1f} MB")
    tensorrt = None
    if fp16:
        with progress.stage("build the FP16 TensorRT engine with the algm plugins"):
            tensorrt = tensorrt_stage(folder, engine)
    with progress.stage(f"verify against PyTorch on {len(photos)} images (batch 1 and a mixed batch)"):
        written = [p.name for p in (graphs.portable, graphs.plugin, graphs.fp16) if p is not None]
        report = verify(model, folder, image_size, options, photos, written, tensorrt)
    return print_outcome(folder, report)


def print_outcome(folder: Path, report: dict) -> int:
    """Print the parity table and polygraphy commands; exit code 1 if any backend failed."""
    parity = report["parity"]
    print()
    print(parity_table(parity))
    print()
    print("check with polygraphy alone:")
    for name, command in report["polygraphy_commands"].items():
        print(f"  # {name}\n  {command}")
    print(f"\nreport: {folder / 'report.json'}")
    failed = [name for name, entry in parity.items() if not entry.get("skipped") and not entry["passed"]]
    if failed:
        print(f"parity FAILED for: {', '.join(failed)}")
        return 1
    return 0
