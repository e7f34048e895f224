"""libalgm_ort_ops.so: model.trt.onnx's algm nodes on our C++ kernels inside ONNX Runtime, on real photos.

The library comes from $ALGM_ORT_OPS (set by .ci/run) or build/plugins/; without it the tests are skipped
with that reason (build it with `cmake -S plugins -B build/plugins -Donnxruntime_ROOT=...`)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest

from algm_export.cli import main
from algm_export.errors import AlgmExportError
from algm_export.runtime.onnxruntime_backend import OnnxRuntimeBackend


@pytest.fixture(scope="module")
def graphs_folder(pipeline_run, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("ort_ops") / "out"
    folder.mkdir()
    for name in ("model.onnx", "model.trt.onnx"):
        shutil.copy(pipeline_run[2] / name, folder / name)
    return folder


def published_rule(source: Path, target: Path) -> Path:
    """``source`` (model.trt.onnx) with its merge nodes and metadata switched to the published batch rule
    (per_image = 0); the kernels and the function bodies both follow the attribute."""
    model = onnx.load(source)
    for node in model.graph.node:
        for attribute in node.attribute:
            if attribute.name == "per_image":
                attribute.i = 0
    entry = next(p for p in model.metadata_props if p.key == "algm_export")
    data = json.loads(entry.value)
    data["algm"]["batch_rule"] = "min"
    entry.value = json.dumps(data)
    onnx.save(model, target)
    return target


@pytest.mark.slow  # a whole verification (~80 s on 2 cores)
def test_default_export_verifies_on_our_kernels(ort_ops, graphs_folder, research_checkpoint, capsys):
    """The default (per-image) export through --ort-ops: every parity criterion passes, criterion 4 (an image
    in a mixed batch gets its batch-1 result) included."""
    code = main(["verify", str(research_checkpoint), "-o", str(graphs_folder), "--ort-ops", str(ort_ops)])
    capsys.readouterr()
    report = json.loads((graphs_folder / "report.json").read_text())
    assert report["model_summary"]["algm"]["batch_rule"] == "per-image"
    entry = report["parity"]["onnxruntime_algm_ops"]
    assert code == 0 and entry["passed"], entry["failures"]


@pytest.mark.parametrize("rule", ["per-image", "min"])
def test_algm_nodes_run_our_kernels_not_the_function_bodies(ort_ops, graphs_folder, photo_batch, rule):
    """model.trt.onnx's algm nodes on our kernels against the same graph on its function bodies (standard ops;
    the same graph, so that the merges see the same input bits) on three photos in one batch: the same
    per-image token counts and maps, the same labels. (The rocket photo is left out: two of its sky windows'
    similarities lie 2e-9 apart, below float32 resolution, so their order, and with it the slots, follows each
    runtime's summation order; verification judges such near-ties with its decision epsilon.)"""
    images = photo_batch[:3].numpy()
    graph = graphs_folder / "model.trt.onnx"
    if rule == "min":
        graph = published_rule(graph, graphs_folder / "model.min.trt.onnx")
    ours = OnnxRuntimeBackend(graph, custom_ops=ort_ops, profile_prefix=str(graphs_folder / f"profile-{rule}"))
    got, expected = ours.run(images), OnnxRuntimeBackend(graph).run(images)
    events = json.loads(ours.end_profiling()[0].read_text())
    kinds = {e["args"]["op_name"] for e in events if e.get("cat") == "Node" and e["name"].startswith("algm/")}
    assert {"LocalMerge", "GlobalMerge", "Unmerge"} <= kinds  # custom-op kernels, not inlined bodies
    np.testing.assert_array_equal(got.token_counts, expected.token_counts)
    np.testing.assert_array_equal(got.token_maps, expected.token_maps)
    distinct = {tuple(row) for row in got.token_counts}
    assert len(distinct) == (len(images) if rule == "per-image" else 1)  # per image, the photos' counts differ
    assert (got.labels() == expected.labels()).mean() >= 0.9999
    assert np.abs(got.scores - expected.scores).max() <= 1e-4
    # The backend strips the function bodies, so without the library's kernels the graph cannot run at all:
    # no silent fallback to the standard-op bodies.
    import onnxruntime as ort

    from algm_export.export.graph_edits import strip_functions

    stripped = strip_functions(onnx.load(graph)).SerializeToString()
    with pytest.raises(Exception, match="algm"):
        ort.InferenceSession(stripped, providers=["CPUExecutionProvider"])
    with pytest.raises(AlgmExportError, match="cannot load it as a custom-op library"):
        OnnxRuntimeBackend(graphs_folder / "model.trt.onnx", custom_ops=graphs_folder / "model.onnx")


def test_a_bad_batch_rule_attribute_is_one_line(ort_ops, graphs_folder):
    model = onnx.load(graphs_folder / "model.trt.onnx")
    next(a for n in model.graph.node for a in n.attribute if a.name == "per_image").i = 2
    onnx.save(model, graphs_folder / "model.bad.trt.onnx")
    with pytest.raises(AlgmExportError, match=r"'per_image' = 2 is out of range \[0, 1\]"):  # the shared wording
        backend = OnnxRuntimeBackend(graphs_folder / "model.bad.trt.onnx", custom_ops=ort_ops)
        backend.run(np.zeros((1, 3, 512, 512), np.float32))


def test_missing_library_is_one_line(graphs_folder, research_checkpoint, capsys):
    code = main(["verify", str(research_checkpoint), "-o", str(graphs_folder), "--ort-ops", "/nonexistent/lib.so"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "--ort-ops /nonexistent/lib.so: no such file" in err


def test_predict_runs_our_kernels_through_the_pruned_session(ort_ops, graphs_folder, photos, tmp_path, capsys):
    """The sliding window asks for one output, so ONNX Runtime runs a pruned copy of the graph: that copy keeps
    the custom-op library (the profile names our kernels, not the inlined function bodies), and `predict
    --ort-ops` names the backend as report.json does."""
    from algm_export.runtime import segment

    backend = OnnxRuntimeBackend(graphs_folder / "model.trt.onnx", custom_ops=ort_ops,
                                 profile_prefix=str(tmp_path / "profile"))
    assert backend.name == "onnxruntime_algm_ops"
    segment(backend, [photos["astronaut"][:200, :300]])
    traces = backend.end_profiling()
    assert len(traces) == 2, "the graph's own session and the pruned one"
    events = json.loads(traces[1].read_text())
    kinds = {e["args"]["op_name"] for e in events if e.get("cat") == "Node" and e["name"].startswith("algm/")}
    assert {"LocalMerge", "GlobalMerge", "Unmerge"} <= kinds, kinds
    from PIL import Image

    Image.fromarray(photos["astronaut"][:200, :300]).save(tmp_path / "crop.png")
    code = main(["predict", str(graphs_folder / "model.trt.onnx"), str(tmp_path / "crop.png"), "-o",
                 str(tmp_path / "labels"), "--ort-ops", str(ort_ops)])
    printed = capsys.readouterr().out
    assert code == 0 and "with onnxruntime_algm_ops" in printed, printed
    assert (tmp_path / "labels" / "crop.png").is_file()


def test_backend_names_follow_the_report(graphs_folder):
    assert OnnxRuntimeBackend(graphs_folder / "model.trt.onnx").name == "onnxruntime_fp32_trt_graph"
    assert OnnxRuntimeBackend(graphs_folder / "model.onnx").name == "onnxruntime_fp32"


def test_ort_ops_on_a_checkpoint_is_one_line(ort_ops, research_checkpoint, photos, tmp_path, capsys):
    from PIL import Image

    Image.fromarray(photos["coffee"][:64, :64]).save(tmp_path / "coffee.png")
    code = main(["predict", str(research_checkpoint), str(tmp_path / "coffee.png"), "--ort-ops", str(ort_ops), "-o",
                 str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "is not an ONNX graph" in err, err
    assert not (tmp_path / "out").exists()
