"""`algm-export MODEL --fp16`: report, parity on real photos, polygraphy, verify, bad input."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess

import numpy as np
import pytest

from algm_export.cli import main
from algm_export.files import write_marker
from algm_export.photos import SAMPLE_PHOTOS

PARITY_KEYS = {"max_abs_logit", "mean_abs_logit", "label_agreement", "token_counts", "reference_token_counts",
               "passed"}


def load(folder):
    return json.loads((folder / "report.json").read_text())


def test_pipeline_outputs_and_parity(pipeline_run):
    code, printed, folder = pipeline_run
    assert code == 0, printed
    for name in ("model.onnx", "model.trt.onnx", "model.fp16.onnx", "report.json", "torch_outputs.json",
                 "polygraphy_data_loader.py", "polygraphy_postprocess.py", "polygraphy_inputs.npz"):
        assert (folder / name).is_file(), name
    assert not list(folder.glob("*.partial")) and not list(folder.glob(".*"))
    report = load(folder)
    parity = report["parity"]
    assert set(parity) == {"onnxruntime_fp32", "onnxruntime_fp32_trt_graph", "onnxruntime_fp16", "tensorrt_fp16",
                           "onnxruntime_int8", "onnxruntime_fp16_int8", "tensorrt_int8"}
    parity = {k: v for k, v in parity.items() if "int8" not in k}  # INT8: tests/test_int8.py
    if report["tensorrt"]["status"] == "skipped":  # no TensorRT/GPU: the stage says why, the run still succeeds
        assert parity.pop("tensorrt_fp16") == {"skipped": report["tensorrt"]["reason"]}
        assert "TensorRT" in report["tensorrt"]["reason"] and f"skipped: {report['tensorrt']['reason']}" in printed
    else:
        assert report["tensorrt"]["status"] == "built" and (folder / "model.fp16.plan").is_file()
    for name, entry in parity.items():
        assert PARITY_KEYS <= set(entry) and entry["passed"], (name, entry["failures"])
        cases = entry["cases"]
        assert [c["images"] for c in cases] == [[n] for n in SAMPLE_PHOTOS] + [list(SAMPLE_PHOTOS)]
    for name in ("onnxruntime_fp32", "onnxruntime_fp32_trt_graph"):
        entry = parity[name]
        assert entry["max_abs_logit"] <= 1e-3 and entry["label_agreement"] >= 0.9999
        assert entry["required_epsilon"] <= entry["criteria"]["decision_epsilon"]
        assert all(len(case["merges"]) == 2 for case in entry["cases"])
    *singles, mixed = parity["onnxruntime_fp32"]["reference_token_counts"]
    counts = [c[0] for c in singles]
    assert len({tuple(c) for c in counts}) >= 4, "token counts should differ between photos"
    assert all(c[0] < 1025 and c[1] < c[0] for c in counts)
    assert mixed == counts, "per image: each photo of the mixed batch keeps its own counts"
    for name, entry in parity.items():
        assert [i["image"] for i in entry["batch_independence"]] == list(SAMPLE_PHOTOS), name
    assert parity["onnxruntime_fp16"]["label_agreement"] >= 0.995
    assert "token_count_difference" in parity["onnxruntime_fp16"]
    assert "onnxruntime_fp16" in printed and "passed" in printed and "polygraphy run" in printed


def test_polygraphy_cli_confirms_parity(pipeline_run):
    folder = pipeline_run[2]
    command = load(folder)["polygraphy_commands"]["onnxruntime_fp32"]
    assert shutil.which("polygraphy")
    result = subprocess.run(shlex.split(command), capture_output=True, text=True, timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "PASSED" in output and "labels" in output and "token_counts" in output


def test_polygraphy_cli_catches_a_wrong_graph(pipeline_run, tmp_path):
    """The printed polygraphy command fails on a graph whose logits are wrong (N(0, 0.05) noise added to its
    largest weight matrix), run with the original inputs and PyTorch's outputs."""
    import onnx

    folder = pipeline_run[2]
    command = load(folder)["polygraphy_commands"]["onnxruntime_fp32"]
    graph = onnx.load(str(folder / "model.onnx"))
    weights = max((t for t in graph.graph.initializer if len(t.dims) == 2), key=lambda t: t.dims[0] * t.dims[1])
    values = onnx.numpy_helper.to_array(weights)
    noisy = values + np.random.default_rng(0).normal(0, 0.05, values.shape).astype(values.dtype)
    weights.CopyFrom(onnx.numpy_helper.from_array(noisy, weights.name))
    onnx.save(graph, str(tmp_path / "wrong.onnx"))
    command = command.replace(str(folder / "model.onnx"), str(tmp_path / "wrong.onnx"))
    assert str(tmp_path / "wrong.onnx") in command
    result = subprocess.run(shlex.split(command), capture_output=True, text=True, timeout=600)
    assert result.returncode != 0
    assert "FAILED" in result.stdout + result.stderr


