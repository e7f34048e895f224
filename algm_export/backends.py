"""The backend registry: every backend the pipeline writes, verifies, builds, benchmarks or serves, one row
each. The pipeline, ``verify``, ``build --engines``, the help text and the Triton repository read it; adding a
backend is one row. A leaf beside :mod:`algm_export.artifacts` (standard library only).

A row's ``precision`` names its parity criterion (``CRITERIA`` in :mod:`algm_export.verify.parity`, keyed by
:data:`PRECISIONS`)."""

from __future__ import annotations

from dataclasses import dataclass

from .artifacts import FP16_GRAPH, FP16_INT8_GRAPH, FP16_INT8_PLAN, FP16_PLAN, INT8_GRAPH, PLUGIN_GRAPH, PORTABLE_GRAPH

ONNXRUNTIME, TENSORRT = "onnxruntime", "tensorrt"
PRECISIONS = ("fp32", "fp16", "int8")


@dataclass(frozen=True)
class BackendKind:
    """One backend: a runtime running one file of the output folder in one precision."""

    name: str  # its key in report.json (parity, polygraphy commands)
    runtime: str  # ONNXRUNTIME or TENSORRT
    precision: str  # one of PRECISIONS: the parity criterion it is judged with
    graph: str  # the ONNX graph it runs (ONNX Runtime) or is built from (TensorRT)
    export_flags: str = ""  # the flags with which `algm-export MODEL` writes ``graph``
    engine: str | None = None  # TensorRT: the engine file
    custom_ops: bool = False  # ONNX Runtime with the algm nodes on our kernels (libalgm_ort_ops.so, --ort-ops)
    triton_model: str | None = None  # its model name in a Triton repository (`algm-export triton`)

    @property
    def file(self) -> str:
        """The file this backend loads: the engine, else the graph."""
        return self.engine or self.graph

    @property
    def cli_name(self) -> str:
        """Its name for `build --engines` (TensorRT engines): the precision."""
        return self.precision


BACKENDS: tuple[BackendKind, ...] = (
    BackendKind("onnxruntime_fp32", ONNXRUNTIME, "fp32", PORTABLE_GRAPH, triton_model="algm_onnx"),
    BackendKind("onnxruntime_fp32_trt_graph", ONNXRUNTIME, "fp32", PLUGIN_GRAPH),
    BackendKind("onnxruntime_algm_ops", ONNXRUNTIME, "fp32", PLUGIN_GRAPH, custom_ops=True,
                triton_model="algm_onnx_ops"),
    BackendKind("onnxruntime_fp16", ONNXRUNTIME, "fp16", FP16_GRAPH, "--fp16"),
    BackendKind("onnxruntime_int8", ONNXRUNTIME, "int8", INT8_GRAPH, "--int8"),
    BackendKind("onnxruntime_fp16_int8", ONNXRUNTIME, "int8", FP16_INT8_GRAPH, "--fp16 --int8"),
    BackendKind("tensorrt_fp16", TENSORRT, "fp16", FP16_GRAPH, "--fp16", engine=FP16_PLAN, triton_model="algm_trt"),
    BackendKind("tensorrt_int8", TENSORRT, "int8", FP16_INT8_GRAPH, "--fp16 --int8", engine=FP16_INT8_PLAN,
                triton_model="algm_trt_int8"),
)
BY_NAME: dict[str, BackendKind] = {kind.name: kind for kind in BACKENDS}

# Views of the registry, in its order.
ONNXRUNTIME_GRAPHS = tuple(k for k in BACKENDS if k.runtime == ONNXRUNTIME and not k.custom_ops)  # verified always
ORT_OPS = next(k for k in BACKENDS if k.custom_ops)  # verified with --ort-ops
ORT_PORTABLE = BY_NAME["onnxruntime_fp32"]  # the standard-op graph: what runs anywhere
ORT_PLUGIN_GRAPH = BY_NAME["onnxruntime_fp32_trt_graph"]  # ONNX Runtime running the algm functions of model.trt.onnx
ENGINES: dict[str, BackendKind] = {k.cli_name: k for k in BACKENDS if k.runtime == TENSORRT}  # `build --engines`
FP16_ENGINE, INT8_ENGINE = ENGINES["fp16"], ENGINES["int8"]
ONNXRUNTIME_INT8 = tuple(k for k in ONNXRUNTIME_GRAPHS if k.precision == "int8")


def engine_of_file(name: str) -> BackendKind | None:
    """The TensorRT row whose engine file is ``name`` (None for another file)."""
    return next((k for k in ENGINES.values() if k.engine == name), None)
