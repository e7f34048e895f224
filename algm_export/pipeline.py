"""The stages of ``algm-export MODEL``: export, verify, TensorRT (where available), report."""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Sequence

import numpy as np

from .artifacts import AUTOREGISTER_LIBRARY, CALIBRATION_CACHE, DEFAULT_OUTPUTS, PLUGIN_LIBRARY, REPORT, TIMING_CACHE
from .backends import ENGINES, FP16_ENGINE, INT8_ENGINE, ONNXRUNTIME_GRAPHS, ONNXRUNTIME_INT8, ORT_OPS, BackendKind
from .calibration.int8 import Int8Settings, write_int8_graphs
from .errors import AlgmExportError
from .export.onnx_export import export_graphs
from .files import replaced_folder
from .models.segmenter import Segmenter
from .photos import read_image_folder, sample_photos
from .runtime.base import Backend
from .runtime.onnxruntime_backend import OnnxRuntimeBackend
from .runtime.torch_backend import TorchBackend
from .trt.availability import TensorRTFailure, Unavailable, tensorrt_environment
from .trt.strategy import strategy_for
from .verify.cases import make_cases
from .verify.parity import Reference, compare
from .verify.polygraphy_files import as_shell, onnxrt_command, tensorrt_command, write_polygraphy_files
from .verify.report import load_report, parity_table, save_report


class Progress:
    """Numbered stage lines with elapsed times."""

    def __init__(self, total: int):
        self.total, self.done = total, 0

    @contextmanager
    def stage(self, title: str):
        """Print ``[k/n] title ...`` then the time it took, unless the stage sets ``skipped`` on what it
        yields (a skipped stage has printed its reason instead)."""
        self.done += 1
        print(f"[{self.done}/{self.total}] {title} ...", flush=True)
        start, stage = time.perf_counter(), SimpleNamespace(skipped=False)
        yield stage
        if not stage.skipped:
            print(f"      done in {time.perf_counter() - start:.1f} s", flush=True)


@dataclass
class VerifyOptions:
    """Inputs of the verification stage."""

    images: Path | None
    mixed_batch: int
    ort_ops: Path | None = None  # libalgm_ort_ops.so: adds the onnxruntime_algm_ops entry

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
    kind: BackendKind = FP16_ENGINE
    failed: str | None = None

    def entries(self) -> tuple[dict, dict]:
        """The ``parity`` and ``tensorrt`` report entries when there is no backend to verify."""
        if self.failed:
            return {"passed": False, "failures": [self.failed]}, {"status": "failed", "reason": self.failed}
        return {"skipped": self.skipped}, {"status": "skipped", "reason": self.skipped}


def tensorrt_stage(folder: Path, options: TensorRTOptions, kind: BackendKind = FP16_ENGINE) -> TensorRTOutcome:
    """Build the engine of ``kind`` (FP16, or INT8 from the FP16 Q/DQ graph) when TensorRT, a GPU and the
    plugin library are present; else say why not.

    Every TensorRT-side problem is one line: a missing prerequisite is a skip, a TensorRT failure (parser,
    builder, engine) is recorded as a failed stage, bad input (AlgmExportError) propagates (exit 2)."""
    try:
        tensorrt, gpu, library = tensorrt_environment(options.plugin_library)
        strategy = strategy_for(tensorrt, kind.precision)
        from .runtime.tensorrt_backend import TensorRTBackend
        from .trt.builder import EngineRequest, build_engine

        request = EngineRequest(folder, kind.engine, options.batch, library, options.workspace_mb,
                                options.timing_cache or folder / TIMING_CACHE, options.verbose, strategy)
        engine = build_engine(tensorrt, request, gpu)
        backend = TensorRTBackend(engine, library, kind.name)
    except Unavailable as reason:
        print(f"      skipped: {reason}")
        return TensorRTOutcome(skipped=str(reason), kind=kind)
    except TensorRTFailure as failure:
        print(f"      failed: {failure}")
        return TensorRTOutcome(failed=str(failure), kind=kind)
    print(f"      {engine.name} built for {gpu} with TensorRT {tensorrt.__version__}")
    details = {"engine": engine.name, "gpu": gpu, "tensorrt_version": tensorrt.__version__,
               "plugin_library": str(library)}
    return TensorRTOutcome(backend, details=details, kind=kind)


