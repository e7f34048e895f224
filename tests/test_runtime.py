"""algm_export.runtime: one interface, preprocessing, postprocessing, errors; the Python sample."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from algm_export.errors import AlgmExportError
from algm_export.runtime import segment
from algm_export.runtime.loading import open_backend
from algm_export.runtime.onnxruntime_backend import OnnxRuntimeBackend
from algm_export.runtime.torch_backend import TorchBackend

REPO = Path(__file__).resolve().parents[1]


def test_backends_share_the_interface(pipeline_run, tiny_model, photos):
    onnx_backend = open_backend(pipeline_run[2] / "model.onnx")
    torch_backend = TorchBackend(tiny_model, (512, 512))
    assert isinstance(onnx_backend, OnnxRuntimeBackend)
    assert onnx_backend.info.normalization == tiny_model.config.normalization
    assert onnx_backend.info.class_names == tiny_model.config.class_names
    assert onnx_backend.info.algm == tiny_model.algm and onnx_backend.info.image_size == (512, 512)
    photo = photos["chelsea"]  # 451x300: labels come back at the photo's size
    onnx_labels, torch_labels = segment(onnx_backend, [photo])[0], segment(torch_backend, [photo])[0]
    assert onnx_labels.shape == photo.shape[:2]
    assert (onnx_labels == torch_labels).mean() >= 0.999
    prediction = onnx_backend.run(onnx_backend.preprocess([photo, photos["rocket"]]))
    assert prediction.outputs["labels"].shape == (2, 512, 512) and prediction.scores.shape == (2, 150, 32, 32)
    assert prediction.logits is None  # not among the default outputs
    assert prediction.token_maps.shape == (2, 2, 1024) and len(prediction.token_counts) == 2


def test_wrong_batch_shape_is_refused(pipeline_run):
    backend = open_backend(pipeline_run[2] / "model.onnx")
    for shape in [(1, 3, 256, 256), (3, 512, 512), (0, 3, 512, 512)]:
        with pytest.raises(AlgmExportError, match=r"does not fit this model, which takes \[batch, 3, 512, 512\]"):
            backend.run(np.zeros(shape, np.float32))


def test_not_an_onnx_file(tmp_path):
    junk = tmp_path / "model.onnx"
    junk.write_bytes(b"\x00\x01 not protobuf")
    with pytest.raises(AlgmExportError, match="cannot load it as an ONNX model"):
        OnnxRuntimeBackend(junk)
    with pytest.raises(AlgmExportError, match="no such file"):
        OnnxRuntimeBackend(tmp_path / "missing.onnx")


def test_python_sample_writes_a_label_png(pipeline_run, tmp_path, photos):
    photo = tmp_path / "coffee.png"
    Image.fromarray(photos["coffee"]).save(photo)
    output = tmp_path / "labels.png"
    result = subprocess.run([sys.executable, str(REPO / "samples/python/segment_photo.py"),
                             str(pipeline_run[2] / "model.onnx"), "--image", str(photo), "-o", str(output)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    written = np.asarray(Image.open(output))
    assert written.shape == (400, 1200, 3)  # photo | label map
    assert "most frequent classes" in result.stdout
    bad = subprocess.run([sys.executable, str(REPO / "samples/python/segment_photo.py"), str(photo)],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "cannot load it as an ONNX model" in bad.stderr
