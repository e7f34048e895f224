"""The TensorRT layer. What needs TensorRT and a GPU is skipped with its reason here; the rest
(route choice, plugin-library search, graph stripping, the skip path of `algm-export build`) runs."""

from __future__ import annotations

import json

import onnx
import pytest

from algm_export.cli import main
from algm_export.export.graph_edits import strip_functions
from algm_export.trt.availability import Unavailable, find_plugin_library, tensorrt_environment
from algm_export.trt.strategy import choose_strategy


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


def test_build_command_without_tensorrt_reports_skip(pipeline_run, research_checkpoint, tmp_path, capsys):
    try:
        tensorrt_environment()
    except Unavailable:
        pass
    else:
        pytest.skip("TensorRT, a GPU and the plugin library are present: the skip path does not apply")
    folder = tmp_path / "out"
    folder.mkdir()
    for name in ("model.onnx", "model.fp16.onnx"):
        (folder / name).write_bytes((pipeline_run[2] / name).read_bytes())
    code = main(["build", str(research_checkpoint), "-o", str(folder)])
    out = capsys.readouterr().out
    assert code == 0 and "skipped:" in out
    report = json.loads((folder / "report.json").read_text())
    assert report["tensorrt"]["status"] == "skipped" and report["parity"]["tensorrt_fp16"]["skipped"]


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