def build_engines(folder: Path, options: TensorRTOptions, kinds: Sequence[BackendKind],
                  progress: Progress) -> list[TensorRTOutcome]:
    """One progress stage and :func:`tensorrt_stage` per engine of ``kinds``, in order."""
    outcomes = []
    for kind in kinds:
        with progress.stage(f"build the {kind.precision.upper()} TensorRT engine (from {kind.graph}) with the algm "
                            "plugins") as stage:
            outcomes.append(tensorrt_stage(folder, options, kind))
            stage.skipped = outcomes[-1].skipped is not None
    return outcomes


def record_engine(report: dict, kind: BackendKind, parity: dict, status: dict) -> None:
    """Put an engine's parity entry and build status where report.json keeps them: ``parity[backend]``, and
    ``tensorrt`` (FP16) or ``int8.tensorrt`` (INT8)."""
    report.setdefault("parity", {})[kind.name] = parity
    (report.setdefault("int8", {}) if kind.precision == "int8" else report)["tensorrt"] = status


def verification_photos(images: Path | None) -> dict[str, np.ndarray]:
    """The user's images, or the bundled sample photos."""
    return read_image_folder(images) if images is not None else sample_photos()


def verify(model: Segmenter, folder: Path, image_size: tuple[int, int], options: VerifyOptions,
           photos: dict[str, np.ndarray], graphs: list[str] | None = None,
           engines: Sequence[TensorRTOutcome] = (), shown: Path | None = None) -> dict:
    """Compare the exported graphs in ``folder`` (``graphs``, default: all present) and the TensorRT
    engines (FP16, INT8: an entry each, built or skipped) with PyTorch; write the polygraphy files and
    report.json (with ``graphs`` given, the parity entries and commands of other backends are kept).
    ``shown``: the folder the printed commands name (``folder`` may be the staging folder of
    :func:`replaced_folder`)."""
    options.check()
    shown = shown or folder
    cases = make_cases(photos, image_size, model.config.normalization, options.mixed_batch)
    reference = Reference.run(TorchBackend(model, image_size), cases)
    parity = {}
    for kind in ONNXRUNTIME_GRAPHS:
        if (folder / kind.graph).is_file() and (graphs is None or kind.graph in graphs):
            backend = OnnxRuntimeBackend(folder / kind.graph, kind.name)
            parity[kind.name] = compare(reference, backend, kind.precision, kind.graph)
    if options.ort_ops is not None:
        backend = OnnxRuntimeBackend(folder / ORT_OPS.graph, ORT_OPS.name, custom_ops=options.ort_ops)
        parity[ORT_OPS.name] = compare(reference, backend, ORT_OPS.precision, ORT_OPS.graph)
    commands = {name: as_shell(onnxrt_command(shown / entry["graph"], shown, entry["precision"]))
                for name, entry in parity.items()}
    report = load_report(folder)
    if graphs is not None:  # a partial verification (`build`): the entries of the other backends stay
        parity = {**report.get("parity", {}), **parity}
        commands = {**report.get("polygraphy_commands", {}), **commands}
    else:  # the graphs re-verified (`verify`): the engines' entries (built or skipped, with the reason) stay
        engine_backends = {kind.name for kind in ENGINES.values()}
        parity = {**{name: entry for name, entry in report.get("parity", {}).items() if name in engine_backends},
                  **parity}
    report["parity"] = parity
    for tensorrt in engines:
        kind = tensorrt.kind
        record_engine(report, kind, *tensorrt_entries(reference, tensorrt))
        batch = max(len(case.names) for case in cases)
        commands[f"{kind.name} (GPU machine with TensorRT)"] = as_shell(tensorrt_command(
            shown / kind.graph, shown, autoregistering_library(tensorrt), image_size, (1, batch, batch),
            kind.precision))
    write_polygraphy_files(folder, reference)
    report.update({
        "model_summary": {"image_size": list(image_size), "algm": model.algm.to_dict() if model.algm else None,
                          "classes": model.config.n_cls, "backbone": model.config.backbone},
        "verification_images": list(photos),
        "verification_cases": [list(case.names) for case in cases],
        "polygraphy_commands": commands,
    })
    save_report(folder, report)
    return report


