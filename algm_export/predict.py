"""``algm-export predict MODEL INPUT... -o DIR``: segment images, folders and videos of any size with
Segmenter's sliding window and write one class-index PNG per image (format: docs/outputs.md)."""

from __future__ import annotations

import dataclasses
from collections import deque
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image

from .artifacts import MARKER
from .console import PROG, note
from .deployment import DeploymentInfo
from .errors import AlgmExportError
from .evaluation.protocol import ViewAveraging
from .files import marker_command, write_atomically, write_marker, written_set
from .photos import IMAGE_SUFFIXES, read_image
from .preprocess import OPENCV, resize_rgb
from .runtime.base import Backend
from .runtime.sliding import Segmentation, SlidingWindow, resized_size
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
            entries = [p for p in path.iterdir() if not p.name.startswith(".")
                       and p.suffix.lower() in IMAGE_SUFFIXES + VIDEO_SUFFIXES]
            for broken in sorted(p for p in entries if p.is_symlink() and not p.exists()):
                note("predict", f"skipped {broken}: a link to {broken.readlink()}, which does not exist")
            files = sorted(p for p in entries if p.is_file())
            if not files:
                raise AlgmExportError(f"{path}: contains no image or video files")
            sources.extend(Source(p) for p in files)
        elif path.is_file():
            sources.append(Source(path))
        else:
            raise AlgmExportError(f"{path}: no such file or folder")
    check_unique_stems([(source.path.stem, str(source.path)) for source in sources])
    return sources


def check_unique_stems(inputs: list[tuple[str, str]]) -> None:
    """Refuse two inputs (``(stem, name)`` pairs: paths or URIs) that would write the same ``<stem>.png``."""
    stems: dict[str, str] = {}
    for stem, name in inputs:
        clash = stems.setdefault(stem, name)
        if clash != name:
            raise AlgmExportError(f"{clash} and {name} would both be written to {stem}.png")


def frame_stem(stem: str, index: int) -> str:
    """The output stem of a video's frame ``index``: ``<video stem>_<index, 6 digits>``."""
    return f"{stem}_{index:06d}"


def output_names(stem: str, with_overlay: bool = False, with_merges: bool = False) -> list[str]:
    """The files written for one image, in writing order: the label PNG, then the overlay and the merge
    picture when asked (``with_merges`` only for models that merge tokens)."""
    return [f"{stem}.png"] + [f"{stem}_{kind}.png" for kind, wanted in (("overlay", with_overlay),
                                                                        ("merges", with_merges)) if wanted]


