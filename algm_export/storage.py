"""Inputs and output folders given as local paths or as URIs of any pyarrow file system (``s3://bucket/key``,
``gs://``, ``hdfs://``, ``file://``), for ``predict --ray`` on a cluster.

Files are decoded and encoded by the same code as local ``predict``: an input URI is first copied to a local
temporary file, an output is written locally and then uploaded under a temporary name and renamed.
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Iterator
from urllib.parse import urlsplit

from .arguments import is_uri
from .errors import AlgmExportError
from .files import prepare_output_folder
from .photos import IMAGE_SUFFIXES
from .predict import check_unique_stems, collect_sources
from .video import VIDEO_SUFFIXES

PARTIAL = ".partial"  # suffix of files being written (files.write_atomically's naming: .<name>.<random>.partial)


BUCKET_SCHEMES = ("s3", "gs", "gcs")  # pyarrow's path inside these stores is "bucket/key"


def file_system(uri: str):
    """``(pyarrow FileSystem, path inside it)`` of a URI; one-line error for an unknown scheme or an unreachable
    store. One file-system object per bucket (S3 resolves a bucket's region once, not per file)."""
    parsed = urlsplit(uri)
    if parsed.scheme in BUCKET_SCHEMES and not parsed.query:
        return _store(f"{parsed.scheme}://{parsed.netloc}")[0], f"{parsed.netloc}{parsed.path}".rstrip("/")
    return _store(uri)


@functools.lru_cache(maxsize=64)
def _store(uri: str):
    from pyarrow import fs

    try:
        return fs.FileSystem.from_uri(uri)
    except Exception as error:  # noqa: BLE001 - pyarrow raises ArrowInvalid / OSError with long texts
        raise AlgmExportError(f"{uri}: cannot open ({' '.join(str(error).split())[:200]})") from error


def _stem(name: str) -> str:
    return PurePosixPath(name).stem


def collect_inputs(inputs: list[str]) -> list[str]:
    """Like local predict's inputs: files, and the image/video files of folders (sorted by name, hidden files
    left out); paths or URIs. Error for a missing input, an empty folder, or two inputs writing the same PNG."""
    found: list[str] = []
    for text in inputs:
        if not is_uri(text):
            found.extend(str(source.path.absolute()) for source in collect_sources([Path(text)]))
            continue
        from pyarrow import fs

        system, path = file_system(text)
        info = system.get_file_info(path)
        if info.type == fs.FileType.File:
            found.append(text)
        elif info.type == fs.FileType.Directory:
            entries = sorted(entry.path for entry in system.get_file_info(fs.FileSelector(path))
                             if entry.type == fs.FileType.File and not entry.base_name.startswith(".")
                             and PurePosixPath(entry.base_name).suffix.lower() in IMAGE_SUFFIXES + VIDEO_SUFFIXES)
            if not entries:
                raise AlgmExportError(f"{text}: contains no image or video files")
            prefix = text[: len(text) - len(path)] if text.endswith(path) else text.split("://")[0] + "://"
            found.extend(prefix + entry for entry in entries)
        else:
            raise AlgmExportError(f"{text}: no such file or folder")
    found = list(dict.fromkeys(found))  # a file named twice (alone and in its folder) runs once
    check_unique_stems([(_stem(name), name) for name in found])
    return found


def input_stem(name: str) -> str:
    """The stem the outputs of an input path or URI are named after."""
    return _stem(name) if is_uri(name) else Path(name).stem


def is_video(name: str) -> bool:
    """Judged by the suffix, as local predict does."""
    return PurePosixPath(name).suffix.lower() in VIDEO_SUFFIXES


@contextmanager
def local_copy(name: str) -> Iterator[Path]:
    """A local path holding the input ``name``: the path itself, or a temporary copy of a URI."""
    if not is_uri(name):
        yield Path(name)
        return
    system, path = file_system(name)
    with tempfile.TemporaryDirectory(prefix="algm-input-") as folder:
        target = Path(folder) / PurePosixPath(path).name
        try:
            with system.open_input_stream(path) as source, open(target, "wb") as sink:
                shutil.copyfileobj(source, sink, 1 << 20)
        except OSError as error:
            raise AlgmExportError(f"{name}: cannot read ({' '.join(str(error).split())[:160]})") from error
        yield target


class OutputFolder:
    """Where the outputs go: a local folder (written in place) or a URI (written to a local staging folder,
    then each file uploaded under a temporary name and renamed)."""

    def __init__(self, target: str):
        self.target = target
        self.remote = is_uri(target)

    def prepare(self) -> None:
        """Create the folder; one-line error when it cannot be written."""
        if not self.remote:
            prepare_output_folder(Path(self.target))
            return
        system, path = file_system(self.target)
        try:
            system.create_dir(path, recursive=True)
        except OSError as error:
            raise AlgmExportError(f"{self.target}: cannot create the output folder "
                                  f"({' '.join(str(error).split())[:160]})") from error

    def exists(self, name: str) -> bool:
        """Whether the complete file ``name`` is there (files appear only complete: see the class doc)."""
        if not self.remote:
            return (Path(self.target) / name).is_file()
        from pyarrow import fs

        system, path = file_system(self.target)
        return system.get_file_info(f"{path}/{name}").type == fs.FileType.File

    def location(self, name: str) -> str:
        """The path or URI of file ``name``."""
        return str(Path(self.target) / name) if not self.remote else f"{self.target.rstrip('/')}/{name}"

    @contextmanager
    def writing(self) -> Iterator[Path]:
        """A local folder to write files into; for a URI, the files written there are uploaded on success."""
        if not self.remote:
            yield Path(self.target)
            return
        with tempfile.TemporaryDirectory(prefix="algm-output-") as folder:
            yield Path(folder)
            for file in sorted(Path(folder).iterdir()):
                self.upload(file)

    def upload(self, file: Path) -> None:
        """Copy a local file to the URI folder under a temporary name, then rename it (a file never shows half
        written)."""
        system, path = file_system(self.target)
        temporary = f"{path}/.{file.name}.{os.getpid()}{PARTIAL}"
        with open(file, "rb") as source, system.open_output_stream(temporary) as sink:
            shutil.copyfileobj(source, sink, 1 << 20)
        system.move(temporary, f"{path}/{file.name}")

    def remove_partial_files(self) -> int:
        """Delete temporary files left by writers that were killed (only in a local folder); returns how many."""
        if self.remote:
            return 0
        removed = 0
        for file in Path(self.target).glob(f".*{PARTIAL}"):
            file.unlink(missing_ok=True)
            removed += 1
        return removed