def tensorrt_entries(reference: Reference, tensorrt: TensorRTOutcome) -> tuple[dict, dict]:
    """The ``parity`` and ``tensorrt`` report entries of the engine stage."""
    if tensorrt.backend is None:
        return tensorrt.entries()
    kind = tensorrt.kind
    try:
        parity = compare(reference, tensorrt.backend, kind.precision, kind.engine)
        return parity, {"status": "built", **tensorrt.details}
    except TensorRTFailure as failure:
        return TensorRTOutcome(failed=str(failure), kind=kind).entries()


def autoregistering_library(tensorrt: TensorRTOutcome) -> str:
    """The plugin library flavour for polygraphy, which only dlopens libraries."""
    library = tensorrt.details["plugin_library"] if tensorrt.details else f"build/plugins/trt/{PLUGIN_LIBRARY}"
    return library.replace(PLUGIN_LIBRARY, AUTOREGISTER_LIBRARY)


def run_pipeline(model: Segmenter, folder: Path, image_size: tuple[int, int], fp16: bool, options: VerifyOptions,
                 engine: TensorRTOptions, verbose: bool = False, photos: dict[str, np.ndarray] | None = None,
                 int8: Int8Settings | None = None, outputs: tuple[str, ...] = DEFAULT_OUTPUTS) -> int:
    """Export (with the deployment ``outputs``), quantize (with ``int8``), build the engines (with ``fp16``),
    verify and report; returns the exit code (1: parity failed).

    Everything is built in a staging folder swapped in for ``folder`` at the end (:func:`replaced_folder`):
    afterwards ``folder`` holds exactly this run's files, or, after an error or interrupt, the previous ones."""
    options.check()
    photos = verification_photos(options.images) if photos is None else photos
    calibration_images = int8.calibration_images() if int8 else None
    progress = Progress(2 + fp16 * (1 + bool(int8)) + bool(int8))
    with replaced_folder(folder, keep=[TIMING_CACHE, CALIBRATION_CACHE]) as staging:
        with progress.stage(f"export ONNX to {folder}/"):
            graphs = export_graphs(model, staging, image_size, fp16=fp16, verbose=verbose, outputs=outputs)
            for path in (graphs.portable, graphs.plugin, graphs.fp16):
                if path is not None:
                    print(f"      {path.name:<16} {path.stat().st_size / 1e6:6.1f} MB")
        written = [p.name for p in (graphs.portable, graphs.plugin, graphs.fp16) if p is not None]
        int8_entry = None
        if int8:
            with progress.stage(f"INT8: calibrate and write the Q/DQ graphs (scope {int8.scope})"):
                int8_entry = write_int8_graphs(staging, int8, fp16, calibration_images, photos)
                written += int8_entry["graphs"]
        kinds = [FP16_ENGINE, INT8_ENGINE] if int8 else [FP16_ENGINE]
        engines = build_engines(staging, engine, kinds if fp16 else [], progress)
        if int8_entry:
            save_report(staging, {**load_report(staging), "int8": int8_entry})
        with progress.stage(f"verify against PyTorch on {len(photos)} images (batch 1 and a mixed batch)"):
            report = verify(model, staging, image_size, options, photos, written, engines, shown=folder)
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
    int8_judged = any(kind.name in parity for kind in ONNXRUNTIME_INT8)
    if int8_judged and "summary" in report.get("int8", {}):  # not an earlier export's line after `verify`
        print(f"\nINT8: {report['int8']['summary']}")
        measured = parity.get(ONNXRUNTIME_INT8[0].name, {})
        if measured.get("label_agreement_own_decisions_exact") is not None:
            worst = measured["label_agreement_own_decisions"]
            print(f"      labels vs PyTorch (worst image): {worst:.5f} with near-ties "
                  f"(within {measured['criteria']['label_tie_own_decisions']:g}) agreeing, "
                  f"{measured['label_agreement_own_decisions_exact']:.5f} on all pixels")
    print(f"\nreport: {folder / REPORT}")
    failed = [name for name, entry in parity.items() if not entry.get("skipped") and not entry["passed"]]
    if failed:
        print(f"parity FAILED for: {', '.join(failed)}")
        return 1
    return 0
