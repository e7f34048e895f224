"""The ONNX node contract of the ``algm`` ops (documented in docs/plugin-ops.md).

The names, attributes and registry keys come from ``algm_export/ops_contract.json``, the one source that
CMake also turns into ``algm/contract.h`` for the kernels, the TensorRT plugins and the ONNX Runtime
custom ops; this module adds the ONNX schemas.
"""

from __future__ import annotations

from onnx import defs

from ..ops_contract import CONTRACT, DOMAIN, PLUGIN_NAMESPACE, PLUGIN_VERSION

DOMAIN_VERSION = CONTRACT["domain_version"]
PLUGIN_ATTRIBUTES = {"plugin_version": PLUGIN_VERSION, "plugin_namespace": PLUGIN_NAMESPACE}
# The size tensor (num_tokens) of the exported nodes is INT32, as NvInferRuntime.h requires of size
# tensors and as the plugins emit by default. (The plugins also take an optional TensorRT field
# CONTRACT["size_dtype_attribute"] = 7 for INT64 size tensors, for graphs following NVIDIA's NonZero
# sample; the exporter never writes it.)


LOCAL_MERGE, GLOBAL_MERGE, UNMERGE = CONTRACT["ops"]
MERGE_OPS = (LOCAL_MERGE, GLOBAL_MERGE)

_P = defs.OpSchema.FormalParameter
_A = defs.OpSchema.Attribute
_T = defs.OpSchema.AttrType
_TYPES = [
    ("T", ["tensor(float)", "tensor(float16)"], "activations: FP32 or FP16"),
    ("S", ["tensor(float)"], "token sizes: always FP32"),
    ("M", ["tensor(int32)"], "patch -> token map"),
    ("N", [f"tensor({CONTRACT['size_dtype_default']})"], "0-D size tensor: the output token count"),
]
_PLUGIN_ATTRS = [
    _A("plugin_version", _T.STRING, "TensorRT plugin version (\"1\")"),
    _A("plugin_namespace", _T.STRING, "TensorRT plugin namespace (\"algm\")"),
]
_PER_IMAGE = _A("per_image", _T.INT, "1: each image merges as it would alone (own r and threshold, outputs padded "
                                     "with size-0 tokens); 0: the published rule (r = batch minimum)")
_MERGE_OUTPUTS = [
    _P("merged", "T", "merged tokens [B, T', C], class token first; an image's tokens past its count are zero"),
    _P("merged_sizes", "S", "tokens per merged token [B, T'] (0: padding)"),
    _P("merged_token_map", "M", "patch -> merged patch-token index [B, N]"),
    _P("num_tokens", "N", "T' (the longest image's count) as a 0-D tensor (the TensorRT size tensor)"),
]

SCHEMAS = [
    defs.OpSchema(
        LOCAL_MERGE, DOMAIN, DOMAIN_VERSION,
        doc="ALGM CLAP: merge the most similar windows of the patch grid (see docs/plugin-ops.md).",
        inputs=[_P("tokens", "T", "tokens [B, 1+N, C], class token first, patches in raster order")],
        outputs=_MERGE_OUTPUTS,
        type_constraints=_TYPES,
        attributes=[
            _A("grid_h", _T.INT, "patch grid rows"), _A("grid_w", _T.INT, "patch grid columns"),
            _A("window_h", _T.INT, "window rows"), _A("window_w", _T.INT, "window columns"),
            _A("threshold", _T.FLOAT, "mean cosine similarity a window needs to merge"),
            _PER_IMAGE, *_PLUGIN_ATTRS,
        ],
    ),
    defs.OpSchema(
        GLOBAL_MERGE, DOMAIN, DOMAIN_VERSION,
        doc="ALGM GBM: bipartite merging with the adaptive threshold (see docs/plugin-ops.md).",
        inputs=[_P("tokens", "T", "tokens [B, T, C], class token first"),
                _P("sizes", "S", "tokens per token [B, T] (0: padding, ignored)"),
                _P("token_map", "M", "patch -> patch-token index [B, N]")],
        outputs=_MERGE_OUTPUTS,
        type_constraints=_TYPES,
        attributes=[_A("layer_number", _T.INT, "1-based block number: the std divisor of the threshold"),
                    _PER_IMAGE, *_PLUGIN_ATTRS],
    ),
    defs.OpSchema(
        UNMERGE, DOMAIN, DOMAIN_VERSION,
        doc="Spread per-token values back onto the patch grid: out[b, p] = values[b, token_map[b, p]].",
        inputs=[_P("values", "T", "per patch-token values [B, M, K]"),
                _P("token_map", "M", "patch -> patch-token index [B, N]")],
        outputs=[_P("patch_values", "T", "[B, N, K]")],
        type_constraints=_TYPES[:1] + _TYPES[2:3],
        attributes=_PLUGIN_ATTRS,
    ),
]


def register_schemas() -> None:
    """Make the algm ops known to onnx (needed by the exporter); safe to call more than once."""
    for schema in SCHEMAS:
        if not defs.has(schema.name, schema.domain):
            defs.register_schema(schema)
