"""`algm-export MODEL --fp16 --int8`: the INT8 recipe, the Q/DQ graphs, parity, the calibration cache, bad input."""

from __future__ import annotations

import json
import shutil

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto
from onnxruntime.quantization import CalibrationMethod
from PIL import Image

from algm_export.artifacts import CALIBRATION_CACHE
from algm_export.calibration.images import CalibrationImages
from algm_export.calibration.int8 import Int8Settings, calibrated_ranges
from algm_export.calibration.recipe import (
    dequantized_inputs,
    linear_matmuls,
)
from algm_export.calibration.scopes import AFTER_MERGE, ALL_LINEAR
from algm_export.checkpoints.research import write_research_checkpoint
from algm_export.cli import main
from algm_export.runtime.base import Prediction
from algm_export.runtime.onnxruntime_backend import OnnxRuntimeBackend
from algm_export.runtime.torch_backend import TorchBackend
from algm_export.verify.cases import make_cases
from algm_export.verify.parity import CRITERIA, Reference, compare, decided_share, failures, label_agreement


def load(folder):
    return json.loads((folder / "report.json").read_text())


def linear_layer_counts(model) -> tuple[int, int]:
    """(all Linear layers, those upstream of the last merge) from the PyTorch model's structure."""
    used = (*model.encoder.blocks, model.decoder)  # the timm encoder's classifier head is never run
    linears = sum(isinstance(m, torch.nn.Linear) for part in used for m in part.modules())
    projections = sum(hasattr(model.decoder, p) for p in ("proj_patch", "proj_classes"))  # x @ Parameter
    per_block = sum(isinstance(m, torch.nn.Linear) for m in model.encoder.blocks[0].modules())  # qkv, proj, fc1, fc2
    last = model.algm.layers[-1]  # the merge runs between this block's attention and its MLP
    return linears + projections, (last - 1) * per_block + 2


def test_recipe_quantizes_only_linear_matmuls(pipeline_run, tiny_model):
    code, printed, folder = pipeline_run
    assert code == 0, printed
    portable, int8 = onnx.load(folder / "model.onnx"), onnx.load(folder / "model.int8.onnx")
    onnx.checker.check_model(int8, full_check=True)
    every, upstream = linear_layer_counts(tiny_model)
    assert len(linear_matmuls(portable, ALL_LINEAR)) == every == 59
    scope = linear_matmuls(portable, AFTER_MERGE)
    assert len(scope) == every - upstream == 41
    ops = {node.name: node.op_type for node in int8.graph.node}
    quantized = dequantized_inputs(int8)
    nodes = [name for name in scope if name in quantized]  # mixed precision: a subset of the scope stays INT8
    # The sample's encoder after the merge (blocks 5-12: 8 x 4 minus block 5's attention) stays INT8 whatever
    # the CPU: its MatMuls are the least sensitive (measured: the 9 most sensitive are in the decoder).
    assert set(quantized) == set(nodes) and len(nodes) >= 30 and all(ops[name] == "MatMul" for name in quantized)
    assert all(indices == [0, 1] for indices in quantized.values())  # activation and weight
    counts = {op: sum(n.op_type == op for n in int8.graph.node) for op in ("QuantizeLinear", "DequantizeLinear")}
    assert counts == {"QuantizeLinear": len(nodes), "DequantizeLinear": 2 * len(nodes)}  # no output Q/DQ
    weights = {t.name: t for t in int8.graph.initializer}
    for node in int8.graph.node:
        if node.op_type == "DequantizeLinear" and node.input[0] in weights:  # per-channel symmetric int8
            assert weights[node.input[0]].data_type == TensorProto.INT8
            assert not onnx.numpy_helper.to_array(weights[node.input[2]]).any()
    float_ops = {"LayerNormalization", "Softmax", "Erf", "TopK", "CumSum"}
    assert not [name for name in quantized if ops[name] in float_ops or name.startswith("algm/")]
    report = load(folder)["int8"]
    assert report["scope"] == AFTER_MERGE and report["scope_matmuls"] == 41 and report["linear_matmuls"] == 59
    # Mixed precision within the scope: the report's count is the graph's, the float ones are named with
    # their sensitivity, and the summary says N of M.
    mixed = report["mixed_precision"]
    assert report["quantized_matmuls"] == mixed["int8_matmuls"] == len(nodes)
    assert {entry["name"] for entry in mixed["float_matmuls"]} == set(scope) - set(nodes)
    assert all(entry["sensitivity"] > 0 and entry["reason"] for entry in mixed["float_matmuls"])
    assert report["summary"].startswith(f"{len(nodes)} of 41 MatMuls INT8") and report["summary"] in pipeline_run[1]
    assert report["calibration"]["disjoint_from_verification"] is True


