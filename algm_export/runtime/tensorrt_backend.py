"""TensorRT execution of an engine built by algm-export (buffers are torch CUDA tensors).

Imports only the engine's sidecar names (:mod:`algm_export.artifacts`) and the TensorRT checks: loading a
``.plan`` never imports the exporter, onnx, onnxscript or graphsurgeon.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..artifacts import TOKEN_COUNTS, TOKEN_MAPS, read_sidecar
from ..backends import FP16_ENGINE
from ..deployment import DeploymentInfo
from ..errors import AlgmExportError
from ..trt.availability import (
    TensorRTFailure,
    Unavailable,
    find_plugin_library,
    import_tensorrt,
    load_plugin_library,
    require_gpu,
)
from .base import Backend, Prediction


class TensorRTBackend(Backend):
    """A ``.plan`` engine and its sidecar; the plugin library comes from the sidecar or is searched for.

    Buffers are allocated once per batch size and reused: inputs and device-resident outputs on the GPU,
    outputs that TensorRT keeps on the host (``get_tensor_location`` is HOST, as for shape/size tensors such as
    ``token_counts`` may be) in pinned host memory. :meth:`infer` runs on buffers already on the device, so
    timing it measures inference alone; :meth:`run` adds the copies.
    """

    def __init__(self, path: str | os.PathLike, plugin_library: str | os.PathLike | None = None,
                 name: str = FP16_ENGINE.name):
        self.path, self.name = Path(path), name
        if not self.path.is_file():
            raise AlgmExportError(f"{self.path}: no such engine file")
        sidecar = read_sidecar(self.path)
        try:
            tensorrt = import_tensorrt()
            require_gpu()
        except Unavailable as reason:
            raise AlgmExportError(f"{self.path}: cannot run a TensorRT engine here: {reason}") from reason
        import torch

        try:
            self.info = DeploymentInfo.from_dict(sidecar["deployment"])
            self.batch_range = (sidecar["batch_profile"]["min"], sidecar["batch_profile"]["max"])
            recorded = sidecar.get("plugin_library")
        except (KeyError, TypeError) as error:
            raise AlgmExportError(f"{self.path}: damaged sidecar ({error!r} missing)") from error
        library = plugin_library or recorded_plugin_library(self.path, recorded)
        try:
            load_plugin_library(tensorrt, find_plugin_library(library))
        except Unavailable as reason:
            raise AlgmExportError(f"{self.path}: {reason}") from reason
        self._logger = tensorrt.Logger(tensorrt.Logger.WARNING)
        self._runtime = tensorrt.Runtime(self._logger)
        self.engine = self._runtime.deserialize_cuda_engine(self.path.read_bytes())
        if self.engine is None:
            raise TensorRTFailure(f"{self.path}: TensorRT could not deserialize the engine (other TensorRT version "
                                  "or GPU?)")
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        is_input = lambda n: self.engine.get_tensor_mode(n) == tensorrt.TensorIOMode.INPUT  # noqa: E731
        self.input_name = next(n for n in names if is_input(n))
        self.output_names = [n for n in names if not is_input(n)]
        self._on_host = {n for n in self.output_names
                         if self.engine.get_tensor_location(n) == tensorrt.TensorLocation.HOST}
        self._dtypes = {tensorrt.float32: torch.float32, tensorrt.float16: torch.float16,
                        tensorrt.int32: torch.int32, tensorrt.int64: torch.int64}
        self._torch = torch
        self._buffers: dict[int, dict[str, object]] = {}

    def buffers(self, batch: int) -> dict[str, object]:
        """The input and output tensors for ``batch`` images (allocated on first use, then reused)."""
        if not self.batch_range[0] <= batch <= self.batch_range[1]:
            raise AlgmExportError(f"{self.path}: batch {batch} is outside the engine's profile "
                                  f"[{self.batch_range[0]}, {self.batch_range[1]}]")
        if batch not in self._buffers:
            torch = self._torch
            height, width = self.info.image_size
            tensors = {self.input_name: torch.empty((batch, 3, height, width), dtype=torch.float32, device="cuda")}
            self.context.set_input_shape(self.input_name, (batch, 3, height, width))
            for name in self.output_names:
                shape = tuple(self.context.get_tensor_shape(name))
                if min(shape, default=0) < 0:
                    raise TensorRTFailure(f"{self.path}: output {name} has a data-dependent shape {shape}")
                dtype = self._dtypes[self.engine.get_tensor_dtype(name)]
                tensors[name] = (torch.empty(shape, dtype=dtype, pin_memory=True) if name in self._on_host
                                 else torch.empty(shape, dtype=dtype, device="cuda"))
            self._buffers[batch] = tensors
        return self._buffers[batch]

    def enqueue(self, batch: int) -> dict[str, object]:
        """Queue the engine on ``buffers(batch)``'s input (already on the GPU) on torch's current stream,
        without waiting; returns the output tensors, where TensorRT writes them (device, or pinned host for
        host-resident outputs, valid once the stream is synchronized)."""
        tensors = self.buffers(batch)
        self.context.set_input_shape(self.input_name, tuple(tensors[self.input_name].shape))
        for name, tensor in tensors.items():
            self.context.set_tensor_address(name, tensor.data_ptr())
        if not self.context.execute_async_v3(self._torch.cuda.current_stream().cuda_stream):
            raise TensorRTFailure(f"{self.path}: TensorRT execution failed (see TensorRT's messages above)")
        return {name: tensors[name] for name in self.output_names}

    def infer(self, batch: int) -> dict[str, object]:
        """:meth:`enqueue`, then wait for the stream."""
        outputs = self.enqueue(batch)
        self._torch.cuda.current_stream().synchronize()
        return outputs

    def _run(self, images: np.ndarray, outputs: tuple[str, ...]) -> Prediction:
        batch = images.shape[0]
        self.buffers(batch)[self.input_name].copy_(self._torch.from_numpy(images))
        results = self.infer(batch)  # the engine computes every output; only the wanted ones are copied
        wanted = (*outputs, TOKEN_COUNTS, TOKEN_MAPS)
        host = {name: results[name].cpu().numpy() for name in wanted if name in results}
        deployment = {name: host[name].astype(np.float32) if host[name].dtype == np.float16 else host[name]
                      for name in outputs}
        counts = host.get(TOKEN_COUNTS)
        return Prediction(deployment, counts.astype(np.int64) if counts is not None else None, host.get(TOKEN_MAPS))


def recorded_plugin_library(engine: Path, recorded: str | None) -> Path | None:
    """The sidecar's ``plugin_library`` where that file exists, a relative path taken from the engine's folder (as
    the C++ sample does, so that an engine folder moved with its library keeps working); else None (searched)."""
    if not recorded:
        return None
    library = Path(recorded) if Path(recorded).is_absolute() else engine.parent / recorded
    return library if library.is_file() else None
