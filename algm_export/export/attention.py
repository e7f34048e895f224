"""Per-image attention in the exported graphs: the ``algm::packed_attention`` torch op (:mod:`..models.attention`)
exports as one ``PackedAttention`` node of a private domain, which :func:`expand_attention` then replaces with
standard ops, in one of two forms that compute the same thing:

* ``loop`` (the portable graph, ONNX Runtime): an ONNX ``Loop`` over the images; iteration ``b`` slices image
  ``b``'s ``T_b`` rows out of the packed qkv, runs MatMul-Softmax-MatMul on ``[heads, T_b, T_b]`` and pads its
  output to ``max_b T_b`` rows; the real rows are gathered back into the packed layout. No padded token enters
  an attention score, so a batch costs ``sum_b T_b^2`` scores, what its images cost alone.
* ``padded`` (the graphs with ``algm`` nodes for TensorRT): the packed rows are spread over ``[B, max_b T_b]``
  and attention runs on that with the padding keys masked (-inf before the softmax), as before this op
  existed. TensorRT's ONNX parser does take ``Loop``, but a loop whose body shapes change from iteration to
  iteration has not been built or timed on TensorRT here (no GPU), so its graph keeps this form.

Both forms restate ``F.scaled_dot_product_attention``: scores ``(q * scale) @ k^T``, softmax over the keys, times v.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, defs, helper, numpy_helper
from onnxscript.values import Opset

ATTENTION_DOMAIN = "algm.attention"
PACKED_ATTENTION = "PackedAttention"
FORMS = ("loop", "padded")
attention_opset = Opset(ATTENTION_DOMAIN, 1)

SCHEMA = defs.OpSchema(
    PACKED_ATTENTION, ATTENTION_DOMAIN, 1,
    doc="Softmax attention of each image on its own tokens, over packed qkv (replaced by standard ops after "
        "export: algm_export/export/attention.py).",
    inputs=[defs.OpSchema.FormalParameter("qkv", "T", "packed q, k, v [1, P, 3C], images one after another"),
            defs.OpSchema.FormalParameter("lengths", "I", "each image's token count [B] (sum = P)")],
    outputs=[defs.OpSchema.FormalParameter("out", "T", "[1, P, C]")],
    type_constraints=[("T", ["tensor(float)", "tensor(float16)"], "activations"),
                      ("I", ["tensor(int64)"], "token counts")],
    attributes=[defs.OpSchema.Attribute("num_heads", defs.OpSchema.AttrType.INT, "attention heads"),
                defs.OpSchema.Attribute("scale", defs.OpSchema.AttrType.FLOAT, "score scale (head_dim^-0.5)")],
)


def register_attention_schema() -> None:
    """Make ``PackedAttention`` known to onnx (the exporter checks the nodes it writes); safe to call again."""
    if not defs.has(PACKED_ATTENTION, ATTENTION_DOMAIN):
        defs.register_schema(SCHEMA)


def translate_packed_attention(qkv, lengths, num_heads: int, scale: float):
    """The exporter's translation of ``algm::packed_attention``: one marker node."""
    return attention_opset.PackedAttention(qkv, lengths, num_heads=num_heads, scale=scale)


class _Nodes:
    """Nodes and constants of one expansion, every name under ``prefix``."""

    def __init__(self, prefix: str):
        self.prefix, self.nodes, self.constants = prefix, [], []

    def name(self, label: str) -> str:
        """The tensor/node name of ``label`` in this expansion."""
        return f"{self.prefix}/{label}"

    def const(self, label: str, value, dtype=np.int64) -> str:
        """An initializer (defined once per label; a second definition must hold the same value)."""
        array = np.array(value, dtype)
        known = next((c for c in self.constants if c.name == self.name(label)), None)
        if known is None:
            self.constants.append(numpy_helper.from_array(array, self.name(label)))
        elif not np.array_equal(numpy_helper.to_array(known), array):
            raise ValueError(f"constant {self.name(label)} defined twice with different values")
        return self.name(label)

    def add(self, op: str, inputs: list[str], label: str, **attributes) -> str:
        """A node with one output, both named after ``label``; returns the output's name."""
        self.nodes.append(helper.make_node(op, inputs, [self.name(label)], self.name(label), **attributes))
        return self.name(label)


