"""Export a Segmenter to ONNX with the dynamo exporter: the plugin graph and the portable graph."""

from __future__ import annotations

import contextlib
import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import onnx
import torch

from ..artifacts import DEFAULT_OUTPUTS, FP16_GRAPH, INPUT_NAME, PLUGIN_GRAPH, PORTABLE_GRAPH
from ..deployment import METADATA_KEY, DeploymentInfo
from ..errors import AlgmExportError
from ..files import write_atomically
from ..models.segmenter import Segmenter
from .attention import expand_attention, register_attention_schema, translate_packed_attention
from .contract import PLUGIN_ATTRIBUTES, register_schemas
from .fp16 import convert_to_fp16
from .graph_edits import add_merge_outputs, attach_functions, inline_portable
from .heads import GRID_SCORES, add_heads
from .onnx_functions import algm

DEFAULT_OPSET = 18
MAX_BATCH = 1024


def _local_merge(x, grid_h, grid_w, window_h, window_w, threshold, per_image):
    merged, sizes, token_map, _ = algm.LocalMerge(x, grid_h=grid_h, grid_w=grid_w, window_h=window_h,
                                                  window_w=window_w, threshold=threshold, per_image=int(per_image),
                                                  **PLUGIN_ATTRIBUTES)
    return merged, sizes, token_map


def _global_merge(x, sizes, token_map, layer_number, per_image):
    merged, new_sizes, new_map, _ = algm.GlobalMerge(x, sizes, token_map, layer_number=layer_number,
                                                     per_image=int(per_image), **PLUGIN_ATTRIBUTES)
    return merged, new_sizes, new_map


def _unmerge(values, token_map):
    return algm.Unmerge(values, token_map, **PLUGIN_ATTRIBUTES)


@contextlib.contextmanager
def quiet(enabled: bool):
    """Silence the exporter's progress prints and warnings when ``enabled``."""
    if not enabled:
        yield
        return
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


TRANSLATIONS = {
    torch.ops.algm.local_merge.default: _local_merge,
    torch.ops.algm.global_merge.default: _global_merge,
    torch.ops.algm.unmerge.default: _unmerge,
    torch.ops.algm.packed_attention.default: translate_packed_attention,
}


class GridScores(torch.nn.Module):
    """What is traced: the patch-grid class scores ``[B, h, w, n_cls]`` (channels last, no copy); the
    deployment outputs are appended to the ONNX graph afterwards (:func:`add_heads`)."""

    def __init__(self, model: Segmenter):
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Channels-last scores."""
        return self.model.patch_scores(images).permute(0, 2, 3, 1)


@dataclass(frozen=True)
class ExportedGraphs:
    """Paths of the graphs written by :func:`export_graphs`."""

    plugin: Path
    portable: Path
    fp16: Path | None = None


def export_plugin_graph(model: Segmenter, image_size: tuple[int, int], opset: int = DEFAULT_OPSET,
                        verbose: bool = False, outputs: tuple[str, ...] = DEFAULT_OUTPUTS) -> onnx.ModelProto:
    """The graph for TensorRT: one ``algm`` node per merge/unmerge (plugin attributes, size-tensor output),
    each with a standard-op function body; the deployment ``outputs`` and, with ALGM,
    ``token_counts``/``token_maps``. Per-image attention is still one ``PackedAttention`` node per block
    (:func:`expand_attention` turns it into standard ops)."""
    register_schemas()
    register_attention_schema()
    example = torch.zeros(2, 3, *image_size)
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    try:
        with quiet(not verbose):
            program = torch.onnx.export(
                GridScores(model.eval()), (example,), dynamo=True, opset_version=opset, input_names=[INPUT_NAME],
                output_names=[GRID_SCORES], dynamic_shapes=({0: batch},), custom_translation_table=TRANSLATIONS,
                optimize=True, verify=False, report=False,
            )
    except Exception as error:
        raise AlgmExportError(f"ONNX export failed: {type(error).__name__}: {str(error).splitlines()[0]}") from error
    return attach_functions(add_heads(add_merge_outputs(program.model_proto), outputs, model.config.patch_size))


def check_graph(model: onnx.ModelProto, what: str) -> None:
    """Full ONNX checker (with strict shape inference); AlgmExportError if it fails."""
    try:
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as error:
        raise AlgmExportError(f"{what} fails the ONNX checker: {str(error).splitlines()[0]}") from error


def save_model(model: onnx.ModelProto, path: Path) -> Path:
    """Write ``model`` to ``path`` atomically (temporary name, then rename)."""
    return write_atomically(path, lambda temporary: onnx.save(model, temporary))


def with_metadata(model: onnx.ModelProto, info: DeploymentInfo) -> onnx.ModelProto:
    """Store ``info`` in the graph's metadata (read back by the runtimes)."""
    onnx.helper.set_model_props(model, {METADATA_KEY: info.to_json()})
    return model


def export_graphs(model: Segmenter, folder: Path, image_size: tuple[int, int], fp16: bool = False,
                  opset: int = DEFAULT_OPSET, verbose: bool = False,
                  outputs: tuple[str, ...] = DEFAULT_OUTPUTS) -> ExportedGraphs:
    """Write ``model.trt.onnx`` (algm nodes), ``model.onnx`` (standard ops only) and, with ``fp16``,
    ``model.fp16.onnx`` (algm nodes, FP16) into ``folder``, each with the deployment ``outputs``.
    Each file is checked, then written atomically."""
    info = DeploymentInfo.of(model, image_size, outputs=outputs)
    exported = with_metadata(export_plugin_graph(model, image_size, opset, verbose, outputs), info)
    plugin = expand_attention(exported, "padded")  # TensorRT: see algm_export/export/attention.py
    portable = inline_portable(expand_attention(exported, "loop"))
    graphs = {PLUGIN_GRAPH: plugin, PORTABLE_GRAPH: portable}
    if fp16:
        graphs[FP16_GRAPH] = with_metadata(convert_to_fp16(plugin),
                                           DeploymentInfo.of(model, image_size, "fp16", outputs))
    for name, graph in graphs.items():
        check_graph(graph, name)
    paths = {name: save_model(graph, folder / name) for name, graph in graphs.items()}
    return ExportedGraphs(plugin=paths[PLUGIN_GRAPH], portable=paths[PORTABLE_GRAPH], fp16=paths.get(FP16_GRAPH))
