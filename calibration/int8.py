"""The INT8 stage of ``algm-export MODEL --int8``: calibrate (or reuse the cache), write the Q/DQ graphs."""

from __future__ import annotations

import dataclasses
import itertools
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import CalibrationMethod, QuantType, create_calibrator
from onnxruntime.quantization.calibrate import TensorsData

from algm_export.artifacts import CALIBRATION_CACHE, FP16_GRAPH, FP16_INT8_GRAPH, INPUT_NAME, INT8_GRAPH, PORTABLE_GRAPH
from algm_export.deployment import DeploymentInfo
from algm_export.errors import AlgmExportError
from algm_export.export.onnx_export import check_graph, save_model, with_metadata

from .cache import cache_key, load_ranges, save_ranges
from .images import DEPLOYMENT_NOTE, CalibrationImages, ImageReader, calibration_batches
from .mixed import SEARCH_IMAGES, choose_int8
from .recipe import (
    activation_amax,
    check_merge_inputs_float,
    dequantized_inputs,
    keep_quantized,
    linear_matmuls,
    quantize_onnxruntime,
    quantize_tensorrt,
)
from .scopes import ALL_LINEAR, DEFAULT_ALPHA, DEFAULT_METHOD, DEFAULT_SCOPE, check_method, check_scope
from .smoothing import Smoothing, apply, measure

ORT_METHODS = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
               "entropy": CalibrationMethod.Entropy}
# x86 CPUs: unsigned activations with signed weights (ONNX Runtime's U8S8 kernels).
ONNXRUNTIME_ACTIVATIONS = QuantType.QUInt8


@dataclass(frozen=True)
class Int8Settings:
    """``--calib-images``, ``--calib-count``, ``--int8-scope``, ``--calib-method``, ``--smooth-alpha`` (0: no
    smoothing)."""

    images: Path | None = None
    count: int | None = None
    scope: str = DEFAULT_SCOPE
    method: str = DEFAULT_METHOD
    smooth_alpha: float = DEFAULT_ALPHA

    def check(self) -> CalibrationImages:
        """The selected images (not read yet); one-line AlgmExportError for a bad scope, method, count or folder."""
        check_scope(self.scope)
        check_method(self.method)
        if not 0 <= self.smooth_alpha < 1:
            raise AlgmExportError(f"--smooth-alpha must be in [0, 1) (0: no smoothing), got {self.smooth_alpha:g}")
        return CalibrationImages.select(self.images, self.count)

    def calibration_images(self) -> CalibrationImages:
        """The first ``--calib-count`` readable images of the selection (unreadable files skipped with a note)."""
        return self.check().readable(self.count)


def calibrate(graph: Path, images: CalibrationImages, info: DeploymentInfo, method: str = DEFAULT_METHOD
              ) -> TensorsData:
    """Calibration (``method``: one of ``ORT_METHODS``) of every MatMul tensor of ``graph`` in ONNX Runtime, one
    image at a time."""
    with tempfile.TemporaryDirectory(prefix="algm-calibrate-") as folder:
        calibrator = create_calibrator(graph, ["MatMul"], augmented_model_path=str(Path(folder) / "augmented.onnx"),
                                       calibrate_method=ORT_METHODS[check_method(method)])
        calibrator.collect_data(ImageReader(images, info, INPUT_NAME))
        return calibrator.compute_data()


def calibrated_ranges(folder: Path, images: CalibrationImages, method: str = DEFAULT_METHOD,
                      graph: Path | None = None) -> tuple[TensorsData, bool]:
    """Ranges of ``graph`` (default: ``folder``'s FP32 graph) from ``folder``'s ``calibration.cache.json`` when
    still valid, else calibrated and cached; and whether the cache was reused."""
    graph = graph or folder / PORTABLE_GRAPH
    info = DeploymentInfo.from_onnx(str(graph), onnx.load(graph, load_external_data=False))
    key = cache_key(graph, images, info, method)
    ranges = load_ranges(folder / CALIBRATION_CACHE, key)
    if ranges is not None:
        return ranges, True
    ranges = calibrate(graph, images, info, method)
    save_ranges(folder / CALIBRATION_CACHE, key, images, ranges)
    return ranges, False


def _save(model: onnx.ModelProto, info: DeploymentInfo, precision: str, path: Path) -> Path:
    model = with_metadata(model, dataclasses.replace(info, precision=precision))
    check_graph(model, path.name)
    check_merge_inputs_float(model, path.name)
    return save_model(model, path)


