"""Stage 3's TensorRT half, run in child processes by tools/gpu_check (needs TensorRT's Python package and numpy;
no PyTorch: device memory through the CUDA runtime with ctypes).

    python -m gpu_check.engines load --library LIB --mode load_library|dlopen
    python -m gpu_check.engines engines --plugins LIB --work DIR --result FILE [--fixtures DIR]

``load`` loads a plugin library the way a loader does, in a process of its own (the registry keeps creators
until the process ends, and only one library flavour may be loaded per process): ``load_library`` is
``IPluginRegistry::loadLibrary`` (trtexec --dynamicPlugins, the package's builder), ``dlopen`` is a plain
``ctypes.CDLL`` (polygraphy --plugins, trtexec --staticPlugins, Triton's LD_PRELOAD), after which the
library must have registered itself. It prints one JSON line: the algm creators found in the registry.

``engines`` builds an engine from each fixture graph (FP16; FP16 Q/DQ, i.e. INT8; and, when the onnx package
is there, the FP16 graph with INT64 size tensors and the FP16 graph with the algm function bodies attached,
whose engine shows whether the parser took the plugins: ``plugin_layers_in_engine``), round-trips it through
serialization, runs the batch of four photos, judges labels and token counts against ONNX Runtime's stored outputs
(:func:`gpu_check.fixtures.judge`), times the engine with CUDA events and measures the plugins' share of the
engine time with TensorRT's layer profiler. It writes one JSON file.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import glob
import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from .fixtures import FIXTURES, FUNCTIONS, GRAPHS, judge, load_expected, load_inputs

# The op contract, read as JSON (the GPU machine may lack the package's dependencies): one source for the names.
CONTRACT = json.loads((Path(__file__).resolve().parents[2] / "algm_export" / "ops_contract.json").read_text())
PLUGIN_NAMES = tuple(CONTRACT["ops"])
PLUGIN_VERSION = CONTRACT["plugin_version"]
PLUGIN_NAMESPACE = CONTRACT["plugin_namespace"]
WORKSPACE_BYTES = 1 << 30
WARMUP_RUNS = 5
TIMED_RUNS = 30
PROFILED_RUNS = 10
INFORMATIONAL = {"fp16_function_bodies"}  # engines whose failures are recorded as notes, not stage failures
SIZE_DTYPE_ATTRIBUTE = "size_dtype"
ONNX_INT64 = 7


# --- CUDA runtime through ctypes ---------------------------------------------------------------------------

class Cuda:
    """The few CUDA runtime calls needed to run an engine without PyTorch."""

    HOST_TO_DEVICE, DEVICE_TO_HOST = 1, 2

    def __init__(self):
        self.lib = self._load()
        self.lib.cudaGetErrorString.restype = ctypes.c_char_p
        self.lib.cudaEventElapsedTime.argtypes = [ctypes.POINTER(ctypes.c_float), ctypes.c_void_p, ctypes.c_void_p]

    @staticmethod
    def _load() -> ctypes.CDLL:
        names = [ctypes.util.find_library("cudart"), "libcudart.so", "libcudart.so.13", "libcudart.so.12"]
        names += sorted(glob.glob("/usr/local/cuda/lib64/libcudart.so*"))
        names += sorted(glob.glob(os.path.join(sys.prefix, "lib", "python3*", "site-packages", "nvidia",
                                               "cu*", "lib", "libcudart.so*")))
        names += sorted(glob.glob(os.path.join(sys.prefix, "lib", "python3*", "site-packages", "nvidia",
                                               "cuda_runtime", "lib", "libcudart.so*")))
        for name in filter(None, names):
            try:
                return ctypes.CDLL(name)
            except OSError:
                continue
        raise RuntimeError("the CUDA runtime library (libcudart.so) was not found")

    def check(self, status: int, what: str) -> None:
        """RuntimeError naming ``what`` unless ``status`` is cudaSuccess."""
        if status != 0:
            raise RuntimeError(f"{what}: {self.lib.cudaGetErrorString(status).decode()}")

    def malloc(self, size: int) -> int:
        """A device allocation of ``size`` bytes (at least 1)."""
        pointer = ctypes.c_void_p()
        self.check(self.lib.cudaMalloc(ctypes.byref(pointer), ctypes.c_size_t(max(size, 1))), "cudaMalloc")
        return pointer.value

    def free(self, pointer: int) -> None:
        """Release a device allocation."""
        self.lib.cudaFree(ctypes.c_void_p(pointer))

    def copy(self, destination: int, source: int, size: int, kind: int) -> None:
        """Synchronous cudaMemcpy."""
        self.check(self.lib.cudaMemcpy(ctypes.c_void_p(destination), ctypes.c_void_p(source), ctypes.c_size_t(size),
                                       kind), "cudaMemcpy")

    def stream(self) -> int:
        """A new CUDA stream."""
        handle = ctypes.c_void_p()
        self.check(self.lib.cudaStreamCreate(ctypes.byref(handle)), "cudaStreamCreate")
        return handle.value or 0

    def synchronize(self, stream: int) -> None:
        """Wait for ``stream``."""
        self.check(self.lib.cudaStreamSynchronize(ctypes.c_void_p(stream)), "cudaStreamSynchronize")

    def time_ms(self, enqueue, stream: int, runs: int) -> list[float]:
        """CUDA-event times of ``runs`` calls of ``enqueue()`` on ``stream``, one by one."""
        start, stop = ctypes.c_void_p(), ctypes.c_void_p()
        self.check(self.lib.cudaEventCreate(ctypes.byref(start)), "cudaEventCreate")
        self.check(self.lib.cudaEventCreate(ctypes.byref(stop)), "cudaEventCreate")
        times = []
        for _ in range(runs):
            self.check(self.lib.cudaEventRecord(start, ctypes.c_void_p(stream)), "cudaEventRecord")
            enqueue()
            self.check(self.lib.cudaEventRecord(stop, ctypes.c_void_p(stream)), "cudaEventRecord")
            self.check(self.lib.cudaEventSynchronize(stop), "cudaEventSynchronize")
            elapsed = ctypes.c_float()
            self.check(self.lib.cudaEventElapsedTime(ctypes.byref(elapsed), start, stop), "cudaEventElapsedTime")
            times.append(elapsed.value)
        self.lib.cudaEventDestroy(start)
        self.lib.cudaEventDestroy(stop)
        return times


# --- loading -----------------------------------------------------------------------------------------------

def registered_creators(tensorrt) -> list[str]:
    """The algm creators TensorRT's registry holds."""
    registry = tensorrt.get_plugin_registry()
    return [name for name in PLUGIN_NAMES if registry.get_creator(name, PLUGIN_VERSION, PLUGIN_NAMESPACE) is not None]