def copy_graphs(folder, target, names=("model.onnx", "model.trt.onnx")):
    """Part of an export folder: ``names`` copied, with a marker listing them (the export wrote them)."""
    target.mkdir()
    for name in names:
        shutil.copy(folder / name, target)
    write_marker(target, names=names)
    return target


def test_verify_subcommand(pipeline_run, research_checkpoint, capsys, tmp_path):
    """verify re-judges the graphs present and keeps the engines' entries (here: skipped, with the reason)."""
    folder = copy_graphs(pipeline_run[2], tmp_path / "out", ("model.onnx", "model.trt.onnx", "report.json"))
    engines = {name: entry for name, entry in load(folder)["parity"].items() if name.startswith("tensorrt_")}
    assert engines and all(entry.get("skipped") for entry in engines.values())
    code = main(["verify", str(research_checkpoint), "-o", str(folder), "--verify-batch", "3"])
    out = capsys.readouterr().out
    assert code == 0, out
    for entry in engines.values():  # the table says why each kept engine entry was skipped
        assert f"skipped: {entry['skipped'][:40]}" in out, out
    report = load(folder)
    assert report["verification_cases"][-1] == list(SAMPLE_PHOTOS[:3])
    assert set(report["parity"]) == {"onnxruntime_fp32", "onnxruntime_fp32_trt_graph", *engines}
    assert {name: report["parity"][name] for name in engines} == engines
    assert all(entry["passed"] for name, entry in report["parity"].items() if name not in engines)


def test_verify_refuses_a_model_that_disagrees_with_the_graphs(pipeline_run, research_checkpoint, capsys, tmp_path,
                                                               photos):
    from PIL import Image

    images = tmp_path / "images"
    images.mkdir()
    for name in ("coffee", "rocket"):
        Image.fromarray(photos[name]).save(images / f"{name}.jpg", quality=95)
    work = copy_graphs(pipeline_run[2], tmp_path / "out", ("model.onnx",))
    code = main(["verify", str(research_checkpoint), "-o", str(work), "--images", str(images), "--threshold", "0.95"])
    err = capsys.readouterr().err
    assert code == 2 and "ALGM threshold: graph 0.88, MODEL and flags 0.95" in err  # the graphs merge at 0.88
    assert sorted(p.name for p in work.iterdir()) == ["algm-export.json", "model.onnx"]


@pytest.mark.parametrize("argv, message", [
    (["-o", "{tmp}/missing/deeper/out"], "does not exist"),
    (["-o", "/proc/algm_export_test"], "cannot write to /proc"),
    (["--images", "{tmp}/no_such_folder"], "not a folder of images"),
    (["--images", "{tmp}/not_images"], "contains no readable images"),
    (["--verify-batch", "0"], "--verify-batch must be >= 1"),
])
def test_pipeline_bad_input(research_checkpoint, tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "not_images").mkdir()
    (tmp_path / "not_images" / "notes.txt").write_text("not a picture")
    before = sorted(p.name for p in tmp_path.iterdir())
    code = main([str(research_checkpoint), *[a.format(tmp=tmp_path) for a in argv]])
    err = capsys.readouterr().err
    notes = [line for line in err.splitlines() if line.startswith("note: skipping")]  # non-images are skipped
    assert code == 2 and message in err and err.count("\n") == 1 + len(notes), err
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_verify_bad_input(pipeline_run, research_checkpoint, tmp_path, capsys):
    code = main(["verify", str(research_checkpoint), "-o", str(tmp_path)])
    assert code == 2 and "model.onnx: missing; export first" in capsys.readouterr().err
    (tmp_path / "model.onnx").write_text("this is not a graph")
    code = main(["verify", str(research_checkpoint), "-o", str(tmp_path)])
    assert code == 2 and "model.onnx: not a readable ONNX graph" in capsys.readouterr().err
    code = main(["verify", str(research_checkpoint), "-o", str(pipeline_run[2]), "--image-size", "256"])
    assert code == 2 and "image size: graph 512x512, --image-size 256x256" in capsys.readouterr().err
