"""Accuracy-guided mixed precision (calibration/mixed.py) on a 3-MatMul graph with one MatMul that INT8 ruins."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantType, create_calibrator

from algm_export.calibration import mixed
from algm_export.calibration.mixed import choose_int8
from algm_export.calibration.recipe import dequantized_inputs, keep_quantized, quantize_onnxruntime

CLASSES, SIZE = 6, 8


def outlier_graph() -> onnx.ModelProto:
    """images [N, 4, 8, 8] -> MatMul a -> MatMul b -> MatMul c -> scores [N, 6, 8, 8].

    ``b`` writes one channel 1000x larger than the others and ``c`` all but ignores it: the per-tensor INT8 scale
    of c's input is set by that outlier, so every other channel of it rounds to 0 or +-1 step and INT8 ruins c
    alone; a and b (ordinary ranges, per-channel weights) lose about 1 % of a step."""
    rng = np.random.default_rng(0)
    a, b, c = rng.normal(size=(4, 16)), rng.normal(size=(16, 16)) / 4, rng.normal(size=(16, CLASSES)) / 4
    b[:, 0] *= 1000
    c[0, :] /= 1000
    weights = [helper.make_tensor(n, TensorProto.FLOAT, w.shape, w.astype(np.float32).ravel())
               for n, w in (("wa", a), ("wb", b), ("wc", c))]
    nodes = [helper.make_node("Transpose", ["images"], ["x"], perm=[0, 2, 3, 1], name="to_channels_last"),
             helper.make_node("MatMul", ["x", "wa"], ["ha"], name="a"),
             helper.make_node("MatMul", ["ha", "wb"], ["hb"], name="b"),
             helper.make_node("MatMul", ["hb", "wc"], ["hc"], name="c"),
             helper.make_node("Transpose", ["hc"], ["scores"], perm=[0, 3, 1, 2], name="to_channels_first")]
    graph = helper.make_graph(
        nodes, "outlier", [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 4, SIZE, SIZE])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", CLASSES, SIZE, SIZE])], weights)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


class Reader(CalibrationDataReader):
    def __init__(self, batch):
        self.items = iter([{"images": image[None]} for image in batch])

    def get_next(self):
        return next(self.items, None)


@pytest.fixture(scope="module")
def quantized(tmp_path_factory):
    """(FP32 graph, Q/DQ graph with a, b and c INT8, calibration batch)."""
    folder = tmp_path_factory.mktemp("mixed")
    onnx.save(outlier_graph(), folder / "g.onnx")
    batch = np.random.default_rng(1).normal(size=(4, 4, SIZE, SIZE)).astype(np.float32)
    calibrator = create_calibrator(folder / "g.onnx", ["MatMul"], augmented_model_path=str(folder / "aug.onnx"),
                                   calibrate_method=CalibrationMethod.MinMax)
    calibrator.collect_data(Reader(batch))
    qdq = quantize_onnxruntime(folder / "g.onnx", ["a", "b", "c"], calibrator.compute_data(), QuantType.QUInt8)
    return onnx.load(folder / "g.onnx"), qdq, batch


def test_the_ruinous_matmul_stays_float(quantized):
    fp32, qdq, batch = quantized
    choice = choose_int8(fp32, qdq, ["a", "b", "c"], batch)
    sensitivity = choice.sensitivity
    # c alone ruins the scores; a and b alone change them by about 1 % of an INT8 step of their inputs.
    assert set(sensitivity) == {"a", "b", "c"} and sensitivity["c"] > 10 * max(sensitivity["a"], sensitivity["b"])
    assert choice.floats[0] == "c" and "c" not in choice.int8 and choice.int8  # c float, the others may stay INT8
    assert choice.judgement.holds  # what was chosen meets the target on the calibration images
    # bounded: reference, everything INT8, one session per MatMul, then a bisection over how many stay float
    assert choice.sessions <= 2 + 3 + 2
    report = choice.to_dict()
    assert report["int8_matmuls"] == len(choice.int8) and report["candidate_matmuls"] == 3
    assert report["float_matmuls"][0]["name"] == "c" and report["float_matmuls"][0]["sensitivity"] == sensitivity["c"]
    assert choice.summary().startswith(f"{len(choice.int8)} of 3 MatMuls INT8; {3 - len(choice.int8)} kept float")
    written = keep_quantized(qdq, fp32, set(choice.int8))
    onnx.checker.check_model(written, full_check=True)
    assert set(dequantized_inputs(written)) == set(choice.int8)  # the Q/DQ graph holds exactly the INT8 choice
    assert sum(n.op_type == "QuantizeLinear" for n in written.graph.node) == len(choice.int8)


def test_everything_int8_when_the_target_holds(quantized):
    fp32, qdq, batch = quantized
    choice = choose_int8(fp32, qdq, ["a", "b"], batch)  # c outside the scope: a and b alone meet the target
    assert choice.int8 == ["a", "b"] and not choice.sensitivity and choice.sessions == 2
    assert choice.summary() == "2 of 2 MatMuls INT8"


def test_an_unreachable_target_says_nothing_is_int8(quantized, monkeypatch):
    """Never a FP32 graph called INT8 silently: when no INT8 MatMul meets the target, the count says 0."""
    fp32, qdq, batch = quantized
    monkeypatch.setattr(mixed, "TARGET_EXACT", 1.01)  # no graph with an INT8 MatMul can reach it
    choice = choose_int8(fp32, qdq, ["a", "b", "c"], batch)
    assert choice.int8 == [] and choice.summary().startswith("0 of 3 MatMuls INT8; 3 kept float")
    assert not dequantized_inputs(keep_quantized(qdq, fp32, set()))


def test_weight_check_catches_a_two_percent_scale_error_on_one_column(quantized):
    """The INT8 verdict's weight check (verify/int8_weights.py): intact weights sit within half a step of the FP32
    graph's; one column's scale 2 % off moves that column's largest weight by 127 x 0.02 = 2.5 steps."""
    from onnx import numpy_helper

    from algm_export.verify.int8_weights import STEP_TOLERANCE, weight_steps

    fp32, qdq, _ = quantized
    steps = weight_steps(qdq, fp32)
    assert set(steps) == {"a", "b", "c"} and all(value <= 0.5 + 1e-4 for value in steps.values()), steps
    damaged = onnx.ModelProto()
    damaged.CopyFrom(qdq)
    producer = {o: n for n in damaged.graph.node for o in n.output}
    matmul = next(n for n in damaged.graph.node if n.name == "b")
    scale = next(t for t in damaged.graph.initializer if t.name == producer[matmul.input[1]].input[1])
    values = numpy_helper.to_array(scale).copy()
    values[3] *= 1.02
    scale.CopyFrom(numpy_helper.from_array(values, scale.name))
    after = weight_steps(damaged, fp32)
    assert 2.0 < after["b"] < 3.0 and after["b"] > STEP_TOLERANCE and after["a"] == steps["a"]