def test_int8_parity_and_token_maps(pipeline_run, photo_batch):
    folder = pipeline_run[2]
    report = load(folder)
    entry = report["parity"]["onnxruntime_int8"]
    assert entry["passed"]
    assert entry["criteria"] == {"label_agreement_own_decisions": 0.99, "label_tie_own_decisions": 0.25,
                                 "label_agreement_own_decisions_exact": 0.8, "batch_label_agreement": 0.99}
    independence = entry["batch_independence"]
    assert independence and all(image["label_agreement"] >= 0.99 for image in independence)
    # Judged on the pixels PyTorch decides by more than the tie, the all-pixel agreement reported beside it.
    # Measured on AVX-512 VNNI with the research (OpenCV) resize of the verification photos: 0.9968 at worst
    # (chelsea), 1.0 on the others; 0.995 asserts the gate's headroom without sitting on the measured value.
    assert all(c["label_agreement_own_decisions"] >= 0.995 for c in entry["cases"])
    assert all(0.8 <= c["label_agreement_own_decisions_exact"] <= c["label_agreement_own_decisions"]
               for c in entry["cases"])
    assert all(0 < c["decided_share"] < 1 for c in entry["cases"])
    assert entry["token_counts"] == entry["reference_token_counts"]
    # after-merge: nothing a merge decision depends on is quantized, so the maps are the FP32 graph's.
    images = photo_batch.numpy()
    fp32, int8 = OnnxRuntimeBackend(folder / "model.onnx"), OnnxRuntimeBackend(folder / "model.int8.onnx")
    assert int8.info.precision == "int8"
    for index in range(len(images)):
        expected, got = fp32.run(images[index:index + 1]), int8.run(images[index:index + 1])
        assert np.array_equal(expected.token_maps, got.token_maps)
        # quantized, not a copy of FP32: INT8 rounding (measured max 0.2-0.6) is far above FP32 rounding (~1e-5)
        assert np.abs(expected.scores - got.scores).max() > 1e-2
    assert "onnxruntime_int8" in report["polygraphy_commands"]
    # the weight check ran on both Q/DQ graphs against their float graphs and found every weight within half a step
    # (plus FP16 rounding for model.fp16.int8.onnx): deterministic, whatever the CPU
    for name, against in (("onnxruntime_int8", "model.onnx"), ("onnxruntime_fp16_int8", "model.fp16.onnx")):
        weights = report["parity"][name]["int8_weights"]
        assert weights["checked"] and weights["against"] == against and not weights["problems"], weights
        assert weights["matmuls"] == report["int8"]["quantized_matmuls"] and weights["worst_steps"] <= 0.65
    assert report["int8"]["smoothing"] == {"alpha": 0, "layer_norms": 0}  # --smooth-alpha is off by default
    assert "model.int8.onnx" in report["polygraphy_commands"]["onnxruntime_int8"]


def test_int8_criterion_fails_below_099_or_below_the_floor():
    case = {"images": ["astronaut"], "batch": 1, "problems": [], "required_epsilon": 0.5, "max_abs_logit": 2.0,
            "label_agreement": 0.5, "label_agreement_own_decisions": 0.985, "label_agreement_own_decisions_exact": 0.9}
    entry = {"criteria": CRITERIA["int8"], "cases": [case]}
    assert failures(entry) == ["astronaut: label agreement with PyTorch's own decisions (ties within 0.25 agreeing) "
                               "0.98500 < 0.99"]
    fine = {**case, "label_agreement_own_decisions": 0.995}
    assert failures({**entry, "cases": [fine]}) == []
    assert failures({**entry, "cases": [{**fine, "label_agreement_own_decisions_exact": 0.7}]}) == [
        "astronaut: all-pixel label agreement with PyTorch's own decisions 0.70000 < 0.8"]


