#!/usr/bin/env python3
"""Segment a photo with an exported graph (or TensorRT engine) and write the coloured label map.

    python samples/python/segment_photo.py algm_export_out/model.onnx
    python samples/python/segment_photo.py algm_export_out/model.onnx --image my.jpg -o my_labels.png
    python samples/python/segment_photo.py algm_export_out/model.fp16.plan   # on a TensorRT GPU machine

Uses algm_export.runtime: preprocessing (resize to the export size, the checkpoint's normalization)
and postprocessing (argmax, labels back to the photo's size) are the same for every backend.
"""

import argparse
import sys
import time
from pathlib import Path

from PIL import Image

from algm_export.errors import AlgmExportError
from algm_export.files import write_atomically
from algm_export.photos import SAMPLE_PHOTOS, read_image, sample_photo
from algm_export.runtime import segment
from algm_export.runtime.loading import open_backend
from algm_export.visualize import side_by_side

IMAGE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF",
                 ".webp": "WEBP"}


def check_output_file(path: Path) -> None:
    """AlgmExportError unless ``path`` is an image file name in an existing folder."""
    if path.suffix.lower() not in IMAGE_FORMATS:
        raise AlgmExportError(f"{path}: unknown image type {path.suffix!r} (use {', '.join(IMAGE_FORMATS)})")
    if not path.absolute().parent.is_dir():
        raise AlgmExportError(f"{path}: the folder {path.absolute().parent} does not exist")
    if path.is_dir():
        raise AlgmExportError(f"{path}: is a folder")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path, help="model.onnx / model.trt.onnx / model.fp16.onnx / *.plan")
    parser.add_argument("--image", type=Path, help="photo to segment (default: a bundled sample photo)")
    parser.add_argument("--photo", choices=SAMPLE_PHOTOS, default="astronaut", help="bundled sample photo")
    parser.add_argument("-o", "--output", type=Path, default=Path("labels.png"), help="PNG to write")
    args = parser.parse_args()
    try:
        check_output_file(args.output)
        backend = open_backend(args.model)
        photo = read_image(args.image) if args.image else sample_photo(args.photo)
        start = time.perf_counter()
        labels = segment(backend, [photo])[0]
        elapsed = time.perf_counter() - start
    except AlgmExportError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        write_atomically(args.output, lambda path: Image.fromarray(
            side_by_side(photo, labels, len(backend.info.class_names))).save(path, format=IMAGE_FORMATS[
                args.output.suffix.lower()]))
    except OSError as error:
        print(f"error: {args.output}: cannot write it ({error.strerror or error})", file=sys.stderr)
        return 2
    names = backend.info.class_names
    top = sorted(set(labels.ravel().tolist()), key=lambda c: -(labels == c).sum())[:5]
    print(f"{backend.name}: {photo.shape[1]}x{photo.shape[0]} photo segmented in {1000 * elapsed:.0f} ms")
    print("most frequent classes: " + ", ".join(names[c] for c in top))
    print(f"wrote {args.output} (photo | label map)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
