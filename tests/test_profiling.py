"""ONNX Runtime profiles grouped as the bench reports them: merge/unmerge share and the INT8 headroom."""

from __future__ import annotations

import onnx
import pytest

from algm_export.calibration.recipe import dequantized_inputs, linear_matmuls
from algm_export.calibration.scopes import AFTER_MERGE
from algm_export.errors import AlgmExportError
from algm_export.profiling import NodeTime, int8_headroom, merge_time_share, profile_node_times

FP32_NODES = [NodeTime("fc1", "MatMul", 30.0), NodeTime("fc2", "MatMul", 10.0), NodeTime("attn", "MatMul", 40.0),
              NodeTime("algm/GlobalMerge_0/n1", "TopK", 20.0)]
INT8_NODES = [NodeTime("fc1", "MatMulIntegerToFloat", 15.0), NodeTime("fc2", "MatMulIntegerToFloat", 5.0),
              NodeTime("ln_QuantizeLinear", "QuantizeLinear", 3.0),
              NodeTime("gelu_QuantizeLinear", "QuantizeLinear", 2.0),
              NodeTime("attn", "MatMul", 40.0), NodeTime("algm/GlobalMerge_0/n1", "TopK", 20.0)]


def test_int8_headroom_from_node_times():
    headroom = int8_headroom(FP32_NODES, INT8_NODES, {"fc1", "fc2"})
    # fc1 + fc2 are 40 of 100 us in FP32; in INT8 they take 20 us plus 5 us of input quantization: 40 / 25 = 1.6x.
    # Everything else unchanged: 60 + 25 = 85 of 100; with free INT8 the floor is 60 of 100.
    assert headroom == {"quantized_matmuls": 2, "quantized_share_of_fp32_time": 0.4, "quantized_layers_speedup": 1.6,
                        "implied_latency_vs_fp32": 0.85, "floor_latency_vs_fp32": 0.6}


@pytest.mark.parametrize("renamed", ["fp32", "int8"])
def test_int8_headroom_refuses_a_quantized_matmul_it_cannot_find(renamed):
    """A fusion that renamed a quantized MatMul would silently move its time to "everything else"."""
    fp32, int8 = list(FP32_NODES), list(INT8_NODES)
    nodes = fp32 if renamed == "fp32" else int8
    nodes[1] = NodeTime("fused_fc2", nodes[1].op_type, nodes[1].microseconds)
    with pytest.raises(AlgmExportError, match="1 quantized MatMuls not found.*fc2"):
        int8_headroom(fp32, int8, {"fc1", "fc2"})


def test_int8_headroom_needs_quantized_matmuls():
    with pytest.raises(AlgmExportError, match="no quantized MatMuls"):
        int8_headroom(FP32_NODES, INT8_NODES, set())


def test_merge_time_share_counts_the_algm_nodes_only():
    assert merge_time_share(FP32_NODES) == pytest.approx(0.2)
    assert merge_time_share(FP32_NODES[:3]) == 0.0
    assert merge_time_share([]) == 0.0


def test_real_profiles_keep_the_quantized_matmul_names(pipeline_run, dense_graphs, photo_batch, tmp_path):
    """ONNX Runtime fuses each Q/DQ MatMul into MatMulIntegerToFloat under the MatMul's name: the headroom of
    the exported graphs finds every quantized MatMul in both profiles, and the trace files are removed."""
    code, printed, folder = pipeline_run
    assert code == 0, printed
    image = photo_batch[:1].numpy()
    quantized = set(dequantized_inputs(onnx.load(folder / "model.int8.onnx")))  # what mixed precision kept INT8
    assert quantized <= set(linear_matmuls(onnx.load(folder / "model.onnx"), AFTER_MERGE))
    fp32_nodes = profile_node_times(folder / "model.onnx", image, 1, tmp_path)
    int8_nodes = profile_node_times(folder / "model.int8.onnx", image, 1, tmp_path)
    assert not list(tmp_path.iterdir())
    assert {n.op_type for n in int8_nodes if n.name in quantized} == {"MatMulIntegerToFloat"}
    assert {n.op_type for n in fp32_nodes if n.name in quantized} == {"MatMul"}
    headroom = int8_headroom(fp32_nodes, int8_nodes, quantized)
    assert headroom["quantized_matmuls"] == len(quantized) >= 30  # at least the encoder's after the merge
    assert 0 < headroom["quantized_share_of_fp32_time"] < 1 and headroom["quantized_layers_speedup"] > 0
    assert 0 < merge_time_share(fp32_nodes) < 1
    assert merge_time_share(profile_node_times(dense_graphs.portable, image, 1, tmp_path)) == 0.0


def test_optimized_op_counts_show_the_integer_kernels(tmp_path):
    """A Q/DQ graph's MatMuls run as ONNX Runtime integer kernels (MatMulIntegerToFloat on x86, U8S8; in this chain
    of MatMuls the next input's QuantizeLinear fuses into the previous one, QLinearMatMul); the FP32 graph has none."""
    from onnxruntime.quantization import QuantType
    from onnxruntime.quantization.calibrate import CalibrationMethod, TensorData, TensorsData
    from test_int8_mixed import outlier_graph

    from algm_export.calibration.recipe import quantize_onnxruntime
    from algm_export.profiling import INTEGER_MATMULS, optimized_op_counts

    onnx.save(outlier_graph(), tmp_path / "g.onnx")
    import numpy as np

    ranges = TensorsData(CalibrationMethod.MinMax, {
        name: TensorData(lowest=np.float32(-4.0), highest=np.float32(4.0)) for name in ("x", "ha", "hb", "hc")})
    onnx.save(quantize_onnxruntime(tmp_path / "g.onnx", ["a", "b", "c"], ranges, QuantType.QUInt8),
              tmp_path / "q.onnx")
    fp32, int8 = optimized_op_counts(tmp_path / "g.onnx"), optimized_op_counts(tmp_path / "q.onnx")
    assert not set(fp32) & set(INTEGER_MATMULS) and fp32.get("MatMul", 0) + fp32.get("FusedMatMul", 0) == 3
    assert sum(int8.get(op, 0) for op in INTEGER_MATMULS) == 3 and 1 <= int8.get("QuantizeLinear", 0) <= 3
    assert "DequantizeLinear" not in int8  # every DequantizeLinear folded into an integer kernel