def _attention(n: _Nodes, qkv: str, heads: int, channels: int, scale: float, dtype: int,
               valid_keys: str | None, batched: bool) -> str:
    """``[(B,) T, 3C]`` -> ``[(B,) T, C]``: the attention of ``qkv``'s rows (``valid_keys``: the additive mask)."""
    lead = [0] if batched else []
    split = n.add("Reshape", [qkv, n.const("qkv_shape", [*lead, 0, 3, heads, channels // heads])], "qkv_heads")
    perm = [2, 0, 3, 1, 4] if batched else [1, 2, 0, 3]  # -> [3, (B,) heads, T, head_dim]
    heads_first = n.add("Transpose", [split], "heads_first", perm=perm)
    q, k, v = (n.add("Gather", [heads_first, n.const(f"index_{part}", i)], part, axis=0)
               for i, part in enumerate("qkv"))
    rank = 4 if batched else 3
    keys = n.add("Transpose", [k], "keys_t", perm=[*range(rank - 2), rank - 1, rank - 2])
    scale_constant = n.const("scale", scale, helper.tensor_dtype_to_np_dtype(dtype))
    scores = n.add("MatMul", [n.add("Mul", [q, scale_constant], "q_scaled"), keys], "scores")
    if valid_keys is not None:
        scores = n.add("Add", [scores, valid_keys], "scores_masked")
    out = n.add("MatMul", [n.add("Softmax", [scores], "weights", axis=-1), v], "heads_out")
    perm = [0, 2, 1, 3] if batched else [1, 0, 2]  # -> [(B,) T, heads, head_dim]
    rows = n.add("Transpose", [out], "rows_heads", perm=perm)
    return n.add("Reshape", [rows, n.const("out_shape", [*lead, 0, channels])], "out")


def _lengths_layout(n: _Nodes, lengths: str) -> tuple[str, str, str]:
    """``(valid [B, T] bool, longest [1], batch [1])``: which padded positions hold a real token."""
    longest = n.add("ReduceMax", [lengths, n.const("axis0", [0])], "longest", keepdims=1)
    positions = n.add("Range", [n.const("zero", 0), n.add("Squeeze", [longest], "longest_scalar"),
                                n.const("one", 1)], "positions")
    valid = n.add("Less", [n.add("Unsqueeze", [positions, n.const("axis0b", [0])], "positions_row"),
                           n.add("Unsqueeze", [lengths, n.const("axis1", [1])], "lengths_column")], "valid")
    return valid, longest, n.add("Shape", [lengths], "batch")


def _real_rows(n: _Nodes, valid: str) -> str:
    """``[P]`` int64: the rows of the flattened ``[B*T]`` padded layout that hold real tokens."""
    flat = n.add("Reshape", [valid, n.const("flat", [-1])], "valid_flat")
    return n.add("Reshape", [n.add("NonZero", [flat], "real_nonzero"), n.const("flat_rows", [-1])], "real_rows")


def _loop_form(n: _Nodes, qkv: str, lengths: str, out: str, heads: int, channels: int, scale: float,
               dtype: int) -> None:
    """The portable form: a Loop over the images (module doc), writing ``out`` ``[1, P, C]``."""
    valid, longest, batch = _lengths_layout(n, lengths)
    packed = n.add("Reshape", [qkv, n.const("packed_shape", [-1, 3 * channels])], "qkv_rows")
    starts = n.add("Sub", [n.add("CumSum", [lengths, n.const("axis0_scalar", 0)], "ends"), lengths], "starts")
    # What the body reads enters as loop-carried values, passed through unchanged (no outer-scope reference:
    # tools that sort a graph by its nodes' explicit inputs, e.g. ONNX Runtime's quantizer, keep the order).
    carried = {"packed": (packed, dtype, [None, 3 * channels]), "starts": (starts, TensorProto.INT64, [None]),
               "lengths": (lengths, TensorProto.INT64, [None]), "longest": (longest, TensorProto.INT64, [1])}
    body = _Nodes(n.name("image"))
    inside = {key: body.name(f"{key}_in") for key in carried}
    index = body.name("index")
    axis0 = body.const("axis0", [0])
    start = body.add("Unsqueeze", [body.add("Gather", [inside["starts"], index], "start"), axis0], "start_1d")
    count = body.add("Unsqueeze", [body.add("Gather", [inside["lengths"], index], "count"), axis0], "count_1d")
    end = body.add("Add", [start, count], "end")
    image_qkv = body.add("Slice", [inside["packed"], start, end, axis0], "image_qkv")
    image_out = _attention(body, image_qkv, heads, channels, scale, dtype, None, batched=False)
    zero = body.const("zero_1d", [0])
    pad = body.add("Concat", [zero, zero, body.add("Sub", [inside["longest"], count], "pad_rows"), zero], "pads",
                   axis=0)
    padded = body.add("Pad", [image_out, pad], "padded")
    passed = [body.add("Identity", [name], f"{key}_out") for key, name in inside.items()]
    condition = body.add("Identity", [body.name("condition")], "condition_out")
    graph = helper.make_graph(
        body.nodes, body.prefix,
        [helper.make_tensor_value_info(index, TensorProto.INT64, []),
         helper.make_tensor_value_info(body.name("condition"), TensorProto.BOOL, []),
         *(helper.make_tensor_value_info(inside[key], kind, shape) for key, (_, kind, shape) in carried.items())],
        [helper.make_tensor_value_info(condition, TensorProto.BOOL, []),
         *(helper.make_tensor_value_info(name, kind, shape)
           for name, (_, kind, shape) in zip(passed, carried.values())),
         helper.make_tensor_value_info(padded, dtype, [None, channels])],
        body.constants)
    trips = n.add("Squeeze", [batch], "trips")
    finals = [n.name(f"{key}_final") for key in carried]
    n.nodes.append(helper.make_node("Loop", [trips, "", *(value[0] for value in carried.values())],
                                    [*finals, n.name("per_image")], n.name("loop"), body=graph))
    rows = n.add("Reshape", [n.name("per_image"), n.const("rows_shape", [-1, channels])], "padded_rows")
    gathered = n.add("Gather", [rows, _real_rows(n, valid)], "packed_out", axis=0)
    n.nodes.append(helper.make_node("Unsqueeze", [gathered, n.name("axis0")], [out], n.name("packed_3d")))


def _padded_form(n: _Nodes, qkv: str, lengths: str, out: str, heads: int, channels: int, scale: float,
                 dtype: int) -> None:
    """The TensorRT form: attention on the padded ``[B, max_b T_b]`` layout, padding keys masked."""
    valid, longest, batch = _lengths_layout(n, lengths)
    real = _real_rows(n, valid)
    kept = n.add("CumSum", [n.add("Cast", [n.name("valid_flat")], "valid_int", to=TensorProto.INT64),
                            n.const("axis0_scalar", 0)], "kept")
    before = n.add("Sub", [kept, n.const("one_1d", [1])], "before")
    first = n.add("Sub", [n.add("CumSum", [lengths, n.const("axis0_scalar2", 0)], "ends"), lengths], "starts")
    shape = n.add("Concat", [batch, longest], "padded_shape", axis=0)
    first_per_slot = n.add("Reshape", [n.add("Expand", [n.add("Unsqueeze", [first, n.const("axis1", [1])],
                                                                "starts_column"), shape], "starts_grid"),
                                       n.const("flat2", [-1])], "starts_flat")
    slots = n.add("Where", [n.name("valid_flat"), before, first_per_slot], "slots")  # as Packing.slots
    rows = n.add("Gather", [n.add("Reshape", [qkv, n.const("packed_shape", [-1, 3 * channels])], "qkv_rows"),
                            slots], "qkv_padded_rows", axis=0)
    grid = n.add("Reshape", [rows, n.add("Concat", [batch, longest, n.const("width", [3 * channels])],
                                          "grid_shape", axis=0)], "qkv_padded")
    float_type = helper.tensor_dtype_to_np_dtype(dtype)
    mask = n.add("Unsqueeze", [n.add("Where", [valid, n.const("key_real", 0.0, float_type),
                                              n.const("key_padding", -np.inf, float_type)], "key_mask"),
                               n.const("axes12", [1, 2])], "mask")
    attended = _attention(n, grid, heads, channels, scale, dtype, mask, batched=True)
    flat = n.add("Reshape", [attended, n.const("rows_shape", [-1, channels])], "padded_rows")
    gathered = n.add("Gather", [flat, real], "packed_out", axis=0)
    n.nodes.append(helper.make_node("Unsqueeze", [gathered, n.const("axis0c", [0])], [out], n.name("packed_3d")))


def expand_attention(model: onnx.ModelProto, form: str) -> onnx.ModelProto:
    """A copy of ``model`` whose ``PackedAttention`` nodes are replaced by standard ops in ``form`` (``loop`` or
    ``padded``, see the module doc), with the types of the new tensors; the private domain's opset import is
    dropped."""
    if form not in FORMS:
        raise ValueError(f"unknown attention form {form!r} (known: {', '.join(FORMS)})")
    expanded = onnx.ModelProto()
    expanded.CopyFrom(model)
    nodes, count = [], 0
    for node in model.graph.node:
        if node.domain != ATTENTION_DOMAIN:
            nodes.append(node)
            continue
        attributes = {attribute.name: helper.get_attribute_value(attribute) for attribute in node.attribute}
        n = _Nodes(f"algm_attention_{count}")
        count += 1
        channels, dtype = _qkv_type(model, node.input[0])
        build = _loop_form if form == "loop" else _padded_form
        build(n, node.input[0], node.input[1], node.output[0], attributes["num_heads"], channels,
              attributes["scale"], dtype)
        nodes.extend(n.nodes)
        expanded.graph.initializer.extend(n.constants)
    del expanded.graph.node[:]
    expanded.graph.node.extend(nodes)
    kept = [entry for entry in expanded.opset_import if entry.domain != ATTENTION_DOMAIN]
    del expanded.opset_import[:]
    expanded.opset_import.extend(kept)
    return onnx.shape_inference.infer_shapes(expanded)  # types of the new tensors (the FP16 pass reads them)


def _qkv_type(model: onnx.ModelProto, name: str) -> tuple[int, int]:
    """C and the element type of the packed qkv ``[1, P, 3C]`` named ``name`` (the exporter's value infos)."""
    for info in list(model.graph.value_info) + list(model.graph.input):
        if info.name == name:
            return info.type.tensor_type.shape.dim[-1].dim_value // 3, info.type.tensor_type.elem_type
    raise ValueError(f"no shape recorded for the attention input {name!r}")
