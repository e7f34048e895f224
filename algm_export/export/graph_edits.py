"""Edits of exported graphs: merge bookkeeping outputs, function bodies, the portable (inlined) form."""

from __future__ import annotations

import numpy as np
import onnx
import onnx_graphsurgeon as gs
from onnx import inliner

from ..artifacts import TOKEN_COUNTS, TOKEN_MAPS
from .contract import DOMAIN, MERGE_OPS
from .onnx_functions import algm_impl, function_protos

NODE_PREFIX = "algm/"


def merge_nodes(graph: gs.Graph) -> list[gs.Node]:
    """The LocalMerge/GlobalMerge nodes of ``graph`` in execution order."""
    graph.toposort()
    return [node for node in graph.nodes if node.domain == DOMAIN and node.op in MERGE_OPS]


def add_merge_outputs(model: onnx.ModelProto) -> onnx.ModelProto:
    """Name the algm nodes ``algm/<Op>_<k>`` and add two graph outputs built from the merge nodes:
    ``token_counts`` [merges] int64 (their size tensors, cast from the contract's int32) and ``token_maps`` [B, merges, N] int32."""
    graph = gs.import_onnx(model)
    for index, node in enumerate(n for n in graph.nodes if n.domain == DOMAIN):
        node.name = f"{NODE_PREFIX}{node.op}_{index}"
    merges = merge_nodes(graph)
    if not merges:
        return model
    axis0, axis1 = gs.Constant("algm_axis0", np.array([0], np.int64)), gs.Constant("algm_axis1", np.array([1], np.int64))
    # The size tensors are int32 (the contract's default, what TensorRT's header asks of size tensors);
    # token_counts stays int64.
    counts = [graph.layer(op="Cast", name=f"{node.name}/count_int64", attrs={"to": onnx.TensorProto.INT64},
                          inputs=[graph.layer(op="Unsqueeze", name=f"{node.name}/count", inputs=[node.outputs[3], axis0],
                                              outputs=[gs.Variable(f"{node.name}/count_1d", np.int32, [1])])[0]],
                          outputs=[gs.Variable(f"{node.name}/count_1d_int64", np.int64, [1])])[0] for node in merges]
    maps = [graph.layer(op="Unsqueeze", name=f"{node.name}/map", inputs=[node.outputs[2], axis1],
                        outputs=[gs.Variable(f"{node.name}/map_3d", np.int32)])[0] for node in merges]
    map_shape = merges[0].outputs[2].shape
    token_counts = gs.Variable(TOKEN_COUNTS, np.int64, [len(merges)])
    token_maps = gs.Variable(TOKEN_MAPS, np.int32, [map_shape[0], len(merges), map_shape[1]])
    graph.layer(op="Concat", name="algm/token_counts", inputs=counts, outputs=[token_counts], attrs={"axis": 0})
    graph.layer(op="Concat", name="algm/token_maps", inputs=maps, outputs=[token_maps], attrs={"axis": 1})
    graph.outputs.extend([token_counts, token_maps])
    return gs.export_onnx(graph.cleanup().toposort())


def attach_functions(model: onnx.ModelProto) -> onnx.ModelProto:
    """Give the algm nodes their standard-op bodies as model-local functions (ONNX Runtime runs them;
    the TensorRT builder strips them so that the nodes resolve to the plugins)."""
    model.functions.extend(function_protos())
    if all(entry.domain != algm_impl.domain for entry in model.opset_import):
        model.opset_import.append(onnx.helper.make_opsetid(algm_impl.domain, algm_impl.version))
    return model


def strip_functions(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of ``model`` without the algm function bodies, as TensorRT's parser should see it."""
    stripped = onnx.ModelProto()
    stripped.CopyFrom(model)
    del stripped.functions[:]
    kept = [entry for entry in stripped.opset_import if entry.domain != algm_impl.domain]
    del stripped.opset_import[:]
    stripped.opset_import.extend(kept)
    return stripped


def inline_portable(model: onnx.ModelProto) -> onnx.ModelProto:
    """Standard ops only: the algm nodes replaced by their bodies, whose nodes are named
    ``<call node name>/<node>`` so that profiles can attribute time to the merges."""
    calls = {node.name for node in model.graph.node if node.domain == DOMAIN}
    order = [node.name for node in model.graph.node]
    portable = inliner.inline_local_functions(model)
    position, current_call = 0, NODE_PREFIX
    for node in portable.graph.node:
        while position < len(order) and order[position] in calls:
            current_call = order[position]
            position += 1
        if position < len(order) and node.name == order[position]:
            position += 1
        else:
            node.name = f"{current_call}/{node.name}"
    kept = [entry for entry in portable.opset_import if not entry.domain.startswith(DOMAIN)]
    del portable.opset_import[:]
    portable.opset_import.extend(kept)
    del portable.functions[:]
    return portable
