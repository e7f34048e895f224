"""Triton ``config.pbtxt`` files: written from an exported graph's inputs and outputs, checked against
Triton's own schema (``tritonclient.grpc.model_config_pb2``, from the ``serve`` extra) and the graph."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import onnx
from google.protobuf import text_encoding

from ..errors import AlgmExportError

ONNX_TO_TRITON = {onnx.TensorProto.FLOAT: "TYPE_FP32", onnx.TensorProto.FLOAT16: "TYPE_FP16",
                  onnx.TensorProto.INT32: "TYPE_INT32", onnx.TensorProto.INT64: "TYPE_INT64",
                  onnx.TensorProto.UINT8: "TYPE_UINT8", onnx.TensorProto.STRING: "TYPE_STRING"}
PREFERRED_BATCH_SIZES = (4, 8)  # kept where <= max_batch_size, plus max_batch_size itself
QUEUE_DELAY_US = 2000  # how long Triton may hold a request to fill a batch (2 ms: small beside a window's run)


@dataclass(frozen=True)
class TensorSpec:
    """One input or output: name, Triton type, dims without the batch dimension (-1: any size)."""

    name: str
    data_type: str
    dims: tuple[int, ...]
    optional: bool = False

    def render(self) -> str:
        """The ``{ name: ... }`` block."""
        optional = " optional: true" if self.optional else ""
        return (f'  {{ name: "{self.name}" data_type: {self.data_type} dims: [ {", ".join(map(str, self.dims))} ]'
                f"{optional} }}")


@dataclass
class ModelConfig:
    """What a config.pbtxt says, in the subset of Triton's ModelConfig this tool writes."""

    name: str
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    max_batch_size: int
    backend: str | None = None
    platform: str | None = None
    dynamic_batching: bool = True
    instance_kind: str = "KIND_CPU"
    instance_count: int = 1
    default_model_filename: str | None = None
    op_libraries: list[str] = field(default_factory=list)
    parameters: dict[str, str] = field(default_factory=dict)

    def preferred_batch_sizes(self) -> list[int]:
        """Preferred sizes for the dynamic batcher: each <= max_batch_size (Triton refuses others)."""
        return sorted({size for size in PREFERRED_BATCH_SIZES if size <= self.max_batch_size} | {self.max_batch_size})

    def render(self) -> str:
        """The config.pbtxt text."""
        lines = [f'name: "{self.name}"']
        if self.backend:
            lines.append(f'backend: "{self.backend}"')
        if self.platform:
            lines.append(f'platform: "{self.platform}"')
        if self.default_model_filename:
            lines.append(f'default_model_filename: "{self.default_model_filename}"')
        lines.append(f"max_batch_size: {self.max_batch_size}")
        lines += ["input [", ",\n".join(spec.render() for spec in self.inputs), "]"]
        lines += ["output [", ",\n".join(spec.render() for spec in self.outputs), "]"]
        if self.dynamic_batching and self.max_batch_size > 0:
            preferred = ", ".join(map(str, self.preferred_batch_sizes()))
            lines.append(f"dynamic_batching {{ preferred_batch_size: [ {preferred} ] "
                         f"max_queue_delay_microseconds: {QUEUE_DELAY_US} }}")
        lines.append(f"instance_group [ {{ count: {self.instance_count} kind: {self.instance_kind} }} ]")
        if self.op_libraries:
            names = ", ".join(f'"{_escape(path)}"' for path in self.op_libraries)
            lines.append(f"model_operations {{ op_library_filename: [ {names} ] }}")
        for key, value in self.parameters.items():
            lines.append(f'parameters {{ key: "{key}" value {{ string_value: "{_escape(value)}" }} }}')
        return "\n".join(lines) + "\n"


def _escape(text: str) -> str:
    return text_encoding.CEscape(text, as_utf8=True)


