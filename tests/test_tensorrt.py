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
