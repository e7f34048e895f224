"""The C++ CPU kernels (libalgm_cpu.so) against the ONNX function bodies of the algm nodes (ONNX Runtime
running standard ops only), on the four sample photos in one batch, under both batch rules.

Per image (the default export) the photos merge different numbers of windows and GBM tokens (their own r and
GBM threshold), so the outputs carry size-0 padding: the kernels must lay it out as the bodies do.
"""

from __future__ import annotations

import cpu_kernels as kernels
import numpy as np
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper

from algm_export.export.contract import DOMAIN, DOMAIN_VERSION, GLOBAL_MERGE, LOCAL_MERGE
from algm_export.export.graph_edits import attach_functions
from algm_export.merging import ops
from algm_export.models.encoder import attention_half, mlp_half
from algm_export.ops_contract import PLUGIN_NAMESPACE, PLUGIN_VERSION

GRID = (32, 32)
WINDOW = (2, 2)
THRESHOLD = 0.88
GBM_LAYER = 5
OUTPUTS = ("merged", "merged_sizes", "merged_token_map", "num_tokens")


def run_body(op: str, inputs: dict[str, np.ndarray], **attributes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One ``algm`` node run by ONNX Runtime through its model-local function (standard ops):
    (merged, sizes, token map), checked against the node's num_tokens output."""
    types = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.int32): TensorProto.INT32}
    node = helper.make_node(op, list(inputs), list(OUTPUTS), domain=DOMAIN, plugin_version=PLUGIN_VERSION,
                            plugin_namespace=PLUGIN_NAMESPACE, **attributes)
    graph = helper.make_graph(
        [node], op,
        [helper.make_tensor_value_info(name, types[value.dtype], value.shape) for name, value in inputs.items()],
        [helper.make_tensor_value_info(name, TensorProto.INT32 if name in OUTPUTS[2:] else TensorProto.FLOAT, None)
         for name in OUTPUTS])
    model = attach_functions(helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid(DOMAIN, DOMAIN_VERSION)]))
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    merged, sizes, token_map, count = session.run(None, inputs)
    assert merged.shape[1] == sizes.shape[1] == int(count)
    return merged, sizes, token_map


def local_body(x: np.ndarray, per_image: bool):
    return run_body(LOCAL_MERGE, {"tokens": x}, grid_h=GRID[0], grid_w=GRID[1], window_h=WINDOW[0],
                    window_w=WINDOW[1], threshold=THRESHOLD, per_image=int(per_image))


def global_body(x: np.ndarray, sizes: np.ndarray, token_map: np.ndarray, per_image: bool):
    return run_body(GLOBAL_MERGE, {"tokens": x, "sizes": sizes, "token_map": token_map}, layer_number=GBM_LAYER,
                    per_image=int(per_image))


def image_counts(token_map: np.ndarray) -> list[int]:
    """Each image's token count (class token included) from its token map."""
    return (token_map.max(axis=1) + 2).tolist()


def assert_same(ours, body) -> None:
    """Identical counts, padding, maps and sizes; merged values within 1e-5 (sums in another order)."""
    assert ours[0].shape == body[0].shape, "padded token counts differ"
    np.testing.assert_array_equal(ours[2], body[2])
    np.testing.assert_array_equal(ours[1], body[1])
    np.testing.assert_allclose(ours[0], body[0], rtol=0, atol=1e-5)


@pytest.fixture(scope="module")
def cases(tiny_model, block1_tokens) -> dict[bool, tuple]:
    """Per batch rule: the block-1 tokens of the four photos and the block-5 GBM inputs that follow from
    that rule's CLAP (per image: padded with size-0 tokens)."""
    vit = tiny_model.encoder
    result = {}
    with torch.no_grad():
        for per_image in (False, True):
            x, sizes, token_map = ops.local_merge(block1_tokens, *GRID, *WINDOW, THRESHOLD, per_image)
            x = mlp_half(vit.blocks[0], x)
            for block in vit.blocks[1 : GBM_LAYER - 1]:
                x = block(x)
            x5 = attention_half(vit.blocks[GBM_LAYER - 1], x)
            result[per_image] = (block1_tokens.numpy(), (x5.numpy(), sizes.numpy(), token_map.numpy()))
    return result


@pytest.mark.parametrize("per_image", [True, False], ids=["per-image", "min"])
def test_local_merge_matches_the_function_body(cases, per_image):
    x1, _ = cases[per_image]
    body = local_body(x1, per_image)
    assert_same(kernels.local_merge(x1, GRID, WINDOW, THRESHOLD, per_image), body)
    counts = image_counts(body[2])
    if per_image:  # the photos' own r differ: the batch is padded to the longest image
        assert len(set(counts)) == 4 and body[0].shape[1] == max(counts)
        shortest = int(np.argmin(counts))
        assert (body[1][shortest, min(counts):] == 0).all() and (body[0][shortest, min(counts):] == 0).all()
    else:
        assert len(set(counts)) == 1 and counts[0] < x1.shape[1]


@pytest.mark.parametrize("per_image", [True, False], ids=["per-image", "min"])
def test_global_merge_matches_the_function_body(cases, per_image):
    _, (x5, sizes, token_map) = cases[per_image]
    body = global_body(x5, sizes, token_map, per_image)
    assert_same(kernels.global_merge(x5, sizes, token_map, GBM_LAYER, per_image), body)
    before, after = image_counts(token_map), image_counts(body[2])
    merged = [b - a for b, a in zip(before, after)]
    assert min(merged) > 0, "every photo must merge tokens in the GBM"
    if per_image:  # each photo's own threshold and r
        assert len(set(merged)) > 1
        assert (sizes == 0).any(), "the GBM input must carry padding"
    else:
        assert len(set(merged)) == 1


def test_the_other_rule_gives_other_counts(cases):
    """Must-fail check: the kernels run with the rule the graph does not ask for disagree with its body."""
    x1, (x5, sizes, token_map) = cases[True]
    body_local = local_body(x1, True)
    assert image_counts(kernels.local_merge(x1, GRID, WINDOW, THRESHOLD, False)[2]) != image_counts(body_local[2])
    body_global = global_body(x5, sizes, token_map, True)
    assert image_counts(kernels.global_merge(x5, sizes, token_map, GBM_LAYER, False)[2]) != image_counts(body_global[2])
