#!/usr/bin/env python3
"""Write tools/gpu_check/fixtures/: the small graphs and expected outputs tools/gpu_check.sh takes to a GPU machine.

    PYTHONPATH=. python tools/make_gpu_fixtures.py [--out tools/gpu_check/fixtures]

Runs on a CPU machine with the package's dependencies (PyTorch, ONNX Runtime). The model is the sample
Segmenter at its smallest (samples/sample_models.py preset ``micro``: ViT d_model 64, 6 blocks, ALGM CLAP in
block 1 and GBM in block 5) at 256x256, so that the graphs stay around a megabyte each and can be committed.
Written:

* ``model.fp16.onnx``: the FP16 plugin graph (what TensorRT 11 builds from), algm function bodies stripped
  as the package's engine builder strips them, so every algm node must resolve to a plugin;
* ``model.fp16.int8.onnx``: the same with INT8 Q/DQ on the Linear MatMuls (calibrated on the bundled photos);
* ``functions.onnx``: the algm nodes' function bodies alone (about 20 kB), to re-attach on the GPU side;
* ``inputs.npz``: the four bundled photos resized to 256x256, uint8 ``[4, 256, 256, 3]``, plus mean/std;
* ``expected.npz``: ONNX Runtime's outputs of both graphs (with their function bodies) on the normalized
  batch of four, and PyTorch FP32's labels and token counts;
* ``manifest.json``: what made them (versions, model settings, file sizes).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "samples"), str(ROOT / "tools")]

from gpu_check.fixtures import FIXTURES, FUNCTIONS, GRAPHS, normalize  # noqa: E402
from sample_models import make_sample_segmenter  # noqa: E402

from algm_export.artifacts import LABELS, SCORES  # noqa: E402
from algm_export.calibration.int8 import Int8Settings, write_int8_graphs  # noqa: E402
from algm_export.export.graph_edits import strip_functions  # noqa: E402
from algm_export.export.onnx_export import export_graphs  # noqa: E402
from algm_export.photos import SAMPLE_PHOTOS, sample_photo  # noqa: E402
from algm_export.preprocess import resize_rgb  # noqa: E402
from algm_export.runtime.onnxruntime_backend import OnnxRuntimeBackend  # noqa: E402

PRESET = "micro"
IMAGE_SIZE = 256


def export(folder: Path) -> torch.nn.Module:
    """Export the micro sample's FP16 and FP16 Q/DQ graphs into ``folder``; returns the model."""
    model = make_sample_segmenter(PRESET, IMAGE_SIZE)
    export_graphs(model, folder, (IMAGE_SIZE, IMAGE_SIZE), fp16=True)
    write_int8_graphs(folder, Int8Settings(), fp16=True)
    return model


def function_bodies(model: onnx.ModelProto) -> onnx.ModelProto:
    """The algm nodes' standard-op bodies of an exported graph (its model-local functions and their opset
    imports) alone, so the GPU side can re-attach them and see whether TensorRT's parser prefers the plugins."""
    bodies = onnx.ModelProto()
    bodies.ir_version = model.ir_version
    bodies.opset_import.extend(model.opset_import)
    bodies.functions.extend(model.functions)
    return bodies


def expected_outputs(model: torch.nn.Module, folder: Path, images: np.ndarray) -> dict[str, np.ndarray]:
    """ONNX Runtime's outputs of both graphs and PyTorch FP32's labels and token counts."""
    arrays: dict[str, np.ndarray] = {}
    for key, name in GRAPHS.items():
        prediction = OnnxRuntimeBackend(folder / name).run(images, (LABELS, SCORES))
        arrays[f"{key}.labels"] = prediction.outputs[LABELS].astype(np.uint8)  # 150 classes fit
        arrays[f"{key}.token_counts"] = prediction.token_counts.astype(np.int32)
        arrays[f"{key}.token_maps"] = prediction.token_maps.astype(np.int16)  # N = 256 patches
        arrays[f"{key}.scores"] = prediction.outputs[SCORES].astype(np.float16)
    with torch.no_grad():
        logits = model(torch.from_numpy(images))
    arrays["torch_fp32.labels"] = logits.argmax(1).numpy().astype(np.uint8)
    arrays["torch_fp32.token_counts"] = model.token_counts.numpy().astype(np.int32)
    return arrays


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=FIXTURES, help=f"output folder (default {FIXTURES})")
    args = parser.parse_args()
    photos = np.stack([resize_rgb(sample_photo(name), (IMAGE_SIZE, IMAGE_SIZE)) for name in SAMPLE_PHOTOS])
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        model = export(folder)
        mean, std = model.config.normalization.mean, model.config.normalization.std
        arrays = expected_outputs(model, folder, normalize(photos, mean, std))
        staging = Path(tempfile.mkdtemp(dir=args.out.parent, prefix=".gpu_fixtures."))
        try:
            for name in GRAPHS.values():
                onnx.save(strip_functions(onnx.load(folder / name)), staging / name)
            onnx.save(function_bodies(onnx.load(folder / GRAPHS["fp16"])), staging / FUNCTIONS)
            np.savez_compressed(staging / "inputs.npz", photos=photos, mean=np.float32(mean), std=np.float32(std),
                                names=np.array(SAMPLE_PHOTOS))
            np.savez_compressed(staging / "expected.npz", **arrays)
            manifest = {
                "made_by": "tools/make_gpu_fixtures.py",
                "model": {"preset": PRESET, "image_size": IMAGE_SIZE, "d_model": model.config.d_model,
                          "n_layers": model.config.n_layers, "n_cls": model.config.n_cls,
                          "algm": {"layers": list(model.algm.layers), "window": list(model.algm.window),
                                   "threshold": model.algm.threshold, "per_image": model.algm.per_image},
                          "parameters": sum(p.numel() for p in model.parameters())},
                "graphs": {key: {"file": name, "function_bodies": "stripped"} for key, name in GRAPHS.items()},
                "photos": list(SAMPLE_PHOTOS),
                "expected": "expected.npz: <graph>.labels/.token_counts/.token_maps/.scores from ONNX Runtime "
                            f"{__import__('onnxruntime').__version__} (CPU, graphs with their function bodies), "
                            "torch_fp32.labels/.token_counts from PyTorch FP32, all on the batch of 4",
                "versions": {"torch": torch.__version__, "onnx": onnx.__version__},
            }
            manifest["files"] = {p.name: p.stat().st_size for p in sorted(staging.iterdir())}
            (staging / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
            if args.out.exists():
                shutil.rmtree(args.out)
            staging.rename(args.out)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    total = sum(p.stat().st_size for p in args.out.iterdir())
    print(f"wrote {args.out} ({total / 1e6:.2f} MB): {', '.join(sorted(p.name for p in args.out.iterdir()))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
