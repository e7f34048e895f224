"""Triton Python-backend model ``algm_segment`` (copied to ``algm_segment/1/model.py`` by ``algm-export
triton``): one whole image per request (``image``: uint8 [H, W, 3] of any size, or ``encoded``: PNG/JPEG
bytes) -> ``labels`` [H, W] int32 at the image's own size and ``token_counts`` [windows, merges].

The sliding window, averaging and resizing are algm-export's runtime code (``pip install algm-export`` in the
Python the backend runs); each image's windows run on the core model (parameter ``core_model``) through BLS,
so windows of concurrent requests batch there. A bad request gets an error response naming the problem.
"""

import json

import numpy as np
import triton_python_backend_utils as pb_utils

from algm_export.deployment import DeploymentInfo
from algm_export.errors import AlgmExportError
from algm_export.runtime.sliding import SlidingWindow
from algm_export.serving.requests import request_photo
from algm_export.serving.windows import RemoteWindows, token_count_array


class TritonPythonModel:
    """Sliding-window segmentation of whole images over the core window model."""

    def initialize(self, args):
        """Read the deployment metadata and settings from the model configuration's parameters."""
        config = json.loads(args["model_config"])
        parameters = {key: value["string_value"] for key, value in config.get("parameters", {}).items()}
        self.core = parameters["core_model"]
        self.max_pixels = int(parameters["max_pixels"])
        info = DeploymentInfo.from_dict(json.loads(parameters["algm_export"]))
        self.sliding = SlidingWindow(RemoteWindows(info, self._infer, name=self.core),
                                     batch=int(parameters["window_batch"]))

    def _infer(self, images, names):
        request = pb_utils.InferenceRequest(model_name=self.core, requested_output_names=list(names),
                                            inputs=[pb_utils.Tensor("images", images)])
        response = request.exec()
        if response.has_error():
            raise AlgmExportError(f"{self.core}: {response.error().message()}")
        return {name: pb_utils.get_output_tensor_by_name(response, name).as_numpy() for name in names}

    def execute(self, requests):
        """One response per request, in order; a bad request's error does not affect the others."""
        responses = []
        for request in requests:
            try:
                image = pb_utils.get_input_tensor_by_name(request, "image")
                encoded = pb_utils.get_input_tensor_by_name(request, "encoded")
                photo = request_photo(None if image is None else image.as_numpy(),
                                      None if encoded is None else encoded.as_numpy(), self.max_pixels)
                result = next(iter(self.sliding.run([photo])))
                responses.append(pb_utils.InferenceResponse(output_tensors=[
                    pb_utils.Tensor("labels", result.labels.astype(np.int32)),
                    pb_utils.Tensor("token_counts", token_count_array(result))]))
            except AlgmExportError as error:
                responses.append(pb_utils.InferenceResponse(output_tensors=[], error=pb_utils.TritonError(str(error))))
        return responses
