"""Build a TensorRT engine from an exported graph with the algm plugins, plus its JSON sidecar.

Follows TensorRT's documented Python API (10.x and 11.x); every version difference is a feature check.
Runs only where TensorRT and a GPU exist: callers check :func:`tensorrt_environment` first.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import onnx

from ..artifacts import INPUT_NAME, sidecar_path
from ..deployment import DeploymentInfo
from ..errors import AlgmExportError
from ..export.graph_edits import strip_functions
from ..files import write_atomically
from .availability import TensorRTFailure, load_plugin_library
from .strategy import BuildStrategy, strategy_for


@dataclass(frozen=True)
class EngineRequest:
    """What to build."""

    folder: Path  # holds the exported graphs; receives the engine
    engine_name: str
    batch: tuple[int, int, int]  # min, opt, max
    plugin_library: Path
    workspace_mb: int = 4096
    timing_cache: Path | None = None
    verbose: bool = False
    strategy: BuildStrategy | None = None  # default: the FP16 route of the installed TensorRT


def _progress_monitor(tensorrt: ModuleType):
    """Prints top-level builder phases with elapsed time (TensorRT >= 10 has IProgressMonitor)."""

    class PhasePrinter(tensorrt.IProgressMonitor):
        def __init__(self):
            tensorrt.IProgressMonitor.__init__(self)
            self.started: dict[str, float] = {}

        def phase_start(self, phase_name, parent_phase, num_steps):
            self.started[phase_name] = time.perf_counter()
            if parent_phase is None:
                print(f"      TensorRT: {phase_name} ({num_steps} steps)", flush=True)

        def step_complete(self, phase_name, step):
            return True

        def phase_finish(self, phase_name):
            start = self.started.pop(phase_name, None)
            if start is not None and time.perf_counter() - start > 5:
                print(f"      TensorRT: {phase_name} done in {time.perf_counter() - start:.0f} s", flush=True)

    return PhasePrinter()


def _parse(tensorrt: ModuleType, builder, logger, graph: Path, model: onnx.ModelProto, strategy: BuildStrategy):
    flags = 1 << int(tensorrt.NetworkDefinitionCreationFlag.STRONGLY_TYPED) if strategy.strongly_typed else 0
    network = builder.create_network(flags)
    parser = tensorrt.OnnxParser(network, logger)
    # Without the function bodies every algm node must resolve to our plugins.
    if not parser.parse(strip_functions(model).SerializeToString()):
        errors = "; ".join(str(parser.get_error(i).desc()) for i in range(parser.num_errors))
        raise TensorRTFailure(f"{graph}: TensorRT's ONNX parser failed: {errors}")
    return network, parser


def build_engine(tensorrt: ModuleType, request: EngineRequest, gpu_name: str) -> Path:
    """Build ``request.engine_name`` (+ ``.json`` sidecar) in ``request.folder``; returns the engine path.

    Raises AlgmExportError for bad input (a missing graph), Unavailable when this TensorRT cannot build
    FP16 engines, TensorRTFailure when TensorRT fails."""
    strategy = request.strategy or strategy_for(tensorrt)
    graph = request.folder / strategy.graph
    if not graph.is_file():
        raise AlgmExportError(f"{graph}: missing; export it first (algm-export MODEL --fp16)")
    model = onnx.load(graph)
    info = DeploymentInfo.from_onnx(str(graph), model)
    logger = tensorrt.Logger(tensorrt.Logger.VERBOSE if request.verbose else tensorrt.Logger.WARNING)
    load_plugin_library(tensorrt, request.plugin_library)
    builder = tensorrt.Builder(logger)
    network, _parser = _parse(tensorrt, builder, logger, graph, model, strategy)
    config = builder.create_builder_config()
    config.set_memory_pool_limit(tensorrt.MemoryPoolType.WORKSPACE, request.workspace_mb << 20)
    if strategy.fp16_flag:
        config.set_flag(tensorrt.BuilderFlag.FP16)
    height, width = info.image_size
    profile = builder.create_optimization_profile()
    profile.set_shape(INPUT_NAME, *[(b, 3, height, width) for b in request.batch])
    config.add_optimization_profile(profile)
    cache_bytes = request.timing_cache.read_bytes() if request.timing_cache and request.timing_cache.is_file() else b""
    config.set_timing_cache(config.create_timing_cache(cache_bytes), False)
    if hasattr(tensorrt, "IProgressMonitor"):
        config.progress_monitor = _progress_monitor(tensorrt)
    start = time.perf_counter()
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise TensorRTFailure(f"TensorRT could not build an engine from {graph} (see TensorRT's messages above)")
    engine = write_atomically(request.folder / request.engine_name, lambda p: p.write_bytes(bytes(serialized)))
    if request.timing_cache:
        cache = config.get_timing_cache().serialize()
        write_atomically(request.timing_cache, lambda p: p.write_bytes(bytes(cache)))
    sidecar = {
        "input": {"name": INPUT_NAME, "shape": [-1, 3, height, width], "dtype": "float32"},
        "outputs": [{"name": network.get_output(i).name, "shape": list(network.get_output(i).shape),
                     "dtype": str(network.get_output(i).dtype)} for i in range(network.num_outputs)],
        "batch_profile": {"min": request.batch[0], "opt": request.batch[1], "max": request.batch[2]},
        "image_size": [height, width],
        "normalization": info.to_dict()["normalization"],
        "class_names": list(info.class_names),
        "deployment": {**info.to_dict(), "precision": info.precision if strategy.strongly_typed else "fp16"},
        "built_from": strategy.describe(),
        "tensorrt_version": tensorrt.__version__,
        "gpu": gpu_name,
        "plugin_library": str(request.plugin_library),
        "build_seconds": round(time.perf_counter() - start, 1),
    }
    write_atomically(sidecar_path(engine), lambda p: p.write_text(json.dumps(sidecar, indent=2)))
    return engine
