"""ONNX Runtime execution of exported graphs (CPU by default)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from ..errors import AlgmExportError
from .base import Backend, Prediction
from .metadata import DeploymentInfo

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
        options = session_options(threads, profile_prefix, Path(custom_ops) if custom_ops else None)
        try:
            self.session = ort.InferenceSession(_without_functions(self.path) if custom_ops else str(self.path),
                                                options, providers=providers or ["CPUExecutionProvider"])
        except Exception as error:  # ORT raises its own InvalidProtobuf/Fail/... types
            message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise AlgmExportError(f"{self.path}: ONNX Runtime cannot load it as an ONNX model ({message[:160]})") \
                from error
        self.info = DeploymentInfo.from_metadata(str(self.path), self.session.get_modelmeta().custom_metadata_map)
        self.name = name or f"onnxruntime_{self.info.precision.replace('-', '_')}"  # as in report.json
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = [output.name for output in self.session.get_outputs()]
        self._options = (threads, providers or ["CPUExecutionProvider"])
        self._sessions = {tuple(self.info.outputs): self.session}

    def _session(self, outputs: tuple[str, ...]) -> ort.InferenceSession:
        """A session computing only ``outputs`` (+ merge bookkeeping): ONNX Runtime runs every node of a graph,
        so a pruned copy is built (once) when fewer outputs than the graph's are asked for."""
        if outputs not in self._sessions:
            from ..export.heads import keep_outputs

            kept = [n for n in self.output_names if n in outputs or n not in self.info.outputs]
            pruned = keep_outputs(onnx.load(self.path), kept)
            self._sessions[outputs] = ort.InferenceSession(pruned.SerializeToString(),
                                                           session_options(self._options[0]),
                                                           providers=self._options[1])
        return self._sessions[outputs]

    def _run(self, images: np.ndarray, outputs: tuple[str, ...]) -> Prediction:
        session = self._session(outputs)
        names = [output.name for output in session.get_outputs()]
        results = dict(zip(names, session.run(None, {self.input_name: images})))
        return Prediction({name: results[name] for name in outputs}, results.get("token_counts"),
                          results.get("token_maps"))

    def end_profiling(self) -> Path:
        """Stop profiling and return the trace file (JSON)."""
        return Path(self.session.end_profiling())


def _without_functions(path: Path) -> bytes:
    """The serialized graph at ``path`` without its model-local function bodies."""
    import onnx

    from ..export.graph_edits import strip_functions

    return strip_functions(onnx.load(path)).SerializeToString()