def test_tie_rule_counts_only_near_ties():
    """A pixel whose label is within the tie of PyTorch's top logit agrees; a decided pixel must match."""
    reference = np.zeros((1, 3, 1, 4), np.float32)
    # [classes, pixels]: PyTorch picks classes 0, 0, 0, 2 with margins 0.1, 0.5, 0.1, 1.0
    reference[0, :, 0, :] = [[1.0, 1.0, 1.0, 0.0], [0.9, 0.5, 0.0, 0.0], [0.0, 0.0, 0.9, 1.0]]
    labels = np.array([[[1, 1, 0, 0]]])  # pixel 0: a near-tie (0.1 below), 1: wrong by 0.5, 2: right, 3: wrong by 1
    assert label_agreement(labels, reference) == 0.25
    assert label_agreement(labels, reference, 0.25) == 0.5
    assert decided_share(reference, 0.25) == 0.5


class PermutedClasses(OnnxRuntimeBackend):
    """Garbage: the INT8 graph's scores with the classes shuffled (plausible values, wrong labels)."""

    def _run(self, images, outputs):
        prediction = super()._run(images, outputs)
        order = np.random.default_rng(0).permutation(prediction.outputs["scores"].shape[1])
        scores = prediction.outputs["scores"][:, order]
        return Prediction({"scores": scores}, prediction.token_counts, prediction.token_maps)


def damaged(folder, tmp_path, factor: float, only: str | None = None):
    """model.int8.onnx with the weight scales (their DequantizeLinear) of every INT8 MatMul, or of the MatMul ``only``,
    multiplied by ``factor`` (a wrong scale in the recipe, e.g. amax / 255 instead of amax / 127: factor 0.5), written
    beside a copy of model.onnx, as in an exported folder."""
    model = onnx.load(folder / "model.int8.onnx")
    values = {t.name: t for t in model.graph.initializer}
    int8_values = {name for name, value in values.items() if value.data_type == TensorProto.INT8}
    weight_dequantize = {node.output[0]: node for node in model.graph.node
                         if node.op_type == "DequantizeLinear" and node.input[0] in int8_values}
    for node in model.graph.node:
        if node.op_type == "MatMul" and node.input[1] in weight_dequantize and only in (None, node.name):
            scale = values[weight_dequantize[node.input[1]].input[1]]
            scale.CopyFrom(onnx.numpy_helper.from_array(onnx.numpy_helper.to_array(scale) * np.float32(factor),
                                                        scale.name))
    out = tmp_path / f"damaged_{factor}_{only}"
    out.mkdir()
    shutil.copy(folder / "model.onnx", out)
    onnx.save(model, out / "model.int8.onnx")
    return out / "model.int8.onnx"


def test_damaged_or_garbage_int8_fails(pipeline_run, tmp_path, tiny_model, photos):
    """The tie rule must not let a wrong graph through: weight scales off by 2x on every INT8 MatMul (measured: labels
    0.62 on coffee) fail, and so do shuffled classes; the intact graph passes on the same photo."""
    folder = pipeline_run[2]
    cases = make_cases({"coffee": photos["coffee"]}, (512, 512), tiny_model.config.normalization, 1)
    reference = Reference.run(TorchBackend(tiny_model, (512, 512)), cases)
    intact = compare(reference, OnnxRuntimeBackend(folder / "model.int8.onnx"), "int8", "model.int8.onnx")
    assert intact["passed"], intact["failures"]
    # the weight check: every INT8 weight within half a step of model.onnx's (times the smoothing factor)
    assert intact["int8_weights"]["checked"] and 0.45 < intact["int8_weights"]["worst_steps"] <= 0.5 + 1e-4
    for backend in (OnnxRuntimeBackend(damaged(folder, tmp_path, 0.5)), PermutedClasses(folder / "model.int8.onnx")):
        entry = compare(reference, backend, "int8", "model.int8.onnx")
        assert not entry["passed"] and entry["label_agreement_own_decisions"] < 0.9, entry["failures"]


