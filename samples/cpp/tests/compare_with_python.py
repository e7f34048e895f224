"""ctest: algm_segment against the Python pipeline (algm_export.runtime.segment) on the bundled photos.

    compare_with_python.py BINARY --work DIR [--ort-ops libalgm_ort_ops.so] [--checkpoint PTH]

Exports the sample checkpoint's graphs into DIR, runs ``BINARY model.onnx PHOTO -o OUT.png`` (and, with
--ort-ops, ``model.trt.onnx`` on our kernels) and requires the class-index PNG to agree with Python's label
map (algm_export.runtime.segment) on >= 99.9 % of the pixels and its palette to be Python's. Then the same for
a copy of model.onnx whose metadata carries sliding-window settings (window 512, stride 256), against the
sliding-window procedure of docs/outputs.md written here in numpy/torch. Exit 0 pass, 1 fail.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from PIL import Image

from algm_export import load_segmenter
from algm_export.artifacts import SCORES
from algm_export.datasets import palette
from algm_export.export.onnx_export import export_graphs
from algm_export.outputs import upsample
from algm_export.photos import sample_photos
from algm_export.preprocess import make_batch, resize_rgb
from algm_export.runtime import segment
from algm_export.runtime.onnxruntime_backend import OnnxRuntimeBackend

MIN_AGREEMENT = 0.999
PHOTOS = ("chelsea", "coffee")


def check(binary: Path, graph: Path, photo_png: Path, expected: np.ndarray, output: Path, extra: list[str]) -> bool:
    """Run the binary once and compare its PNG with ``expected``; prints one line."""
    result = subprocess.run([str(binary), str(graph), str(photo_png), "-o", str(output), *extra],
                            capture_output=True, text=True)
    if result.returncode != 0:
        print(f"FAIL {graph.name} {photo_png.stem}: exit {result.returncode}: {result.stderr.strip()}")
        return False
    written = Image.open(output)
    labels = np.asarray(written)
    colours = np.asarray(written.getpalette()[: 3 * len(palette(256))], dtype=np.uint8).reshape(-1, 3)
    agreement = float((labels == expected).mean()) if labels.shape == expected.shape else 0.0
    same_palette = written.mode == "P" and np.array_equal(colours[: 150], palette(150))
    ok = agreement >= MIN_AGREEMENT and same_palette
    print(f"{'ok  ' if ok else 'FAIL'} {graph.name} {photo_png.stem}: label agreement {agreement:.5f} "
          f"(>= {MIN_AGREEMENT}), Python palette {same_palette}")
    return ok


WINDOW_STRIDE = 256


def with_windows(graph: Path, stride: int) -> Path:
    """A copy of ``graph`` whose algm_export metadata asks for sliding windows of its input size."""
    model = onnx.load(graph)
    for prop in model.metadata_props:
        if prop.key == "algm_export":
            info = json.loads(prop.value)
            size = info["image_size"][0]
            info["windows"] = {"im_size": size, "window_size": size, "window_stride": stride}
            prop.value = json.dumps(info)
    path = graph.with_name(graph.stem + ".windows.onnx")
    onnx.save(model, path)
    return path


def anchors(length: int, window: int, stride: int) -> list[int]:
    """0, stride, ... while < length - window, then length - window."""
    return [*range(0, max(length - window, 0), stride), length - window]


def sliding_labels(backend: OnnxRuntimeBackend, photo: np.ndarray, stride: int) -> np.ndarray:
    """Segmenter's sliding-window inference (docs/outputs.md), full chain, for an image needing one resize."""
    window = backend.info.image_size[0]
    h0, w0 = photo.shape[:2]
    scale = min(window / min(h0, w0), 4 * window / max(h0, w0))
    height, width = int(h0 * scale + 0.5), int(w0 * scale + 0.5)
    assert min(height, width) >= window
    resized = resize_rgb(photo, (height, width))
    n_cls = len(backend.info.class_names)
    sums = np.zeros((n_cls, height, width), np.float32)
    counts = np.zeros((height, width), np.float32)
    for top in anchors(height, window, stride):
        for left in anchors(width, window, stride):
            crop = resized[top:top + window, left:left + window]
            batch = make_batch([crop], (window, window), backend.info.normalization)
            logits = upsample(torch.from_numpy(backend.run(batch, [SCORES]).scores), (window, window))[0].numpy()
            sums[:, top:top + window, left:left + window] += logits
            counts[top:top + window, left:left + window] += 1
    full = F.interpolate(torch.from_numpy(sums / counts)[None], size=(h0, w0), mode="bilinear", align_corners=False)
    return full[0].argmax(dim=0).numpy()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("binary", type=Path)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--ort-ops", default="")
    parser.add_argument("--checkpoint", type=Path, default=Path("samples/checkpoints/vit_tiny/checkpoint.pth"))
    args = parser.parse_args()
    if not args.checkpoint.is_file():
        print(f"FAIL: {args.checkpoint} missing (python samples/make_sample_checkpoint.py writes it)")
        return 1
    args.work.mkdir(parents=True, exist_ok=True)
    graphs = export_graphs(load_segmenter(args.checkpoint), args.work, (512, 512))
    photos = sample_photos()
    backend = OnnxRuntimeBackend(graphs.portable)
    runs = [(graphs.portable, [])]
    if args.ort_ops:
        runs.append((graphs.plugin, ["--ort-ops", args.ort_ops]))
    windowed = with_windows(graphs.portable, WINDOW_STRIDE)
    passed = True
    for name in PHOTOS:
        photo_png = args.work / f"{name}.png"
        Image.fromarray(photos[name]).save(photo_png)
        expected = segment(backend, [photos[name]], batch=1)[0]  # algm_segment runs one window at a time
        for graph, extra in runs:
            passed &= check(args.binary, graph, photo_png, expected, args.work / f"{name}.{graph.stem}.labels.png",
                            extra)
        passed &= check(args.binary, windowed, photo_png, sliding_labels(backend, photos[name], WINDOW_STRIDE),
                        args.work / f"{name}.windows.labels.png", [])
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
