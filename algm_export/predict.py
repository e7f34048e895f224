"""``algm-export predict MODEL INPUT... -o DIR``: segment images, folders and videos of any size with
Segmenter's sliding window and write one class-index PNG per image (format: docs/outputs.md)."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections import deque
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image

from .arguments import PROG
from .errors import AlgmExportError
from .files import prepare_output_folder, write_atomically
from .photos import IMAGE_SUFFIXES, read_image
from .preprocess import resize_rgb
from .runtime.base import Backend
from .runtime.loading import open_backend
from .runtime.sliding import Segmentation, SlidingWindow
from .video import VIDEO_SUFFIXES, frame_count, read_frames
from .visualize import merge_panel, merge_picture, overlay

@dataclasses.dataclass(frozen=True)
class Source:
    """One input file: an image or a video."""

    path: Path

    @property
    def is_video(self) -> bool:
        """Judged by the file name's suffix."""
        return self.path.suffix.lower() in VIDEO_SUFFIXES


def collect_sources(inputs: list[Path]) -> list[Source]:
    """Files named on the command line, and the image/video files of folders (sorted by name)."""
    sources = []
    for path in inputs:
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")
                           and p.suffix.lower() in IMAGE_SUFFIXES + VIDEO_SUFFIXES)
            if not files:
                raise AlgmExportError(f"{path}: contains no image or video files")
            sources.extend(Source(p) for p in files)
        elif path.is_file():
            sources.append(Source(path))
        else:
            raise AlgmExportError(f"{path}: no such file or folder")
    stems: dict[str, Path] = {}
    for source in sources:
        clash = stems.setdefault(source.path.stem, source.path)
        if clash != source.path:
            raise AlgmExportError(f"{clash} and {source.path} would both be written to {source.path.stem}.png")
    return sources


def write_label_png(path: Path, labels: np.ndarray, n_cls: int) -> Path:
    """A single-channel class-index PNG: 8-bit up to 256 classes, else 16-bit; written atomically."""
    image = Image.fromarray(labels.astype(np.uint8 if n_cls <= 256 else np.uint16))
    return write_atomically(path, lambda temporary: image.save(temporary, format="PNG"))


def write_rgb_png(path: Path, picture: np.ndarray) -> Path:
    """An RGB PNG, written atomically."""
    return write_atomically(path, lambda temporary: Image.fromarray(picture).save(temporary, format="PNG"))


class Predictor:
    """Reads the inputs lazily, segments them and writes the files; counts what it did."""

    def __init__(self, backend: Backend, folder: Path, sliding: SlidingWindow, every: int = 1,
                 with_overlay: bool = False, with_merges: bool = False):
        self.backend, self.folder, self.sliding, self.every = backend, folder, sliding, every
        self.with_overlay, self.with_merges = with_overlay, with_merges
        self.skipped: list[str] = []
        self.images = self.frames = 0
        self.token_counts: list[list[list[int]]] = []  # per image: per window, tokens after each merge

    def _photos(self, sources: list[Source], names: deque, progress) -> Iterator[np.ndarray]:
        for source in sources:
            if source.is_video:
                delivered = 0
                try:
                    for index, frame in read_frames(source.path, self.every):
                        names.append((f"{source.path.stem}_{index:06d}", frame))
                        self.frames += 1
                        delivered += 1
                        yield frame
                except AlgmExportError as error:  # unreadable, or decoding failed part way: keep what was read
                    kept = f" (kept the {delivered} frames read before)" if delivered else ""
                    self._skip(f"{error}{kept}", progress, _undelivered(source, self.every, delivered))
                continue
            try:
                photo = read_image(source.path)
            except AlgmExportError as error:
                self._skip(str(error), progress, 1)
                continue
            names.append((source.path.stem, photo))
            yield photo

    def _skip(self, reason: str, progress, expected: int) -> None:
        """Note an input that could not be read and take what it would have given off the progress total."""
        self.skipped.append(reason)
        _note(f"skipped {reason}")
        if progress is not None and progress.total is not None:
            progress.total = max(progress.n, progress.total - expected)
            progress.refresh()

    def run(self, sources: list[Source], progress=None) -> None:
        """Segment every source, writing its files as soon as its windows are done; an input that cannot be
        read (image or video) is skipped with a note."""
        names: deque = deque()
        for result in self.sliding.run(self._photos(sources, names, progress)):
            stem, photo = names.popleft()
            self.write(stem, photo, result)
            self.images += 1
            if result.token_counts:
                self.token_counts.append(result.token_counts)
            if progress is not None:
                progress.update(1)

    def write(self, stem: str, photo: np.ndarray, result: Segmentation) -> None:
        """The label PNG and, when asked, the overlay and the merge picture."""
        info = self.backend.info
        write_label_png(self.folder / f"{stem}.png", result.labels, len(info.class_names))
        if self.with_overlay:
            write_rgb_png(self.folder / f"{stem}_overlay.png", overlay(photo, result.labels, info.class_names))
        if self.with_merges and result.token_maps is not None:
            write_rgb_png(self.folder / f"{stem}_merges.png", merges_of(photo, result, info.patch_size))