def load(library: str, mode: str) -> dict:
    """Load ``library`` as ``mode`` says and report which algm creators are registered before and after."""
    import tensorrt

    logger = tensorrt.Logger(tensorrt.Logger.WARNING)
    tensorrt.init_libnvinfer_plugins(logger, "")  # as trtexec and polygraphy do before loading anything
    before = registered_creators(tensorrt)
    if mode == "load_library":
        handle = tensorrt.get_plugin_registry().load_library(library)
        loaded = handle is not None
    else:
        ctypes.CDLL(library, mode=ctypes.RTLD_GLOBAL)
        loaded = True
    return {"mode": mode, "library": library, "tensorrt": tensorrt.__version__, "loaded": loaded,
            "registered_before": before, "registered": registered_creators(tensorrt)}


# --- engines -----------------------------------------------------------------------------------------------

def int64_size_graph(source: Path, destination: Path) -> Path:
    """A copy of the FP16 graph whose merge nodes declare INT64 size tensors (field ``size_dtype`` = 7)."""
    import onnx

    model = onnx.load(source)
    sizes = set()
    for node in model.graph.node:
        if node.domain == PLUGIN_NAMESPACE and node.op_type in ("LocalMerge", "GlobalMerge"):
            node.attribute.append(onnx.helper.make_attribute(SIZE_DTYPE_ATTRIBUTE, ONNX_INT64))
            sizes.add(node.output[-1])
    for info in list(model.graph.value_info) + list(model.graph.output):
        if info.name in sizes:
            info.type.tensor_type.elem_type = ONNX_INT64
    onnx.save(model, destination)
    return destination


