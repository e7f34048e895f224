"""libalgm_ort_ops.so: model.trt.onnx's algm nodes on our C++ kernels inside ONNX Runtime, on real photos.

The library comes from $ALGM_ORT_OPS (set by .ci/run) or build/plugins/; without it the tests are skipped
with that reason (build it with `cmake -S plugins -B build/plugins -Donnxruntime_ROOT=...`)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
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


def test_verify_with_our_kernels_in_onnxruntime(ort_ops, graphs_folder, research_checkpoint, capsys):
    code = main(["verify", str(research_checkpoint), "-o", str(graphs_folder), "--ort-ops", str(ort_ops)])
    printed = capsys.readouterr().out
    report = json.loads((graphs_folder / "report.json").read_text())
    entry = report["parity"]["onnxruntime_algm_ops"]
    assert code == 0, printed
    assert entry["graph"] == "model.trt.onnx" and entry["passed"], entry.get("failures")
    assert entry["max_abs_logit"] <= 1e-3 and entry["label_agreement"] >= 0.9999
    assert entry["token_count_difference"] == 0
    # The same decisions as the graph's own standard-op bodies, on every case.
    assert entry["token_counts"] == report["parity"]["onnxruntime_fp32_trt_graph"]["token_counts"]


def test_algm_nodes_run_our_kernels_not_the_function_bodies(ort_ops, graphs_folder, photo_batch):
    images = photo_batch[:2].numpy()
    ours = OnnxRuntimeBackend(graphs_folder / "model.trt.onnx", custom_ops=ort_ops,
                              profile_prefix=str(graphs_folder / "profile"))
    functions = OnnxRuntimeBackend(graphs_folder / "model.trt.onnx")
    got, expected = ours.run(images), functions.run(images)
    events = json.loads(ours.end_profiling().read_text())
    kinds = {e["args"]["op_name"] for e in events if e.get("cat") == "Node" and e["name"].startswith("algm/")}
    assert {"LocalMerge", "GlobalMerge", "Unmerge"} <= kinds  # custom-op kernels, not inlined bodies
    assert got.token_counts == expected.token_counts
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