def merges_of(photo: np.ndarray, result: Segmentation, patch: int) -> np.ndarray:
    """The ALGM merge picture of one image: a panel per window, token counts in the captions."""
    resized = resize_rgb(photo, result.plan.resized)
    height, width = result.plan.window
    panels, captions = [], []
    grid = (height // patch) * (width // patch)
    for number, ((row, col), maps, counts) in enumerate(zip(result.plan.anchors, result.token_maps,
                                                             result.token_counts), start=1):
        panels.append(merge_panel(resized[row : row + height, col : col + width], maps, patch))
        steps = " -> ".join(f"{c} ({'CLAP' if i == 0 else 'GBM'})" for i, c in enumerate(counts))
        captions.append(f"window {number}: {1 + grid} -> {steps} tokens")
    title = (f"ALGM merges: {len(panels)} window(s) of {height}x{width} on the image resized to "
             f"{result.plan.resized[0]}x{result.plan.resized[1]}")
    return merge_picture(panels, captions, title)


def _note(text: str) -> None:
    from tqdm import tqdm

    tqdm.write(f"{PROG} predict: {text}", file=sys.stderr)


def _undelivered(source: Source, every: int, delivered: int) -> int:
    """How many of a video's expected images were not delivered (0 when its frame count is unknown)."""
    frames = frame_count(source.path)
    return max(0, (frames + every - 1) // every - delivered) if frames else 0


def expected_images(sources: list[Source], every: int) -> int | None:
    """How many images the progress bar should expect (None when a video does not say)."""
    total = 0
    for source in sources:
        if not source.is_video:
            total += 1
            continue
        frames = frame_count(source.path)
        if frames is None:
            return None
        total += (frames + every - 1) // every
    return total


def predict_command(args: argparse.Namespace) -> int:
    """Run ``algm-export predict``; returns the exit code."""
    from tqdm import tqdm

    if args.server:
        from .serving.client import predict_with_server

        return predict_with_server(args)
    if not args.inputs:
        raise AlgmExportError("predict: no INPUT given (MODEL INPUT... or --server URL INPUT...)")
    if args.every < 1:
        raise AlgmExportError(f"--every must be >= 1, got {args.every}")
    sources = collect_sources(args.inputs)
    backend = open_backend(args.model, args.trust_checkpoint)
    overrides = {k: v for k, v in (("im_size", args.im_size), ("window_stride", args.window_stride)) if v is not None}
    sliding = SlidingWindow(backend, dataclasses.replace(backend.info.windows, **overrides), args.batch)
    folder = prepare_output_folder(args.output)
    if args.show_merges and backend.info.algm is None:
        _note("--show-merges: the model does not merge tokens (dense); no merge pictures")
    predictor = Predictor(backend, folder, sliding, args.every, args.overlay, args.show_merges)
    start = time.perf_counter()
    with tqdm(total=expected_images(sources, args.every), unit="img", desc="segmenting", file=sys.stderr,
              dynamic_ncols=True) as progress:
        predictor.run(sources, progress)
    elapsed = time.perf_counter() - start
    if predictor.images == 0:
        raise AlgmExportError("no readable images among the inputs")
    frames = f" ({predictor.frames} video frames)" if predictor.frames else ""
    skipped = f"; skipped {len(predictor.skipped)} unreadable" if predictor.skipped else ""
    print(f"segmented {predictor.images} images{frames} in {elapsed:.1f} s ({predictor.images / elapsed:.2f} images/s)"
          f" with {backend.name}, windows {sliding.window[0]}x{sliding.window[1]} every {sliding.settings.window_stride}"
          f" px, batch {sliding.batch}; wrote {folder}/{skipped}")
    return 0
