"""SmoothQuant-style smoothing (calibration/smoothing.py): the smoothed FP32 graph computes what the FP32 graph does."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from algm_export.calibration.recipe import linear_matmuls, without_unused
from algm_export.calibration.scopes import AFTER_MERGE
from algm_export.calibration.smoothing import (
    SCALE_LIMITS,
    Smoothing,
    apply,
    channel_amax,
    measure,
    smoothable,
    smoothing_scales,
)
from algm_export.deployment import DeploymentInfo
from algm_export.errors import AlgmExportError
from algm_export.preprocess import make_batch

WIDTH = 8


def ln_graph() -> onnx.ModelProto:
    """images [N, 4, 8] -> LayerNorm a (outlier channel 0) -> MatMuls q and k; LayerNorm b -> MatMul f and an Add.

    ``a`` feeds only MatMuls (smoothable); ``b`` also feeds an Add, which would see the smoothed tensor (not
    smoothable)."""
    rng = np.random.default_rng(0)
    gamma = np.ones(WIDTH, np.float32)
    gamma[0] = 40.0  # an activation outlier channel, as LayerNorm weights make in trained ViTs
    tensors = {"gamma": gamma, "beta": rng.normal(size=WIDTH).astype(np.float32),
               "wq": rng.normal(size=(WIDTH, WIDTH)).astype(np.float32),
               "wk": rng.normal(size=(WIDTH, WIDTH)).astype(np.float32),
               "wf": rng.normal(size=(WIDTH, WIDTH)).astype(np.float32)}
    nodes = [helper.make_node("MatMul", ["images", "wq"], ["x"], name="embed"),
             helper.make_node("LayerNormalization", ["x", "gamma", "beta"], ["xa"], name="a", axis=-1),
             helper.make_node("MatMul", ["xa", "wq"], ["q"], name="q"),
             helper.make_node("MatMul", ["xa", "wk"], ["k"], name="k"),
             helper.make_node("Add", ["q", "k"], ["h"], name="sum"),
             helper.make_node("LayerNormalization", ["h", "gamma", "beta"], ["xb"], name="b", axis=-1),
             helper.make_node("MatMul", ["xb", "wf"], ["f"], name="f"),
             helper.make_node("Add", ["f", "xb"], ["scores"], name="residual")]
    graph = helper.make_graph(
        nodes, "ln", [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 4, WIDTH])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", 4, WIDTH])],
        [numpy_helper.from_array(v, n) for n, v in tensors.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def run(model: onnx.ModelProto, batch: np.ndarray, outputs: list[str] | None = None) -> list[np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(outputs, {"images": batch})


def assert_same_in_fp32(expected: list[np.ndarray], got: list[np.ndarray], rtol: float) -> None:
    """Each output within ``rtol`` of its largest magnitude (the fold only rescales terms of the same sums)."""
    for e, g in zip(expected, got):
        assert np.abs(e - g).max() <= rtol * np.abs(e).max(), np.abs(e - g).max() / np.abs(e).max()


def forget_the_bias(model: onnx.ModelProto, smoothing: Smoothing) -> onnx.ModelProto:
    """A wrong fold: the LayerNorm bias is left as it was (only its weight divided by s)."""
    wrong = apply(model, smoothing)
    for node in wrong.graph.node:
        if node.name in smoothing.scales:
            node.input[2] = next(n for n in model.graph.node if n.name == node.name).input[2]
            if node.input[2] not in {t.name for t in wrong.graph.initializer}:
                wrong.graph.initializer.append(next(t for t in model.graph.initializer if t.name == node.input[2]))
    return without_unused(wrong)


def test_smoothing_folds_exactly_and_a_wrong_fold_fails():
    model = ln_graph()
    batches = [np.random.default_rng(i).normal(size=(1, 4, WIDTH)).astype(np.float32) for i in range(3)]
    smoothing = measure(model, ["q", "k", "f"], batches, alpha=0.5)
    assert smoothing.matmuls == {"a": ["q", "k"]}  # b also feeds an Add: left alone
    scales = smoothing.scales["a"]
    assert scales.shape == (WIDTH,) and scales[0] > 3 * np.median(scales)  # the outlier channel moves most
    smoothed = apply(model, smoothing)
    onnx.checker.check_model(smoothed, full_check=True)
    values = {t.name: numpy_helper.to_array(t) for t in smoothed.graph.initializer}
    nodes = {n.name: n for n in smoothed.graph.node}
    assert np.allclose(values[nodes["a"].input[1]] * scales, 1.0 + 39.0 * (np.arange(WIDTH) == 0))
    assert nodes["b"].input[1] == "gamma" and nodes["embed"].input[1] == "wq"  # shared tensors copied, not edited
    # float32: (x / s) @ (s w) multiplies every term of each sum by s / s (two roundings of 2^-24 each) plus the
    # LayerNorm's rescaled output; 1e-5 of the output's magnitude is ~100x that, and a wrong fold is off by O(1).
    probe = np.random.default_rng(9).normal(size=(2, 4, WIDTH)).astype(np.float32)
    assert_same_in_fp32(run(model, probe), run(smoothed, probe), 1e-5)
    with pytest.raises(AssertionError):
        assert_same_in_fp32(run(model, probe), run(forget_the_bias(model, smoothing), probe), 1e-5)
    spread = [channel_amax(m, ["a"], [probe])["a"] for m in (model, smoothed)]
    spread = [amax.max() / np.median(amax) for amax in spread]
    assert spread[1] < spread[0] / 2  # the MatMuls' per-tensor input range is no longer set by the outlier channel


def test_a_graph_without_the_measured_nodes_is_refused():
    model = ln_graph()
    smoothing = measure(model, ["q", "k"], [np.ones((1, 4, WIDTH), np.float32)], alpha=0.5)
    other = onnx.ModelProto()
    other.CopyFrom(model)
    next(n for n in other.graph.node if n.name == "k").name = "renamed"
    with pytest.raises(AlgmExportError, match="smoothing: 1 nodes of the FP32 graph are missing here"):
        apply(other, smoothing)


def test_scales_are_bounded():
    weights = [np.ones((3, 2), np.float32)]
    scales = smoothing_scales(np.array([0.0, 1e12, 4.0], np.float32), weights, 0.5)
    assert scales.tolist() == [1.0, SCALE_LIMITS[1], 2.0]  # an all-zero channel keeps s = 1


def test_smoothing_on_the_sample_keeps_outputs_and_token_maps(pipeline_run, photos):
    """The sample graph: only LayerNorms feeding MatMuls of the after-merge scope are smoothed (none upstream of a
    merge), and the smoothed FP32 graph gives the FP32 graph's token maps and, within rounding, its scores."""
    folder = pipeline_run[2]
    model = onnx.load(folder / "model.onnx")
    info = DeploymentInfo.from_onnx("model.onnx", model)
    batch = make_batch([photos["coffee"]], info.image_size, info.normalization)
    candidates = linear_matmuls(model, AFTER_MERGE)
    smoothing = measure(model, candidates, [batch], alpha=0.5)
    pairs = smoothable(model, candidates)
    # 8 blocks after the merge x (LN1 -> QKV, LN2 -> FC1), minus the merge block's LN1 (upstream of its merge),
    # + the decoder's 2 blocks x 2: every LayerNorm -> Linear pair of the scope
    assert smoothing.matmuls == pairs and len(pairs) == 7 * 2 + 1 + 2 * 2
    assert all(len(m) == 1 and m[0] in candidates for m in pairs.values())
    expected = run(model, batch, ["scores", "token_maps"])
    got = run(apply(model, smoothing), batch, ["scores", "token_maps"])
    assert np.array_equal(expected[1], got[1])  # nothing upstream of a merge changed: bit-identical maps
    # 19 rescaled LayerNorm -> Linear pairs through 10 blocks: float32 rounding (measured ~1e-6 relative);
    # 1e-4 of the largest score is far below INT8's error (~1e-2) and far above it, and a wrong fold is O(1).
    assert_same_in_fp32(expected[:1], got[:1], 1e-4)


@pytest.mark.slow  # a second export of the sample with --fp16 --int8 (~1-2 minutes on 2 busy cores)
def test_smooth_alpha_through_the_command(research_checkpoint, tmp_path):
    """``--smooth-alpha 0.5``: report.json says what was smoothed, and both Q/DQ graphs pass the weight check, which
    reads each smoothing factor back from the LayerNorm weights (FP32 graph and FP16 graph alike)."""
    import json

    from algm_export.cli import main

    code = main([str(research_checkpoint), "--fp16", "--int8", "--smooth-alpha", "0.5", "-o", str(tmp_path / "out")])
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert code == 0, report["parity"]["onnxruntime_int8"]["failures"]
    smoothing = report["int8"]["smoothing"]
    assert smoothing["alpha"] == 0.5 and smoothing["layer_norms"] == 19 and len(smoothing["matmuls"]) == 19
    for name in ("onnxruntime_int8", "onnxruntime_fp16_int8"):
        weights = report["parity"][name]["int8_weights"]
        assert weights["checked"] and not weights["problems"] and weights["worst_steps"] <= 0.65, weights
        assert report["parity"][name]["token_counts"] == report["parity"][name]["reference_token_counts"]
