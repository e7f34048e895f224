"""The TensorRT layer. What needs TensorRT and a GPU is skipped with its reason here; the rest
(route choice, plugin-library search, graph stripping, the skip path of `algm-export build`) runs."""

from __future__ import annotations

import argparse
import json
import shutil
import types

import onnx
import pytest
from PIL import Image

from algm_export import pipeline
from algm_export.arguments import ENGINES, parse_engines
from algm_export.backends import INT8_ENGINE
from algm_export.cli import main
from algm_export.export.graph_edits import strip_functions
from algm_export.files import write_marker
from algm_export.trt import builder
from algm_export.trt.availability import TensorRTFailure, Unavailable, find_plugin_library, tensorrt_environment
from algm_export.trt.builder import EngineRequest, build_engine
from algm_export.trt.strategy import choose_strategy, strategy_for


def test_fp16_route_by_feature():
    assert choose_strategy(True, True).graph == "model.fp16.onnx"  # TensorRT 10.x: strongly typed FP16 graph
    assert choose_strategy(True, False).strongly_typed  # TensorRT 11.x: no FP16 flag at all
    legacy = choose_strategy(False, True)
    assert legacy.graph == "model.trt.onnx" and legacy.fp16_flag and not legacy.strongly_typed
    with pytest.raises(Unavailable, match="neither strongly typed networks nor the FP16 builder flag"):
        choose_strategy(False, False)


def test_plugin_library_search(tmp_path, monkeypatch):
    with pytest.raises(Unavailable, match="plugin library was not found"):
        find_plugin_library(tmp_path / "missing.so")
    library = tmp_path / "libalgm_plugins.so"
    library.write_bytes(b"\x7fELF")
    monkeypatch.setenv("ALGM_PLUGIN_LIBRARY", str(library))
    assert find_plugin_library() == library.resolve()


def test_stripped_graph_keeps_plugin_nodes_only(pipeline_run):
    model = onnx.load(pipeline_run[2] / "model.fp16.onnx")
    stripped = strip_functions(model)
    assert model.functions and not stripped.functions
    assert {o.domain for o in stripped.opset_import} == {"", "algm"}
    assert [n.op_type for n in stripped.graph.node if n.domain == "algm"] == ["LocalMerge", "GlobalMerge", "Unmerge"]


def copy_graphs(source, folder, names):
    """``names`` from the session pipeline's folder (run with --fp16 --int8) into a new ``folder``, with a marker
    listing them (part of an export folder)."""
    folder.mkdir()
    for name in names:
        shutil.copyfile(source / name, folder / name)
    write_marker(folder, names=names)
    return folder


@pytest.mark.parametrize("graphs, engines", [
    (("model.onnx", "model.fp16.onnx"), ["fp16"]),
    (("model.onnx", "model.fp16.onnx", "model.fp16.int8.onnx"), ["fp16", "int8"]),
])
def test_build_command_without_tensorrt_reports_skip(pipeline_run, research_checkpoint, tmp_path, capsys, graphs,
                                                     engines):
    try:
        tensorrt_environment()
    except Unavailable as error:
        reason = str(error)
    else:
        pytest.skip("TensorRT, a GPU and the plugin library are present: the skip path does not apply")
    folder = copy_graphs(pipeline_run[2], tmp_path / "out", graphs)
    code = main(["build", str(research_checkpoint), "-o", str(folder)])
    out = capsys.readouterr().out
    assert code == 0, out
    # One stage and one skip line per engine whose graph is there, nothing else attempted.
    titles = {"fp16": "build the FP16 TensorRT engine", "int8": "build the INT8 TensorRT engine"}
    assert [line.split("] ")[1].split(" with")[0].split(" (")[0] for line in out.splitlines()
            if line.startswith("[")] == [titles[name] for name in engines]
    assert out.count(f"skipped: {reason}\n") == len(engines)
    assert "done in" not in out  # a skipped stage prints its reason, not a time
    report = json.loads((folder / "report.json").read_text())
    statuses = {"fp16": report.get("tensorrt"), "int8": report.get("int8", {}).get("tensorrt")}
    assert {name: status for name, status in statuses.items() if status} == {
        name: {"status": "skipped", "reason": reason} for name in engines}
    assert report["parity"] == {f"tensorrt_{name}": {"skipped": reason} for name in engines}
    assert sorted(p.name for p in folder.iterdir()) == sorted([*graphs, "report.json", "algm-export.json"])  # no engine


