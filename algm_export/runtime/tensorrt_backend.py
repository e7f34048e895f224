"""TensorRT execution of an engine built by algm-export (buffers are torch CUDA tensors)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ..errors import AlgmExportError
from ..trt.availability import Unavailable, find_plugin_library, import_tensorrt, require_gpu
from ..trt.builder import SIDECAR_SUFFIX, load_plugins
from .base import Backend, Prediction
from .metadata import DeploymentInfo


class TensorRTBackend(Backend):
    """A ``.plan`` engine and its sidecar; the plugin library comes from the sidecar or is searched for."""

    def __init__(self, path: str | os.PathLike, plugin_library: str | os.PathLike | None = None,
                 name: str = "tensorrt_fp16"):
        import torch

        self.path, self.name = Path(path), name
        sidecar_path = self.path.with_name(self.path.name + SIDECAR_SUFFIX)
        if not self.path.is_file() or not sidecar_path.is_file():
            raise AlgmExportError(f"{self.path}: engine or its sidecar {sidecar_path.name} is missing")
        try:
            tensorrt = import_tensorrt()
            require_gpu()
        except Unavailable as reason:
            raise AlgmExportError(f"{self.path}: cannot run a TensorRT engine here: {reason}") from reason
        sidecar = json.loads(sidecar_path.read_text())
        self.info = DeploymentInfo.from_dict(sidecar["deployment"])
        self.batch_range = (sidecar["batch_profile"]["min"], sidecar["batch_profile"]["max"])
        library = plugin_library or (sidecar["plugin_library"] if Path(sidecar["plugin_library"]).is_file() else None)
        self._plugins = load_plugins(tensorrt, find_plugin_library(library))
        self._logger = tensorrt.Logger(tensorrt.Logger.WARNING)
        self._runtime = tensorrt.Runtime(self._logger)
        self.engine = self._runtime.deserialize_cuda_engine(self.path.read_bytes())
        if self.engine is None:
            raise AlgmExportError(f"{self.path}: TensorRT could not deserialize the engine (other TensorRT version "
                                  "or GPU?)")
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        is_input = lambda n: self.engine.get_tensor_mode(n) == tensorrt.TensorIOMode.INPUT  # noqa: E731
        self.input_name = next(n for n in names if is_input(n))
        self.output_names = [n for n in names if not is_input(n)]
        self._dtypes = {tensorrt.float32: torch.float32, tensorrt.float16: torch.float16,
                        tensorrt.int32: torch.int32, tensorrt.int64: torch.int64}
        self._torch = torch

    def _run(self, images: np.ndarray, outputs: tuple[str, ...]) -> Prediction:
        torch = self._torch
        if not self.batch_range[0] <= images.shape[0] <= self.batch_range[1]:
            raise AlgmExportError(f"{self.path}: batch {images.shape[0]} is outside the engine's profile "
                                  f"[{self.batch_range[0]}, {self.batch_range[1]}]")
        batch = torch.from_numpy(images).cuda()
        self.context.set_input_shape(self.input_name, tuple(batch.shape))
        self.context.set_tensor_address(self.input_name, batch.data_ptr())
        buffers = {}  # the engine computes every output; only the wanted ones are copied to the host
        for name in self.output_names:
            shape = tuple(self.context.get_tensor_shape(name))
            if min(shape, default=0) < 0:
                raise AlgmExportError(f"{self.path}: output {name} has a data-dependent shape {shape}")
            buffers[name] = torch.empty(shape, dtype=self._dtypes[self.engine.get_tensor_dtype(name)], device="cuda")
            self.context.set_tensor_address(name, buffers[name].data_ptr())
        stream = torch.cuda.current_stream()
        if not self.context.execute_async_v3(stream.cuda_stream):
            raise AlgmExportError(f"{self.path}: TensorRT execution failed")
        stream.synchronize()
        counts = buffers.get("token_counts")
        return Prediction({name: buffers[name].cpu().numpy() for name in outputs},
                          [int(c) for c in counts.cpu()] if counts is not None else None,
                          buffers["token_maps"].cpu().numpy() if "token_maps" in buffers else None)