def layer_profiler(tensorrt):
    """A TensorRT IProfiler whose ``times`` sum the milliseconds per layer name over the profiled runs."""

    class LayerTimes(tensorrt.IProfiler):
        def __init__(self):
            tensorrt.IProfiler.__init__(self)
            self.times: dict[str, float] = defaultdict(float)

        def report_layer_time(self, layer_name, ms):
            self.times[layer_name] += ms

    return LayerTimes()


def plugin_layer_names(tensorrt, engine) -> set[str] | None:
    """Names of the engine's plugin layers from the engine inspector (detailed profiling verbosity), or None."""
    try:
        inspector = engine.create_engine_inspector()
        info = json.loads(inspector.get_engine_information(tensorrt.LayerInformationFormat.JSON))
    except Exception:  # noqa: BLE001 - an optional figure
        return None
    names = set()
    for layer in info.get("Layers", []):
        if isinstance(layer, dict) and "Plugin" in str(layer.get("LayerType", "")):
            names.add(layer.get("Name", ""))
    return names or None


def plugin_share(times: dict[str, float], plugin_layers: set[str] | None) -> dict:
    """The share of profiled layer time spent in the algm plugins (by inspector layer type, else by name)."""
    total = sum(times.values())

    def is_plugin(name: str) -> bool:
        if plugin_layers is not None:
            return name in plugin_layers
        return any(plugin in name for plugin in PLUGIN_NAMES)

    plugin = {name: ms for name, ms in times.items() if is_plugin(name)}
    return {"plugin_ms_per_run": round(sum(plugin.values()) / PROFILED_RUNS, 4),
            "engine_layers_ms_per_run": round(total / PROFILED_RUNS, 4),
            "plugin_share": round(sum(plugin.values()) / total, 4) if total else None,
            "plugin_layers": {name: round(ms / PROFILED_RUNS, 4) for name, ms in sorted(plugin.items())},
            "classified_by": "engine inspector layer type" if plugin_layers is not None else "layer name"}