def test_build_engines_option(pipeline_run, research_checkpoint, tmp_path, capsys, monkeypatch):
    assert ENGINES == ("fp16", "int8")  # the --engines names the help and docs give
    assert parse_engines("int8,FP16") == ("fp16", "int8") and parse_engines("int8") == ("int8",)
    with pytest.raises(argparse.ArgumentTypeError, match="subset of fp16,int8"):
        parse_engines("fp16,fp32")
    # --engines int8 without model.fp16.int8.onnx: one line, exit 2, the folder untouched.
    folder = copy_graphs(pipeline_run[2], tmp_path / "fp16_only", ("model.onnx", "model.fp16.onnx"))
    code = main(["build", str(research_checkpoint), "-o", str(folder), "--engines", "int8"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert "model.fp16.int8.onnx: missing; export it first with `algm-export MODEL --fp16 --int8" in err
    assert sorted(p.name for p in folder.iterdir()) == ["algm-export.json", "model.fp16.onnx", "model.onnx"]
    # --engines int8 with both graphs: only the INT8 engine is attempted; a TensorRT failure (from a fake
    # module: no real TensorRT result) lands in int8.tensorrt and parity.tensorrt_int8, exit 1.
    folder = copy_graphs(pipeline_run[2], tmp_path / "both", ("model.onnx", "model.fp16.onnx", "model.fp16.int8.onnx"))
    library = tmp_path / "libalgm_plugins.so"
    library.write_bytes(b"\x7fELF")
    monkeypatch.setattr(pipeline, "tensorrt_environment", lambda lib: (fake_tensorrt(FakeRegistry()), "GPU", library))
    requests = []

    def builder_fails(tensorrt, request, gpu):
        requests.append(request)
        raise TensorRTFailure(f"TensorRT could not build an engine from {request.strategy.graph}")

    monkeypatch.setattr(builder, "build_engine", builder_fails)
    code = main(["build", str(research_checkpoint), "-o", str(folder), "--engines", "int8"])
    out = capsys.readouterr().out
    assert code == 1, out
    assert [(r.engine_name, r.strategy.graph, r.strategy.strongly_typed) for r in requests] == [
        ("model.fp16.int8.plan", "model.fp16.int8.onnx", True)]
    report = json.loads((folder / "report.json").read_text())
    reason = "TensorRT could not build an engine from model.fp16.int8.onnx"
    assert report["int8"]["tensorrt"] == {"status": "failed", "reason": reason} and "tensorrt" not in report
    assert report["parity"] == {"tensorrt_int8": {"passed": False, "failures": [reason]}}
    assert "FP16 TensorRT engine" not in out and f"failed: {reason}" in out


def test_build_records_and_judges_a_built_int8_engine(pipeline_run, research_checkpoint, photos, tmp_path, capsys,
                                                     monkeypatch):
    """The recording and judging of a built INT8 engine. The engine is a stand-in: ONNX Runtime running
    model.fp16.int8.onnx (the graph the engine is built from); no TensorRT result is made up here."""
    from algm_export.runtime import tensorrt_backend
    from algm_export.runtime.onnxruntime_backend import OnnxRuntimeBackend
    from algm_export.verify.parity import CRITERIA

    folder = copy_graphs(pipeline_run[2], tmp_path / "out",
                         ("model.onnx", "model.fp16.onnx", "model.fp16.int8.onnx", "report.json"))
    exported = json.loads((folder / "report.json").read_text())
    library = tmp_path / "libalgm_plugins.so"
    library.write_bytes(b"\x7fELF")
    monkeypatch.setattr(pipeline, "tensorrt_environment", lambda lib: (fake_tensorrt(FakeRegistry()), "GPU", library))
    monkeypatch.setattr(builder, "build_engine", lambda tensorrt, request, gpu: request.folder / request.engine_name)
    monkeypatch.setattr(tensorrt_backend, "TensorRTBackend", lambda engine, lib, name: OnnxRuntimeBackend(
        engine.parent / "model.fp16.int8.onnx", name))
    images = tmp_path / "images"
    images.mkdir()
    Image.fromarray(photos["coffee"]).save(images / "coffee.png")  # one case: keeps the test cheap
    code = main(["build", str(research_checkpoint), "-o", str(folder), "--engines", "int8", "--images", str(images)])
    out = capsys.readouterr().out
    assert code == 0, out
    report = json.loads((folder / "report.json").read_text())
    entry = report["parity"]["tensorrt_int8"]
    assert entry["passed"] and entry["criteria"] == CRITERIA["int8"] and entry["graph"] == "model.fp16.int8.plan"
    assert [case["images"] for case in entry["cases"]] == [["coffee.png"]]
    assert report["int8"]["tensorrt"] == {"status": "built", "engine": "model.fp16.int8.plan", "gpu": "GPU",
                                          "tensorrt_version": "fake", "plugin_library": str(library)}
    # What this build did not touch stays as the export wrote it.
    assert report["tensorrt"] == exported["tensorrt"] and report["int8"]["scope"] == exported["int8"]["scope"]
    assert {name: report["parity"][name] for name in exported["parity"] if name != "tensorrt_int8"} == {
        name: value for name, value in exported["parity"].items() if name != "tensorrt_int8"}
    assert "--strongly-typed" in report["polygraphy_commands"]["tensorrt_int8 (GPU machine with TensorRT)"]
    assert set(report["polygraphy_commands"]) == set(exported["polygraphy_commands"])


class FakeBuilder:
    """Records how build_engine configures TensorRT's builder (a stand-in: it builds nothing)."""

    def __init__(self, logger):
        self.network_flags, self.parsed, self.config = None, None, None

    def create_network(self, flags):
        self.network_flags = flags
        output = types.SimpleNamespace(name="logits", shape=(-1, 150, 512, 512), dtype="DataType.FLOAT")
        return types.SimpleNamespace(num_outputs=1, get_output=lambda i: output)

    def create_builder_config(self):
        self.config = types.SimpleNamespace(
            flags=[], profiles=[], set_memory_pool_limit=lambda pool, size: None,
            set_flag=lambda flag: self.config.flags.append(flag), create_timing_cache=lambda data: data,
            set_timing_cache=lambda cache, ignore_mismatch: None,
            add_optimization_profile=lambda profile: self.config.profiles.append(profile))
        return self.config

    def create_optimization_profile(self):
        shapes = {}
        return types.SimpleNamespace(shapes=shapes, set_shape=lambda name, *sizes: shapes.update({name: sizes}))

    def build_serialized_network(self, network, config):
        return b"fake serialized engine"


def test_int8_engine_builder_configuration(pipeline_run, tmp_path, monkeypatch):
    """INT8: model.fp16.int8.onnx, stripped of its function bodies, parsed into a strongly typed network,
    no precision flag; checked on a fake ``tensorrt`` module (what TensorRT then builds is not tested here)."""
    from algm_export.trt import availability

    monkeypatch.setattr(availability, "_LOADED_LIBRARIES", {})
    folder = copy_graphs(pipeline_run[2], tmp_path / "out", ("model.fp16.int8.onnx",))
    library = tmp_path / "libalgm_plugins.so"
    library.write_bytes(b"\x7fELF")
    tensorrt = fake_tensorrt(FakeRegistry())  # TensorRT 11: STRONGLY_TYPED, no FP16 builder flag
    tensorrt.NetworkDefinitionCreationFlag.STRONGLY_TYPED = 3
    builders, parsed = [], []
    tensorrt.Logger = type("Logger", (), {"VERBOSE": 0, "WARNING": 1, "__init__": lambda self, level: None})
    tensorrt.MemoryPoolType = types.SimpleNamespace(WORKSPACE=0)
    tensorrt.Builder = lambda logger: builders.append(FakeBuilder(logger)) or builders[-1]
    tensorrt.OnnxParser = lambda network, logger: types.SimpleNamespace(
        parse=lambda data: parsed.append(onnx.load_from_string(data)) or True, num_errors=0)
    request = EngineRequest(folder, INT8_ENGINE.engine, (1, 2, 4), library,
                            strategy=strategy_for(tensorrt, INT8_ENGINE.precision))
    engine = build_engine(tensorrt, request, "FakeGPU")
    [fake], [model] = builders, parsed
    assert fake.network_flags == 1 << 3 and fake.config.flags == []
    assert [p.shapes for p in fake.config.profiles] == [{"images": ((1, 3, 512, 512), (2, 3, 512, 512),
                                                                    (4, 3, 512, 512))}]
    graph = onnx.load(folder / "model.fp16.int8.onnx")
    assert not model.functions and [n.name for n in model.graph.node] == [n.name for n in graph.graph.node]
    int8 = json.loads((pipeline_run[2] / "report.json").read_text())["int8"]["quantized_matmuls"]  # mixed precision
    assert sum(n.op_type == "QuantizeLinear" for n in model.graph.node) == int8 > 0  # the Q/DQ graph, not .fp16.onnx
    assert [n.op_type for n in model.graph.node if n.domain == "algm"] == ["LocalMerge", "GlobalMerge", "Unmerge"]
    assert engine == folder / "model.fp16.int8.plan" and engine.read_bytes() == b"fake serialized engine"
    sidecar = json.loads((folder / "model.fp16.int8.plan.json").read_text())
    assert sidecar["built_from"] == "model.fp16.int8.onnx strongly typed"
    assert sidecar["deployment"]["precision"] == "fp16-int8"


def test_engine_build_and_parity_on_gpu(pipeline_run, research_checkpoint, tmp_path, capsys):
    try:
        tensorrt_environment()
    except Unavailable as reason:
        pytest.skip(f"needs TensorRT, a GPU and the plugin library: {reason}")
    folder = tmp_path / "out"
    folder.mkdir()
    for name in ("model.onnx", "model.trt.onnx", "model.fp16.onnx"):
        (folder / name).write_bytes((pipeline_run[2] / name).read_bytes())
    code = main(["build", str(research_checkpoint), "-o", str(folder), "--batch", "1,4,8"])
    assert code == 0, capsys.readouterr().out
    report = json.loads((folder / "report.json").read_text())
    entry = report["parity"]["tensorrt_fp16"]
    assert entry["passed"] and entry["label_agreement"] >= 0.995
    sidecar = json.loads((folder / "model.fp16.plan.json").read_text())
    assert sidecar["input"]["shape"] == [-1, 3, 512, 512] and sidecar["gpu"]


class FakeRegistry:
    """Stands in for TensorRT's plugin registry: counts load_library calls, refuses duplicates as TensorRT does."""

    def __init__(self, preregistered: bool = False):
        self.loads: list[str] = []
        self.registered = preregistered

    def get_creator(self, name, version, namespace):
        return object() if self.registered and namespace == "algm" and version == "1" else None

    def load_library(self, path):
        if self.registered:
            return None  # TensorRT: duplicate creators
        self.loads.append(path)
        self.registered = True
        return object()


def fake_tensorrt(registry: FakeRegistry, strongly_typed: bool = True, fp16_flag: bool = False):
    import types

    return types.SimpleNamespace(
        get_plugin_registry=lambda: registry, __version__="fake",
        NetworkDefinitionCreationFlag=types.SimpleNamespace(**({"STRONGLY_TYPED": 0} if strongly_typed else {})),
        BuilderFlag=types.SimpleNamespace(**({"FP16": 0} if fp16_flag else {})))


def test_plugin_library_loaded_once_per_process(tmp_path, monkeypatch):
    from algm_export.trt import availability

    monkeypatch.setattr(availability, "_LOADED_LIBRARIES", {})
    library = tmp_path / "libalgm_plugins.so"
    library.write_bytes(b"\x7fELF")
    registry = FakeRegistry()
    tensorrt = fake_tensorrt(registry)
    availability.load_plugin_library(tensorrt, library)
    availability.load_plugin_library(tensorrt, tmp_path / "." / "libalgm_plugins.so")  # same resolved path
    assert registry.loads == [str(library.resolve())]
    # Creators already registered by another library (e.g. the self-registering flavour): no load at all.
    monkeypatch.setattr(availability, "_LOADED_LIBRARIES", {})
    preloaded = FakeRegistry(preregistered=True)
    availability.load_plugin_library(fake_tensorrt(preloaded), library)
    assert preloaded.loads == []
    # A load TensorRT refuses is a one-line TensorRTFailure.
    monkeypatch.setattr(availability, "_LOADED_LIBRARIES", {})
    refusing = FakeRegistry()
    refusing.get_creator = lambda *args: None
    refusing.registered = True
    with pytest.raises(availability.TensorRTFailure, match="could not load the plugin library"):
        availability.load_plugin_library(fake_tensorrt(refusing), library)


def test_tensorrt_stage_failures_are_one_line(tmp_path, monkeypatch, capsys):
    from algm_export import pipeline
    from algm_export.trt import builder
    from algm_export.trt.availability import TensorRTFailure

    library = tmp_path / "libalgm_plugins.so"
    library.write_bytes(b"\x7fELF")
    options = pipeline.TensorRTOptions(batch=(1, 1, 1))
    # A TensorRT with neither route: strategy_for raises inside the stage -> a skip, not exit 1.
    monkeypatch.setattr(pipeline, "tensorrt_environment",
                        lambda lib: (fake_tensorrt(FakeRegistry(), strongly_typed=False), "GPU", library))
    outcome = pipeline.tensorrt_stage(tmp_path, options)
    assert outcome.backend is None and "neither strongly typed" in outcome.skipped
    # A TensorRT failure (here: the parser) is recorded as a failed stage with its one-line reason.
    monkeypatch.setattr(pipeline, "tensorrt_environment", lambda lib: (fake_tensorrt(FakeRegistry()), "GPU", library))

    def parser_fails(*args):
        raise TensorRTFailure("model.fp16.onnx: TensorRT's ONNX parser failed: no importer for LocalMerge")

    monkeypatch.setattr(builder, "build_engine", parser_fails)
    outcome = pipeline.tensorrt_stage(tmp_path, options)
    parity, stage = outcome.entries()
    assert stage == {"status": "failed", "reason": outcome.failed} and not parity["passed"]
    assert "failed: model.fp16.onnx: TensorRT's ONNX parser failed" in capsys.readouterr().out


def test_loading_an_engine_imports_no_exporter():
    import subprocess
    import sys

    code = ("import sys, algm_export.runtime.tensorrt_backend; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('onnx', 'onnxscript', 'onnx_graphsurgeon') "
            "or m.startswith(('algm_export.export', 'algm_export.trt.builder'))))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_sidecar_plugin_library_is_found_from_the_engine_folder(tmp_path, monkeypatch):
    """A relative plugin_library in the sidecar is taken from the engine's folder, whatever the working directory
    (the C++ sample reads it the same way); a recorded library that is gone is searched for instead."""
    from algm_export.runtime.tensorrt_backend import recorded_plugin_library

    engines = tmp_path / "deploy"
    (engines / "lib").mkdir(parents=True)
    library = engines / "lib" / "libalgm_plugins.so"
    library.write_bytes(b"")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    engine = engines / "model.fp16.plan"
    assert recorded_plugin_library(engine, "lib/libalgm_plugins.so") == library
    assert recorded_plugin_library(engine, str(library)) == library
    assert recorded_plugin_library(engine, "gone/libalgm_plugins.so") is None
    assert recorded_plugin_library(engine, None) is None
