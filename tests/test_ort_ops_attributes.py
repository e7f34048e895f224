"""libalgm_ort_ops.so validates node attributes like the TensorRT creators (one shared validation in plugins/core)
and reports every kernel error as a returned status, on one-node graphs (no model, milliseconds).

The library comes from $ALGM_ORT_OPS or build/plugins/; without it the tests are skipped with that reason."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

GRID = 4  # a 4x4 patch grid in 2x2 windows: 17 tokens
CHANNELS = 8


def merge_graph(op: str, **attributes) -> bytes:
    """One algm merge node (`op`: LocalMerge or GlobalMerge) with `attributes`, as a serialized model."""
    tokens = helper.make_tensor_value_info("tokens", TensorProto.FLOAT, ["B", "T", CHANNELS])
    inputs = [tokens]
    if op == "GlobalMerge":
        inputs += [helper.make_tensor_value_info("sizes", TensorProto.FLOAT, ["B", "T"]),
                   helper.make_tensor_value_info("token_map", TensorProto.INT32, ["B", GRID * GRID])]
    outputs = [helper.make_tensor_value_info("merged", TensorProto.FLOAT, None),
               helper.make_tensor_value_info("merged_sizes", TensorProto.FLOAT, None),
               helper.make_tensor_value_info("merged_token_map", TensorProto.INT32, None),
               helper.make_tensor_value_info("num_tokens", TensorProto.INT32, None)]
    node = helper.make_node(op, [i.name for i in inputs], [o.name for o in outputs], domain="algm", **attributes)
    graph = helper.make_graph([node], "one_merge", inputs, outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid("algm", 1)])
    return model.SerializeToString()


def session(library: Path, model: bytes) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.register_custom_ops_library(str(library))
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def local_attributes(**overrides) -> dict:
    attributes = {"grid_h": GRID, "grid_w": GRID, "window_h": 2, "window_w": 2, "threshold": 0.5, "per_image": 1}
    attributes.update(overrides)
    return attributes


def test_valid_local_merge_runs(ort_ops):
    """The reference point of the refusals below: the same node with valid attributes runs, INT32 count."""
    tokens = np.random.default_rng(0).standard_normal((2, 1 + GRID * GRID, CHANNELS)).astype(np.float32)
    merged, sizes, token_map, count = session(ort_ops, merge_graph("LocalMerge", **local_attributes())).run(
        None, {"tokens": tokens})
    assert count.dtype == np.int32 and count.shape == ()
    assert merged.shape == (2, int(count), CHANNELS) and sizes.shape == (2, int(count))
    # patch slots
    assert token_map.shape == (2, GRID * GRID) and token_map.min() >= 0 and token_map.max() <= int(count) - 2


@pytest.mark.parametrize("threshold", [math.nan, math.inf, -math.inf])
def test_non_finite_threshold_is_refused_like_tensorrt(ort_ops, threshold):
    """The TensorRT creator refuses a non-finite threshold ('threshold' is not a finite number); so do the ORT ops."""
    with pytest.raises(Exception, match="'threshold' is not a finite number"):
        session(ort_ops, merge_graph("LocalMerge", **local_attributes(threshold=threshold)))


@pytest.mark.parametrize("op, attributes, message", [
    ("LocalMerge", local_attributes(size_dtype=1), r"'size_dtype' = 1 is out of range \[6, 7\]"),
    ("LocalMerge", local_attributes(per_image=2), r"'per_image' = 2 is out of range \[0, 1\]"),
    ("LocalMerge", local_attributes(grid_h=0), r"'grid_h' = 0 is out of range"),
    ("LocalMerge", local_attributes(window_h=3), "do not tile"),
    ("GlobalMerge", {"layer_number": 0}, r"'layer_number' = 0 is out of range"),
    ("GlobalMerge", {"layer_number": 2, "size_dtype": 9}, r"'size_dtype' = 9 is out of range \[6, 7\]"),
])
def test_invalid_attributes_are_refused_with_the_shared_messages(ort_ops, op, attributes, message):
    """The messages are those of the TensorRT creators (plugin_host_test checks the same wording)."""
    with pytest.raises(Exception, match=message):
        session(ort_ops, merge_graph(op, **attributes))


@pytest.mark.parametrize("op, attributes", [
    ("LocalMerge", local_attributes(size_dtype=7)),
    ("GlobalMerge", {"layer_number": 2, "size_dtype": 7}),
])
def test_int64_size_dtype_is_refused_not_ignored(ort_ops, op, attributes):
    """size_dtype = 7 (INT64, valid for TensorRT) is refused in one line: these ops' num_tokens output is INT32;
    before, the attribute was ignored and an INT32 count came out of a node that asked for INT64."""
    with pytest.raises(Exception, match="size_dtype = 7 .*INT32"):
        session(ort_ops, merge_graph(op, **attributes))


def test_kernel_errors_come_back_as_a_status(ort_ops):
    """A run-time problem (tokens of the wrong row count for the grid) is an ONNX Runtime error naming the op,
    returned through the status-returning kernel API, and the session stays usable."""
    model = session(ort_ops, merge_graph("LocalMerge", **local_attributes()))
    with pytest.raises(Exception, match="algm::LocalMerge: tokens have 10 rows, expected 1 \\+ grid_h\\*grid_w"):
        model.run(None, {"tokens": np.zeros((1, 10, CHANNELS), np.float32)})
    count = model.run(None, {"tokens": np.ones((1, 1 + GRID * GRID, CHANNELS), np.float32)})[3]
    assert int(count) == 1 + 4  # identical tokens: every 2x2 window merges, 4 windows + the class token


def test_out_of_range_token_map_is_reported(ort_ops):
    """GlobalMerge's token map names a token that does not exist: the CPU kernel's report becomes an error."""
    model = session(ort_ops, merge_graph("GlobalMerge", layer_number=2, per_image=1))
    tokens = np.random.default_rng(1).standard_normal((1, 9, CHANNELS)).astype(np.float32)
    token_map = np.zeros((1, GRID * GRID), np.int32)
    token_map[0, 3] = 8  # tokens 1..8 are patches: entries must lie in [0, 7]
    with pytest.raises(Exception, match="algm::GlobalMerge: .*token map"):
        model.run(None, {"tokens": tokens, "sizes": np.ones((1, 9), np.float32), "token_map": token_map})

