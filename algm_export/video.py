"""Video frames through PyAV (the optional ``video`` extra: ``pip install 'algm-export[video]'``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import numpy as np

from .errors import AlgmExportError

VIDEO_SUFFIXES = (".mp4", ".mkv", ".avi", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".ts")


def _av():
    try:
        import av
    except ImportError as error:
        raise AlgmExportError("video input needs PyAV: pip install 'algm-export[video]'") from error
    return av


def frame_count(path: str | os.PathLike) -> int | None:
    """The number of frames the container declares (None when it does not say)."""
    av = _av()
    try:
        with av.open(str(path)) as container:
            return container.streams.video[0].frames or None
    except (av.FFmpegError, IndexError):
        return None


def read_frames(path: str | os.PathLike, every: int = 1) -> Iterator[tuple[int, np.ndarray]]:
    """``(index, RGB uint8 frame)`` for every ``every``-th decoded frame of the first video stream."""
    av = _av()
    path = Path(path)
    if every < 1:
        raise AlgmExportError(f"--every must be >= 1, got {every}")
    try:
        container = av.open(str(path))
    except av.FFmpegError as error:
        raise AlgmExportError(f"{path}: not a readable video ({type(error).__name__})") from error
    with container:
        if not container.streams.video:
            raise AlgmExportError(f"{path}: has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        index = -1
        try:
            for index, frame in enumerate(container.decode(stream)):
                if index % every == 0:
                    yield index, frame.to_ndarray(format="rgb24")
        except av.FFmpegError as error:
            raise AlgmExportError(f"{path}: video decoding failed at frame {index + 1} "
                                  f"({type(error).__name__})") from error
