"""The calibration statistics cache, ``calibration.cache.json``: per-tensor ranges of the FP32 graph,
reused when the graph, the images, their preprocessing and the method are unchanged (keyed by hashes)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import onnxruntime
from onnxruntime.quantization.calibrate import CalibrationCacheEncoder, TensorsData

from algm_export.deployment import DeploymentInfo
from algm_export.files import write_atomically

from .images import CalibrationImages

CACHE_FORMAT = 1


def file_digest(path: Path) -> str:
    """SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def cache_key(graph: Path, images: CalibrationImages, info: DeploymentInfo, method: str) -> dict:
    """What the ranges depend on: graph and image hashes, preprocessing, method, ONNX Runtime version."""
    return {
        "format": CACHE_FORMAT,
        "graph_sha256": file_digest(graph),
        "images_sha256": images.digest(),
        "image_count": len(images.names),
        "preprocessing": {"image_size": list(info.image_size), "normalization": info.to_dict()["normalization"]},
        "method": method,
        "onnxruntime": onnxruntime.__version__,
    }


def load_ranges(path: Path, key: dict) -> TensorsData | None:
    """The cached ranges when ``path`` holds ones computed under ``key``; else None (missing, stale, damaged)."""
    if not path.is_file():
        return None
    try:
        cached = json.loads(path.read_text())
        return TensorsData.from_dict(cached["ranges"]) if cached.get("key") == key else None
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def save_ranges(path: Path, key: dict, images: CalibrationImages, ranges: TensorsData) -> Path:
    """Write the cache atomically."""
    payload = {"key": key, "images": {"source": images.source, "names": list(images.names)},
               "ranges": ranges.to_dict()}
    return write_atomically(path, lambda p: p.write_text(json.dumps(payload, cls=CalibrationCacheEncoder)))
