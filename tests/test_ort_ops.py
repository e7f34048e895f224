"""libalgm_ort_ops.so: model.trt.onnx's algm nodes on our C++ kernels inside ONNX Runtime, on real photos.

The library comes from $ALGM_ORT_OPS (set by .ci/run) or build/plugins/; without it the tests are skipped
with that reason (build it with `cmake -S plugins -B build/plugins -Donnxruntime_ROOT=...`)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest

from algm_export.cli import main
from algm_export.errors import AlgmExportError
from algm_export.runtime.onnxruntime_backend import OnnxRuntimeBackend

LIBRARY = Path(os.environ.get("ALGM_ORT_OPS", Path(__file__).resolve().parents[1] / "build/plugins/libalgm_ort_ops.so"))


@pytest.fixture(scope="module")
def ort_ops() -> Path:
    if not LIBRARY.is_file():
        pytest.skip(f"libalgm_ort_ops.so is not built ({LIBRARY} missing; set ALGM_ORT_OPS or build plugins/ "
                    "with -Donnxruntime_ROOT=...)")
    return LIBRARY


@pytest.fixture(scope="module")
def graphs_folder(pipeline_run, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("ort_ops") / "out"
    folder.mkdir()
    for name in ("model.onnx", "model.trt.onnx"):
        shutil.copy(pipeline_run[2] / name, folder / name)
    return folder


def published_rule(source: Path, target: Path) -> Path:
    """``source`` (model.trt.onnx) with its merge nodes and metadata switched to the published batch rule
    (per_image = 0), the rule the C++ kernels implement; the function bodies follow the attribute."""
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


def test_per_image_graphs_are_refused_by_our_kernels(ort_ops, graphs_folder, research_checkpoint, capsys):
    """The kernels implement the published rule only: a per-image node (the default export) is refused in
    one line, never run with the other rule."""
    code = main(["verify", str(research_checkpoint), "-o", str(graphs_folder), "--ort-ops", str(ort_ops)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "per_image = 1 (per-image merging) is not implemented" in err


def test_algm_nodes_run_our_kernels_not_the_function_bodies(ort_ops, graphs_folder, photo_batch):
    images = photo_batch[:2].numpy()
    graph = published_rule(graphs_folder / "model.trt.onnx", graphs_folder / "model.min.trt.onnx")
    ours = OnnxRuntimeBackend(graph, custom_ops=ort_ops, profile_prefix=str(graphs_folder / "profile"))
    functions = OnnxRuntimeBackend(graph)
    got, expected = ours.run(images), functions.run(images)
    events = json.loads(ours.end_profiling().read_text())
    kinds = {e["args"]["op_name"] for e in events if e.get("cat") == "Node" and e["name"].startswith("algm/")}
    assert {"LocalMerge", "GlobalMerge", "Unmerge"} <= kinds  # custom-op kernels, not inlined bodies
    np.testing.assert_array_equal(got.token_counts, expected.token_counts)
    np.testing.assert_array_equal(got.token_maps, expected.token_maps)
    assert np.array_equal(got.labels(), expected.labels())
    assert np.abs(got.scores - expected.scores).max() <= 1e-4
    # Without the library the stripped graph has nothing to run its algm nodes with: no silent fallback.
    with pytest.raises(AlgmExportError, match="ONNX Runtime cannot load it"):
        OnnxRuntimeBackend(graphs_folder / "model.trt.onnx", custom_ops=graphs_folder / "model.onnx")


def test_missing_library_is_one_line(graphs_folder, research_checkpoint, capsys):
    code = main(["verify", str(research_checkpoint), "-o", str(graphs_folder), "--ort-ops", "/nonexistent/lib.so"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "--ort-ops /nonexistent/lib.so: no such file" in err