def build(tensorrt, logger, graph: Path, batch: int, height: int, width: int) -> tuple[bytes, float]:
    """A serialized engine for ``graph`` (strongly typed: the graph's precisions), profile batch 1..``batch``."""
    builder = tensorrt.Builder(logger)
    flags = 0
    if hasattr(tensorrt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED"):
        flags |= 1 << int(tensorrt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    parser = tensorrt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(graph)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"the ONNX parser rejected {graph.name}: {errors[:400]}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(tensorrt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
    config.profiling_verbosity = tensorrt.ProfilingVerbosity.DETAILED
    if not hasattr(tensorrt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED") and hasattr(tensorrt.BuilderFlag, "FP16"):
        config.set_flag(tensorrt.BuilderFlag.FP16)
    profile = builder.create_optimization_profile()
    name = network.get_input(0).name
    profile.set_shape(name, (1, 3, height, width), (batch, 3, height, width), (batch, 3, height, width))
    config.add_optimization_profile(profile)
    start = time.perf_counter()
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError(f"TensorRT could not build an engine from {graph.name}")
    return bytes(serialized), round(time.perf_counter() - start, 1)


def with_function_bodies(source: Path, functions: Path, destination: Path) -> Path:
    """A copy of the (stripped) FP16 graph with the algm nodes' function bodies attached again, as
    model.fp16.onnx leaves the exporter: does TensorRT's parser prefer the registered plugins over them?"""
    import onnx

    model = onnx.load(source)
    bodies = onnx.load(functions)
    model.functions.extend(bodies.functions)
    present = {entry.domain for entry in model.opset_import}
    model.opset_import.extend(entry for entry in bodies.opset_import if entry.domain not in present)
    onnx.save(model, destination)
    return destination


class Runner:
    """An engine deserialized from its plan, with buffers for one batch size (device memory through ctypes;
    outputs TensorRT keeps on the host in numpy arrays)."""

    def __init__(self, tensorrt, logger, cuda: Cuda, plan: bytes):
        self.tensorrt, self.cuda = tensorrt, cuda
        self.runtime = tensorrt.Runtime(logger)
        self.engine = self.runtime.deserialize_cuda_engine(plan)
        if self.engine is None:
            raise RuntimeError("TensorRT could not deserialize the engine it had just built")
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        mode = tensorrt.TensorIOMode.INPUT
        self.input = next(n for n in names if self.engine.get_tensor_mode(n) == mode)
        self.outputs = [n for n in names if self.engine.get_tensor_mode(n) != mode]
        self.stream = cuda.stream()
        self.device: dict[str, int] = {}
        self.host: dict[str, np.ndarray] = {}

    def prepare(self, images: np.ndarray) -> None:
        """Set the input shape, allocate every buffer and copy ``images`` to the device."""
        tensorrt, cuda = self.tensorrt, self.cuda
        self.release()
        self.context.set_input_shape(self.input, images.shape)
        self.device[self.input] = cuda.malloc(images.nbytes)
        cuda.copy(self.device[self.input], images.ctypes.data, images.nbytes, Cuda.HOST_TO_DEVICE)
        self.context.set_tensor_address(self.input, self.device[self.input])
        for name in self.outputs:
            shape = tuple(self.context.get_tensor_shape(name))
            if min(shape, default=0) < 0:
                raise RuntimeError(f"output {name} has a data-dependent shape {shape}")
            array = np.zeros(shape, dtype=tensorrt.nptype(self.engine.get_tensor_dtype(name)))
            self.host[name] = array
            if self.engine.get_tensor_location(name) == tensorrt.TensorLocation.HOST:
                self.context.set_tensor_address(name, array.ctypes.data)
            else:
                self.device[name] = cuda.malloc(array.nbytes)
                self.context.set_tensor_address(name, self.device[name])

    def enqueue(self) -> None:
        """Queue one inference on the runner's stream."""
        if not self.context.execute_async_v3(self.stream):
            raise RuntimeError("execute_async_v3 failed (see TensorRT's messages)")

    def infer(self) -> dict[str, np.ndarray]:
        """Run once and return every output on the host."""
        self.enqueue()
        self.cuda.synchronize(self.stream)
        for name, pointer in self.device.items():
            if name != self.input:
                self.cuda.copy(self.host[name].ctypes.data, pointer, self.host[name].nbytes, Cuda.DEVICE_TO_HOST)
        return {name: array.copy() for name, array in self.host.items()}

    def release(self) -> None:
        """Free the device buffers."""
        for pointer in self.device.values():
            self.cuda.free(pointer)
        self.device.clear()
        self.host.clear()


def check_engine(tensorrt, logger, cuda: Cuda, key: str, graph: Path, images: np.ndarray, expected: dict) -> dict:
    """Build, deserialize, run, judge, time and profile one engine."""
    batch, _, height, width = images.shape
    plan, build_seconds = build(tensorrt, logger, graph, batch, height, width)
    runner = Runner(tensorrt, logger, cuda, plan)
    result = {"graph": graph.name, "build_seconds": build_seconds, "plan_mb": round(len(plan) / 1e6, 2),
              "token_counts_location": str(runner.engine.get_tensor_location("token_counts"))
              if "token_counts" in runner.outputs else None}
    runner.prepare(images)
    outputs = runner.infer()
    judged = judge("fp16_int8" if key == "fp16_int8" else "fp16", outputs["labels"], outputs["token_counts"], expected)
    result.update(judged)
    again = runner.infer()
    result["deterministic"] = all(np.array_equal(outputs[n], again[n]) for n in outputs)
    if not result["deterministic"]:
        result["passed"] = False
        result["failures"].append("a second run gave other outputs")
    for _ in range(WARMUP_RUNS):
        runner.enqueue()
    cuda.synchronize(runner.stream)
    times = sorted(cuda.time_ms(runner.enqueue, runner.stream, TIMED_RUNS))
    result["latency_ms_batch"] = {"batch": batch, "median": round(times[len(times) // 2], 4),
                                  "min": round(times[0], 4), "runs": TIMED_RUNS}
    single = images[:1].copy()
    runner.prepare(single)
    alone = runner.infer()
    result["batch1_equals_batch4_row0"] = {
        "labels": float((alone["labels"][0] == outputs["labels"][0]).mean()),
        "token_counts": bool(np.array_equal(alone["token_counts"][0], outputs["token_counts"][0]))}
    runner.prepare(images)
    profiler = layer_profiler(tensorrt)
    runner.context.profiler = profiler
    for _ in range(PROFILED_RUNS):
        runner.enqueue()
        cuda.synchronize(runner.stream)
    plugin_layers = plugin_layer_names(tensorrt, runner.engine)
    result["plugin_layers_in_engine"] = sorted(plugin_layers) if plugin_layers is not None else None
    result["profile"] = plugin_share(dict(profiler.times), plugin_layers)
    runner.release()
    return result


def engines(plugins: str, fixtures: Path, work: Path) -> dict:
    """Every fixture engine's result, ``passed`` when all passed."""
    import tensorrt

    logger = tensorrt.Logger(tensorrt.Logger.WARNING)
    loaded = tensorrt.get_plugin_registry().load_library(plugins)
    report = {"tensorrt": tensorrt.__version__, "plugin_library": plugins, "loaded": loaded is not None,
              "registered": registered_creators(tensorrt), "engines": {}, "failures": []}
    if report["registered"] != list(PLUGIN_NAMES):
        report["failures"].append(f"after load_library the registry holds {report['registered']}")
        report["passed"] = False
        return report
    cuda = Cuda()
    images, names = load_inputs(fixtures)
    expected = load_expected(fixtures)
    report["images"] = names
    graphs = {key: fixtures / name for key, name in GRAPHS.items()}
    work.mkdir(parents=True, exist_ok=True)
    try:
        graphs["fp16_size_int64"] = int64_size_graph(graphs["fp16"], work / "model.fp16.size_int64.onnx")
        graphs["fp16_function_bodies"] = with_function_bodies(graphs["fp16"], fixtures / FUNCTIONS,
                                                              work / "model.fp16.function_bodies.onnx")
    except ImportError as error:
        for key in ("fp16_size_int64", "fp16_function_bodies"):
            report["engines"][key] = {"skipped": f"the onnx package is missing ({error})"}
    for key, graph in graphs.items():
        try:
            report["engines"][key] = check_engine(tensorrt, logger, cuda, key, graph, images, expected)
        except Exception as error:  # noqa: BLE001 - one engine's failure is recorded, the others still run
            report["engines"][key] = {"passed": False, "failures": [f"{type(error).__name__}: {error}"]}
        # The function-bodies engine is a question about the parser (the package strips the bodies), not a gate.
        target = report.setdefault("notes", []) if key in INFORMATIONAL else report["failures"]
        for failure in report["engines"][key].get("failures", []):
            target.append(f"{key}: {failure}")
        print(f"{key}: {'passed' if report['engines'][key].get('passed') else 'FAILED'}", flush=True)
    report["passed"] = not report["failures"]
    return report


def main(argv: list[str] | None = None) -> int:
    """Entry point; exit 0 when everything asked for passed, 1 otherwise."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    loading = commands.add_parser("load", help="load a plugin library and list the registered algm creators")
    loading.add_argument("--library", required=True)
    loading.add_argument("--mode", choices=("load_library", "dlopen"), required=True)
    building = commands.add_parser("engines", help="build, run and judge the fixture engines")
    building.add_argument("--plugins", required=True, help="libalgm_plugins.so")
    building.add_argument("--fixtures", type=Path, default=FIXTURES)
    building.add_argument("--work", type=Path, required=True, help="folder for derived graphs")
    building.add_argument("--result", type=Path, required=True, help="JSON file to write")
    args = parser.parse_args(argv)
    if args.command == "load":
        result = load(args.library, args.mode)
        print("RESULT " + json.dumps(result), flush=True)
        return 0 if result["registered"] == list(PLUGIN_NAMES) else 1
    report = engines(args.plugins, args.fixtures, args.work)
    args.result.write_text(json.dumps(report, indent=2) + "\n")
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