def write_outputs(folder: Path, stem: str, photo: np.ndarray, result: Segmentation, info: DeploymentInfo,
                  with_overlay: bool = False, with_merges: bool = False, resize: str = OPENCV) -> list[Path]:
    """Write one image's files (see :func:`output_names`; the merge picture only when the result has token
    maps), each atomically; returns their paths."""
    with_merges = with_merges and result.token_maps is not None
    label, *extras = [folder / name for name in output_names(stem, with_overlay, with_merges)]
    written = [write_label_png(label, result.labels, len(info.class_names))]
    if with_overlay:
        written.append(write_rgb_png(extras.pop(0), overlay(photo, result.labels, info.class_names)))
    if with_merges:
        written.append(write_rgb_png(extras.pop(0), merges_of(photo, result, info.patch_size, resize)))
    return written


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
                 with_overlay: bool = False, with_merges: bool = False, image_views: tuple = ()):
        self.backend, self.folder, self.sliding, self.every = backend, folder, sliding, every
        self.views = image_views  # test-time views (evaluation.protocol.View); none or one: plain sliding window
        self.with_overlay, self.with_merges = with_overlay, with_merges
        self.skipped: list[str] = []
        self.written: list[Path] = []
        self.images = self.frames = 0
        self.token_counts: list[list[list[int]]] = []  # per image: per window, tokens after each merge

    def _photos(self, sources: list[Source], names: deque, progress) -> Iterator[np.ndarray]:
        for source in sources:
            if source.is_video:
                delivered = 0
                try:
                    for index, frame in read_frames(source.path, self.every):
                        names.append((frame_stem(source.path.stem, index), frame))
                        self.frames += 1
                        delivered += 1
                        yield frame
                except AlgmExportError as error:  # unreadable, or decoding failed part way: keep what was read
                    kept = f" (kept the {delivered} frames read before)" if delivered else ""
                    self._skip(f"{error}{kept}", progress, _undelivered(source, self.every, delivered))
                    continue
                missing = _undelivered(source, self.every, delivered)
                if not delivered and not missing:
                    self._skip(f"{source.path}: no frame could be decoded (empty or truncated video)", progress, 0)
                elif missing:  # the decoder stopped early without an error: a truncated file
                    self._skip(f"{missing} of the {missing + delivered} frames {source.path} announces (truncated? "
                               f"kept the {delivered} decoded)", progress, missing)
                continue
            try:
                photo = read_image(source.path)
                if isinstance(self.sliding, SlidingWindow):  # refuses extreme shapes (a server has its own limits)
                    resized_size(photo.shape[:2], self.sliding.settings, self.sliding.window)
            except AlgmExportError as error:
                self._skip(f"{source.path}: {error}" if str(source.path) not in str(error) else str(error),
                           progress, 1)
                continue
            names.append((source.path.stem, photo))
            yield photo

    def _skip(self, reason: str, progress, expected: int) -> None:
        """Note an input that could not be read and take what it would have given off the progress total."""
        self.skipped.append(reason)
        note("predict", f"skipped {reason}")
        if progress is not None and progress.total is not None:
            progress.total = max(progress.n, progress.total - expected)
            progress.refresh()

    def run(self, sources: list[Source], progress=None) -> None:
        """Segment every source, writing its files as soon as its windows are done; an input that cannot be
        read (image or video) is skipped with a note."""
        names: deque = deque()
        photos = self._photos(sources, names, progress)
        if len(self.views) > 1:
            results = ViewAveraging(self.sliding, self.views).run(photos)
        else:
            results = self.sliding.run(photos)
        for result in results:
            stem, photo = names.popleft()
            self.write(stem, photo, result)
            self.images += 1
            if result.token_counts:
                self.token_counts.append(result.token_counts)
            if progress is not None:
                progress.update(1)

    def write(self, stem: str, photo: np.ndarray, result: Segmentation) -> None:
        """The label PNG and, when asked, the overlay and the merge picture."""
        self.written += write_outputs(self.folder, stem, photo, result, self.backend.info, self.with_overlay,
                                      self.with_merges, getattr(self.sliding, "resize", OPENCV))


def merges_of(photo: np.ndarray, result: Segmentation, patch: int, method: str = OPENCV) -> np.ndarray:
    """The ALGM merge picture of one image: a panel per window, token counts in the captions (the image resized
    with ``method``, as the windows were)."""
    resized = resize_rgb(photo, result.plan.resized, method)
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


PREDICT = "predict"  # the command named in the output folder's marker


def check_foreign_outputs(folder: Path, sources: list[Source], every: int, with_overlay: bool,
                          with_merges: bool) -> set[str]:
    """The files an earlier predict wrote into ``folder`` (its marker); AlgmExportError, before anything is
    written, when a file this run would write exists there and was not written by predict (video frames: as many
    as the video announces), or when the folder's marker is another command's (an export folder: predictions
    would take over its list)."""
    ours = written_set(folder, PREDICT) or set()
    if not folder.is_dir():
        return ours
    other = marker_command(folder)
    if (folder / MARKER).exists() and other != PREDICT:
        owner = f"an {PROG} {other} folder" if other else f"its {MARKER} was not written by {PROG} predict"
        raise AlgmExportError(f"{folder}: {owner}; write predictions to their own -o folder")
    for source in sources:
        if source.is_video:
            try:
                count = frame_count(source.path) or 0
            except AlgmExportError:  # no PyAV: the video is skipped with its note later
                count = 0
            stems = [frame_stem(source.path.stem, index) for index in range(0, count, every)]
        else:
            stems = [source.path.stem]
        for stem in stems:
            for name in output_names(stem, with_overlay, with_merges):
                if name not in ours and (folder / name).exists():
                    raise AlgmExportError(f"{folder / name} exists and was not written by {PROG} predict; move it "
                                          "away or choose another -o folder")
    return ours


def mark_written(folder: Path, predictor: "Predictor", ours: set[str] | None = None) -> None:
    """List the files ``predictor`` wrote, with those an earlier predict wrote (``ours``, default: the folder's
    marker), in the folder's marker: the next run may replace them, and only them."""
    earlier = written_set(folder, PREDICT) or set() if ours is None else ours
    write_marker(folder, PREDICT, earlier | {path.name for path in predictor.written})
