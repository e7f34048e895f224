"""ONNX Runtime execution of exported graphs (CPU by default)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from ..backends import ORT_OPS, ORT_PLUGIN_GRAPH
from ..deployment import DeploymentInfo
from ..errors import AlgmExportError
from .base import Backend, Prediction

QUIET = 3  # ONNX Runtime log severity: errors only


def session_options(threads: int | None = None, profile_prefix: str | None = None,
                    custom_ops_library: Path | None = None) -> ort.SessionOptions:
    """Session options: quiet logs, all graph optimizations, optional thread count, profiling and custom-op
    library (e.g. libalgm_ort_ops.so)."""
    options = ort.SessionOptions()
    if custom_ops_library is not None:
        if not custom_ops_library.is_file():
            raise AlgmExportError(f"{custom_ops_library}: no such custom-op library")
        try:
            options.register_custom_ops_library(str(custom_ops_library))
        except Exception as error:  # noqa: BLE001 - ORT raises its own Fail type
            raise AlgmExportError(f"{custom_ops_library}: ONNX Runtime cannot load it as a custom-op library "
                                  f"({str(error).strip()[:160]})") from error
    options.log_severity_level = QUIET
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = threads
    if profile_prefix:
        options.enable_profiling = True
        options.profile_file_prefix = profile_prefix
    return options


class OnnxRuntimeBackend(Backend):
    """An exported graph (``model.onnx``, ``model.trt.onnx`` or ``model.fp16.onnx``) in ONNX Runtime.

    With ``custom_ops`` (libalgm_ort_ops.so) the graph's algm nodes run our C++ kernels: the model-local
    function bodies are stripped first, so that no node can fall back to its standard-op body (ONNX Runtime
    1.32 prefers a registered custom op over a model-local function anyway; without the library the stripped
    graph does not load)."""

    def __init__(self, path: str | os.PathLike, name: str | None = None, threads: int | None = None,
                 providers: list[str] | None = None, profile_prefix: str | None = None,
                 custom_ops: str | os.PathLike | None = None):
        self.path = Path(path)
        if not self.path.is_file():
            raise AlgmExportError(f"{self.path}: no such file")
        self.custom_ops = Path(custom_ops) if custom_ops else None
        self._settings = (threads, profile_prefix, providers or ["CPUExecutionProvider"])
        self.session = self._new_session(None)
        self.info = DeploymentInfo.from_metadata(str(self.path), self.session.get_modelmeta().custom_metadata_map)
        self.name = name or self._default_name()
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = [output.name for output in self.session.get_outputs()]
        self._sessions = {tuple(self.info.outputs): self.session}

    def _default_name(self) -> str:
        """The backend's key in report.json: onnxruntime_algm_ops with our kernels, onnxruntime_fp32_trt_graph for
        the FP32 graph with algm nodes (model.trt.onnx), else onnxruntime_<precision>."""
        if self.custom_ops is not None:
            return ORT_OPS.name
        precision = self.info.precision.replace("-", "_")
        if precision == "fp32" and _has_algm_nodes(self.path):
            return ORT_PLUGIN_GRAPH.name
        return f"onnxruntime_{precision}"

    def _new_session(self, graph: onnx.ModelProto | None) -> ort.InferenceSession:
        """A session of ``graph`` (None: the file as it is) with this backend's settings: threads, profiling,
        providers and, with the custom-op library, the graph's model-local function bodies stripped."""
        threads, profile_prefix, providers = self._settings
        options = session_options(threads, profile_prefix, self.custom_ops)
        if self.custom_ops is not None:
            from ..export.graph_edits import strip_functions

            graph = strip_functions(graph if graph is not None else onnx.load(self.path))
        model = str(self.path) if graph is None else graph.SerializeToString()
        try:
            return ort.InferenceSession(model, options, providers=providers)
        except Exception as error:  # ORT raises its own InvalidProtobuf/Fail/... types
            message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise AlgmExportError(f"{self.path}: ONNX Runtime cannot load it as an ONNX model ({message[:160]})") \
                from error

    def _session(self, outputs: tuple[str, ...]) -> ort.InferenceSession:
        """A session computing only ``outputs`` (+ merge bookkeeping): ONNX Runtime runs every node of a graph,
        so a pruned copy is built (once) when fewer outputs than the graph's are asked for, with the same
        settings (custom-op library included: the pruned graph's algm nodes still run our kernels)."""
        if outputs not in self._sessions:
            from ..export.heads import keep_outputs

            kept = [n for n in self.output_names if n in outputs or n not in self.info.outputs]
            self._sessions[outputs] = self._new_session(keep_outputs(onnx.load(self.path), kept))
        return self._sessions[outputs]

    def _run(self, images: np.ndarray, outputs: tuple[str, ...]) -> Prediction:
        session = self._session(outputs)
        names = [output.name for output in session.get_outputs()]
        results = dict(zip(names, session.run(None, {self.input_name: images})))
        return Prediction({name: results[name] for name in outputs}, results.get("token_counts"),
                          results.get("token_maps"))

    def end_profiling(self) -> list[Path]:
        """Stop profiling and return the trace files (JSON) of every session run so far: the graph's own first,
        then the pruned copies' (see :meth:`_session`)."""
        return [Path(session.end_profiling()) for session in self._sessions.values()]


def _has_algm_nodes(path: Path) -> bool:
    """Whether the graph at ``path`` holds algm-domain nodes (the plugin graph) rather than standard ops only."""
    from ..ops_contract import DOMAIN

    return any(node.domain == DOMAIN for node in onnx.load(path, load_external_data=False).graph.node)