def test_a_wrong_scale_on_one_matmul_fails(pipeline_run, tmp_path, tiny_model, photos):
    """A 2x weight scale on ONE MatMul: depending on the MatMul, the sample's tie-aware labels stay at 0.93-0.999 on
    the 4 photos (measured one MatMul at a time, docs/int8.md), so labels cannot be relied on to catch it; the weight
    check does (63 INT8 steps off vs <= 0.5 intact), on any CPU: it reads no output."""
    folder = pipeline_run[2]
    int8 = onnx.load(folder / "model.int8.onnx")
    quantized = [node.name for node in int8.graph.node if node.name in dequantized_inputs(int8)]
    target = quantized[len(quantized) // 2]
    cases = make_cases({"coffee": photos["coffee"]}, (512, 512), tiny_model.config.normalization, 1)
    reference = Reference.run(TorchBackend(tiny_model, (512, 512)), cases)
    entry = compare(reference, OnnxRuntimeBackend(damaged(folder, tmp_path, 2.0, target)), "int8", "model.int8.onnx")
    assert not entry["passed"]
    assert entry["failures"][0].startswith(
        f"INT8 weights of 1 MatMul(s) do not reproduce model.onnx's: {target} is off")
    assert entry["int8_weights"]["worst"] == target and entry["int8_weights"]["worst_steps"] > 60
    # a renamed copy has no float graph to compare with: reported as not checked, judged on the outputs only
    lone = tmp_path / "lone"
    lone.mkdir()
    shutil.copy(folder / "model.int8.onnx", lone / "copy.onnx")
    alone = compare(reference, OnnxRuntimeBackend(lone / "copy.onnx"), "int8", "copy.onnx")
    assert alone["int8_weights"] == {"checked": False, "reason": "no float graph beside copy.onnx", "problems": []}
    assert alone["passed"]


def save_photos(folder, photos, names):
    folder.mkdir(exist_ok=True)
    for name in names:
        Image.fromarray(photos[name][::4, ::4]).save(folder / f"{name}.png")
    return folder


def test_calibration_cache_reused_and_invalidated(pipeline_run, tmp_path, photos):
    folder = pipeline_run[2]
    assert (folder / CALIBRATION_CACHE).is_file() and "calibrated on 4 images" in pipeline_run[1]
    work = tmp_path / "out"
    work.mkdir()
    shutil.copy(folder / "model.onnx", work)
    images = save_photos(tmp_path / "calib", photos, ["coffee"])
    first, reused = calibrated_ranges(work, CalibrationImages.select(images, None))
    assert not reused and json.loads((work / CALIBRATION_CACHE).read_text())["images"]["names"] == ["coffee.png"]
    again, reused = calibrated_ranges(work, CalibrationImages.select(images, None))
    assert reused and again.keys() == first.keys()
    save_photos(images, photos, ["rocket"])  # another image: recalibrated
    changed, reused = calibrated_ranges(work, CalibrationImages.select(images, None))
    assert not reused and any(changed[k].range_value[1] != first[k].range_value[1] for k in first.keys())
    # only coffee.png again
    assert calibrated_ranges(work, CalibrationImages.select(images, None).readable(1))[1] is False
    model = onnx.load(work / "model.onnx")
    onnx.helper.set_model_props(model, {**{p.key: p.value for p in model.metadata_props}, "note": "edited"})
    onnx.save(model, work / "model.onnx")  # another graph: recalibrated
    assert calibrated_ranges(work, CalibrationImages.select(images, None).readable(1))[1] is False
    assert calibrated_ranges(work, CalibrationImages.select(images, None).readable(1))[1] is True
    # --calib-method: another method is another cache key, and gives other ranges (percentile clips the extremes)
    minmax = calibrated_ranges(work, CalibrationImages.select(images, None).readable(1))[0]
    percentile, reused = calibrated_ranges(work, CalibrationImages.select(images, None).readable(1), "percentile")
    assert not reused and percentile.calibration_method == CalibrationMethod.Percentile
    assert any(abs(percentile[k].range_value[1]) < abs(minmax[k].range_value[1]) for k in minmax.keys())
    assert calibrated_ranges(work, CalibrationImages.select(images, None).readable(1), "percentile")[1] is True


@pytest.mark.parametrize("argv, message", [
    (["--int8", "--calib-images", "{tmp}/missing"], "not a folder of images"),
    (["--int8", "--calib-images", "{tmp}/empty"], "contains no readable images"),
    (["--int8", "--calib-images", "{tmp}/not_images"], "not_images: contains no readable images"),
    (["--int8", "--calib-count", "0"], "--calib-count must be >= 1, got 0"),
    (["--int8", "--int8-scope", "bogus"], "--int8-scope must be one of after-merge, all-linear, got 'bogus'"),
    (["--int8", "--calib-method", "max"], "--calib-method must be one of minmax, percentile, entropy, got 'max'"),
    (["--calib-count", "5"], "need --int8"),
    (["--calib-method", "entropy"], "need --int8"),
    (["--int8", "--smooth-alpha", "1"], "--smooth-alpha must be in [0, 1) (0: no smoothing), got 1"),
    (["--smooth-alpha", "0.5"], "need --int8"),
])
def test_int8_bad_input(research_checkpoint, tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    (tmp_path / "not_images").mkdir()
    (tmp_path / "not_images" / "notes.txt").write_text("not a picture")
    before = sorted(p.name for p in tmp_path.iterdir())
    code = main([str(research_checkpoint), "-o", "out", *[a.format(tmp=tmp_path) for a in argv]])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and message in lines[-1], lines  # one error line, after the notes of skipped files
    assert all(line.startswith("note: skipping") for line in lines[:-1]), lines
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_unreadable_calibration_files_are_skipped_with_a_note(tmp_path, photos, capsys):
    """Like --images: a bad file among a deployment's few hundred images does not stop the run; --calib-count
    counts readable images, and a note says when fewer exist."""
    save_photos(tmp_path, photos, ["astronaut", "chelsea", "coffee"])
    (tmp_path / "0_damaged.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    (tmp_path / "1_text.jpg").write_text("not a picture")
    chosen = Int8Settings(images=tmp_path, count=2).calibration_images()
    err = capsys.readouterr().err
    assert chosen.names == ("astronaut.png", "chelsea.png") and chosen.files == (tmp_path / "astronaut.png",
                                                                               tmp_path / "chelsea.png")
    assert "note: skipping" in err and "0_damaged.png" in err and "1_text.jpg" in err
    everything = Int8Settings(images=tmp_path, count=10).calibration_images()
    assert len(everything.names) == 3
    assert f"note: --calib-count 10: {tmp_path} has 3 readable images" in capsys.readouterr().err
    bundled = Int8Settings(count=10).calibration_images()
    assert len(bundled.names) == 4 and not set(bundled.names) & set(photos)  # the bundled calibration photos
    assert bundled.disjoint_from(photos) and not chosen.disjoint_from({"x": photos["chelsea"][::4, ::4]})


@pytest.mark.slow  # ViT-S/16: export, 41 sensitivity sessions, bisection, verification: ~6 minutes on 2 cores
def test_research_vit_small_with_a_random_head_passes_with_mixed_precision(tmp_path, capsys):
    """Issue 21: a research-format ViT-S/16 (random encoder and head: near-flat logits) failed every photo with
    all 41 after-merge MatMuls INT8. Mixed precision keeps the sensitive ones float, the tie-aware verdict passes,
    and at least every encoder MatMul after the merge stays INT8."""
    from sample_models import make_sample_segmenter

    model = make_sample_segmenter("small", fit_steps=0)
    checkpoint = write_research_checkpoint(tmp_path / "vit_small", model.config, model.algm, model.state_dict())
    code = main([str(checkpoint), "--int8", "-o", str(tmp_path / "out")])
    printed = capsys.readouterr().out
    assert code == 0, printed
    report = load(tmp_path / "out")
    scope = linear_matmuls(onnx.load(tmp_path / "out" / "model.onnx"), AFTER_MERGE)
    int8 = set(dequantized_inputs(onnx.load(tmp_path / "out" / "model.int8.onnx")))
    per_block = sum(isinstance(m, torch.nn.Linear) for m in model.encoder.blocks[0].modules())
    encoder_after_merge = (len(model.encoder.blocks) - model.algm.layers[-1]) * per_block + 2  # + the merge block's MLP
    assert len(scope) == 41 and set(scope[:encoder_after_merge]) <= int8  # graph order: the encoder comes first
    mixed = report["int8"]["mixed_precision"]
    assert mixed["int8_matmuls"] == len(int8) and {e["name"] for e in mixed["float_matmuls"]} == set(scope) - int8
    assert all(e["sensitivity"] > 0 for e in mixed["float_matmuls"])
    assert f"INT8: {len(int8)} of 41 MatMuls INT8" in printed
    entry = report["parity"]["onnxruntime_int8"]
    assert entry["passed"] and all(c["label_agreement_own_decisions"] >= 0.995 for c in entry["cases"])