def write_int8_graphs(folder: Path, settings: Int8Settings, fp16: bool, images: CalibrationImages | None = None,
                      verification: dict[str, np.ndarray] | None = None) -> dict:
    """Write ``model.int8.onnx`` (and with ``fp16`` ``model.fp16.int8.onnx``) next to the exported graphs in
    ``folder``, with the MatMuls that accuracy-guided mixed precision keeps INT8 (:mod:`.mixed`, within
    ``--int8-scope``); returns the ``int8`` entry of report.json (``verification``: the verification images,
    to record whether the calibration images are disjoint from them)."""
    images = images or settings.calibration_images()
    if images.bundled:
        print(f"      note: {DEPLOYMENT_NOTE.format(count=len(images.names))}")
    portable = onnx.load(folder / PORTABLE_GRAPH)
    info = DeploymentInfo.from_onnx(PORTABLE_GRAPH, portable)
    candidates = linear_matmuls(portable, settings.scope)
    with tempfile.TemporaryDirectory(prefix="algm-int8-") as work:
        source, smoothing = folder / PORTABLE_GRAPH, None
        if settings.smooth_alpha:
            smoothing = measure(portable, candidates, calibration_batches(images, info), settings.smooth_alpha)
            portable, source = apply(portable, smoothing), Path(work) / PORTABLE_GRAPH
            onnx.save(portable, source)
            print(f"      smoothing: {_smoothing_line(smoothing)}")
        start = time.perf_counter()
        ranges, reused = calibrated_ranges(folder, images, settings.method, source)
        print(f"      {'reused ' + CALIBRATION_CACHE if reused else 'calibrated'} on {len(images.names)} images "
              f"({images.source}, {settings.method}) in {time.perf_counter() - start:.1f} s")
        qdq = quantize_onnxruntime(source, candidates, ranges, ONNXRUNTIME_ACTIVATIONS)
    start = time.perf_counter()
    search = np.concatenate(list(itertools.islice(calibration_batches(images, info), SEARCH_IMAGES)))
    choice = choose_int8(portable, qdq, candidates, search)
    print(f"      mixed precision: {choice.summary()} ({choice.sessions} ONNX Runtime sessions, "
          f"{time.perf_counter() - start:.1f} s)")
    model = keep_quantized(qdq, portable, set(choice.int8))
    if set(dequantized_inputs(model)) != set(choice.int8):  # the count reported must be the graph's
        raise AlgmExportError(f"INT8: the Q/DQ graph quantizes {len(dequantized_inputs(model))} MatMuls, mixed "
                              f"precision chose {len(choice.int8)}")
    written = [_save(model, info, "int8", folder / INT8_GRAPH)]
    if fp16:
        fp16_model = onnx.load(folder / FP16_GRAPH)
        fp16_model = apply(fp16_model, smoothing) if smoothing else fp16_model
        written.append(_save(quantize_tensorrt(fp16_model, choice.int8, activation_amax(portable, ranges)),
                             info, "fp16-int8", folder / FP16_INT8_GRAPH))
    for path in written:
        print(f"      {path.name:<20} {path.stat().st_size / 1e6:6.1f} MB")
    return {
        "scope": settings.scope,
        "quantized_matmuls": len(choice.int8),
        "scope_matmuls": len(candidates),
        "linear_matmuls": len(linear_matmuls(portable, ALL_LINEAR)),
        "summary": choice.summary(),
        "mixed_precision": choice.to_dict(),
        "graphs": [path.name for path in written],
        "smoothing": smoothing.to_dict() if smoothing else {"alpha": 0, "layer_norms": 0},
        "calibration": {"images": list(images.names), "source": images.source, "method": settings.method,
                        "cache": CALIBRATION_CACHE, "cache_reused": reused,
                        "disjoint_from_verification": None if verification is None
                        else images.disjoint_from(verification)},
        "recipe": "Linear-layer MatMuls only (within the scope, the most sensitive kept float until the labels on "
                  "the calibration images meet the target): per-channel symmetric INT8 weights, per-tensor "
                  f"activations ({settings.method} calibration), outputs not quantized"
                  + (f"; SmoothQuant alpha {settings.smooth_alpha:g} folded into LayerNorm -> Linear pairs"
                     if smoothing else "") + "; merge subgraph, LayerNorm, "
                  "Softmax, GELU and attention MatMuls float",
    }


def _smoothing_line(smoothing: Smoothing) -> str:
    """``N LayerNorms into M MatMuls (alpha a, s in [lo, hi])`` for the progress output."""
    if not smoothing.scales:
        return "no LayerNorm feeds only MatMuls of the scope"
    entry = smoothing.to_dict()
    low, high = entry["scale_range"]
    return (f"{entry['layer_norms']} LayerNorms into {len(entry['matmuls'])} MatMuls (alpha {smoothing.alpha:g}, "
            f"s in [{low:.3g}, {high:.3g}])")