def graph_tensors(path: Path) -> tuple[list[TensorSpec], list[TensorSpec]]:
    """Inputs and outputs of an ONNX graph with a leading batch dimension, as Triton specs (batch left out)."""
    try:
        graph = onnx.load(path, load_external_data=False).graph
    except Exception as error:  # noqa: BLE001 - protobuf raises DecodeError, onnx its own types
        raise AlgmExportError(f"{path}: not a readable ONNX graph ({type(error).__name__})") from error
    initializers = {tensor.name for tensor in graph.initializer}

    def specs(values) -> list[TensorSpec]:
        result = []
        for value in values:
            if value.name in initializers:
                continue
            tensor = value.type.tensor_type
            if tensor.elem_type not in ONNX_TO_TRITON:
                raise AlgmExportError(f"{path}: {value.name} has an ONNX type ({tensor.elem_type}) Triton cannot take")
            dims = [d.dim_value if d.HasField("dim_value") else -1 for d in tensor.shape.dim]
            if not dims or dims[0] not in (-1, 0):
                raise AlgmExportError(f"{path}: {value.name} has no batch dimension (shape {dims})")
            result.append(TensorSpec(value.name, ONNX_TO_TRITON[tensor.elem_type], tuple(dims[1:])))
        return result

    return specs(graph.input), specs(graph.output)


def parse_config(text: str, source: str):
    """``text`` parsed into Triton's ``ModelConfig`` protobuf (unknown fields or enum values refused)."""
    from google.protobuf import text_format

    try:
        from tritonclient.grpc import model_config_pb2
    except ImportError as error:
        raise AlgmExportError("checking a config.pbtxt needs tritonclient: pip install 'algm-export[serve]'") \
            from error
    try:
        return text_format.Parse(text, model_config_pb2.ModelConfig())
    except text_format.ParseError as error:
        raise AlgmExportError(f"{source}: not a valid Triton model configuration ({error})") from error


def check_config(text: str, source: str, inputs: list[TensorSpec], outputs: list[TensorSpec]) -> None:
    """Refuse a config.pbtxt that Triton's schema does not take, whose batching settings Triton would refuse,
    or whose tensors differ from the model's ``inputs``/``outputs`` (names, types, dims)."""
    from tritonclient.grpc import model_config_pb2

    config = parse_config(text, source)
    if config.max_batch_size < 0:
        raise AlgmExportError(f"{source}: max_batch_size {config.max_batch_size} is negative")
    if config.HasField("dynamic_batching"):
        if config.max_batch_size < 1:
            raise AlgmExportError(f"{source}: dynamic batching needs max_batch_size >= 1")
        too_large = [size for size in config.dynamic_batching.preferred_batch_size if size > config.max_batch_size]
        if too_large:
            raise AlgmExportError(f"{source}: preferred batch size {too_large[0]} is above max_batch_size "
                                  f"{config.max_batch_size}")
    for kind, declared, expected in (("input", config.input, inputs), ("output", config.output, outputs)):
        found = {tensor.name: (model_config_pb2.DataType.Name(tensor.data_type), tuple(tensor.dims))
                 for tensor in declared}
        wanted = {spec.name: (spec.data_type, spec.dims) for spec in expected}
        if set(found) != set(wanted):
            raise AlgmExportError(f"{source}: {kind}s {sorted(found)} differ from the model's {sorted(wanted)}")
        for name, (data_type, dims) in wanted.items():
            if found[name][0] != data_type:
                raise AlgmExportError(f"{source}: {kind} {name} is {found[name][0]}; the model's is {data_type}")
            if found[name][1] != dims:
                raise AlgmExportError(f"{source}: {kind} {name} has dims {list(found[name][1])}; the model's are "
                                      f"{list(dims)}")


def metadata_parameters(info_json: str) -> dict[str, str]:
    """Triton ``parameters`` of the deployment metadata: the whole record (what the whole-image model reads)
    and its main settings readable on their own."""
    info = json.loads(info_json)
    windows = info.get("windows") or {}
    return {"algm_export": info_json,
            "classes": json.dumps(info["class_names"]),
            "normalization": json.dumps(info["normalization"]),
            "windows": json.dumps(windows),
            "batch_rule": (info.get("algm") or {}).get("batch_rule", "dense")}
