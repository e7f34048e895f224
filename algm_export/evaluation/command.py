"""``algm-export eval MODEL [GRAPH_OR_ENGINE ...] --data ROOT --dataset NAME``: mIoU of PyTorch (dense and ALGM)
and of every exported graph/engine on a labelled dataset, by the research code's protocol."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
from PIL import Image

from ..artifacts import INT8_GRAPH, PORTABLE_GRAPH
from ..console import note
from ..errors import AlgmExportError
from ..files import prepare_output_folder
from ..runtime.base import Backend
from ..runtime.loading import ENGINE_SUFFIXES, open_backend
from ..runtime.sliding import SlidingWindow
from .layouts import DEFAULT_SPLITS, Dataset, Sample, open_dataset
from .metrics import ConfusionMatrix
from .protocol import ViewAveraging, views
from .report import BackendResult, table, write_outputs

FOLDER_GRAPHS = (PORTABLE_GRAPH, INT8_GRAPH)  # what ONNX Runtime runs from an exported folder (plus its engines)
PYTORCH, PYTORCH_DENSE = "pytorch", "pytorch_dense"


@dataclass(frozen=True)
class Candidate:
    """A backend to evaluate, opened only when its turn comes (one model in memory at a time)."""

    name: str
    source: Path
    open: Callable[[], Backend]
    optional: bool = False  # found in a folder: a backend that cannot open here is skipped with a note



def candidates(model: Path, graphs: list[Path], trust: bool) -> list[Candidate]:
    """PyTorch ALGM (as the checkpoint says) and dense when the checkpoint merges, then each graph or engine
    (a folder: its model.onnx, model.int8.onnx and TensorRT engines)."""
    from ..checkpoints import load_segmenter
    from ..runtime.torch_backend import TorchBackend

    if not model.is_file():
        raise AlgmExportError(f"{model}: no such checkpoint file (MODEL)")

    loaded = [load_segmenter(model, trust_checkpoint=trust)]  # read once here: is there an ALGM setting?
    merges = loaded[0].algm is not None

    def torch_backend(algm, name: str) -> Callable[[], Backend]:
        def open_() -> Backend:
            segmenter = loaded.pop() if loaded and algm == "auto" else load_segmenter(model, algm=algm,
                                                                                       trust_checkpoint=trust)
            window = segmenter.config.windows().window_size
            return TorchBackend(segmenter, (window, window), name=name)
        return open_

    found = [Candidate(PYTORCH, model, torch_backend("auto", PYTORCH))]
    if merges:
        found.append(Candidate(PYTORCH_DENSE, model, torch_backend(None, PYTORCH_DENSE)))
    for path in graphs:
        if path.is_dir():
            files = [path / name for name in FOLDER_GRAPHS if (path / name).is_file()]
            files += sorted(p for p in path.iterdir() if p.suffix in ENGINE_SUFFIXES)
            if not files:
                raise AlgmExportError(f"{path}: no {', '.join(FOLDER_GRAPHS)} or engine in this folder")
            found += [Candidate("", p, lambda p=p: open_backend(p), optional=True) for p in files]
        elif path.is_file():
            found.append(Candidate("", path, lambda p=path: open_backend(p)))
        else:
            raise AlgmExportError(f"{path}: no such file or folder (GRAPH_OR_ENGINE)")
    return found


def _unique(name: str, taken: set[str], source: Path) -> str:
    """The backend's name, with its file's stem added when another row already has it."""
    if name not in taken:
        return name
    candidate = f"{name}_{source.stem.replace('.', '_')}"
    while candidate in taken:
        candidate += "_"
    return candidate


class Evaluator:
    """Runs one backend over the dataset (images streamed, windows batched across images) and scores it."""

    def __init__(self, dataset: Dataset, n_cls: int, image_views, batch: int, resize: str, limit: int | None):
        self.dataset, self.n_cls, self.views = dataset, n_cls, image_views
        self.batch, self.resize, self.limit = batch, resize, limit

    def segment(self, backend: Backend, photos: Iterator[np.ndarray]):
        """Per photo: (labels, token counts per window or None, windows run)."""
        sliding = SlidingWindow(backend, backend.info.windows, self.batch, self.resize)
        if len(self.views) == 1:
            for result in sliding.run(photos):
                yield result.labels, result.token_counts, len(result.plan.anchors)
        else:
            for result in ViewAveraging(sliding, self.views).run(photos):
                yield result.labels, result.token_counts, result.windows

    def run(self, name: str, source: Path, backend: Backend, reference: Path | None = None) -> BackendResult:
        """Score ``backend`` against the dataset's labels, or against the label PNGs in ``reference``;
        with ``reference`` given and absent files, this backend's labels are written there instead."""
        from tqdm import tqdm

        if len(backend.info.class_names) != self.n_cls:
            raise AlgmExportError(f"{source}: the model has {len(backend.info.class_names)} classes, the dataset "
                                  f"{self.n_cls}")
        patch = backend.info.patch_size
        height, width = backend.info.image_size
        result = BackendResult(name, str(source), ConfusionMatrix(self.n_cls),
                               dense_tokens=(height // patch) * (width // patch) + 1)
        pending: deque[tuple[Sample, np.ndarray | None]] = deque()

        def photos() -> Iterator[np.ndarray]:
            for sample, image, label in self.dataset.read(self.limit):
                pending.append((sample, label))
                yield image

        total = min(len(self.dataset.samples), self.limit or len(self.dataset.samples))
        start = time.perf_counter()
        with tqdm(total=total, unit="img", desc=name, file=sys.stderr, dynamic_ncols=True) as progress:
            for labels, counts, windows in self.segment(backend, photos()):
                sample, truth = pending.popleft()
                if reference is not None:
                    truth = self._reference(reference / f"{sample.name}.png", labels)
                result.confusion.add(labels, truth)
                result.images += 1
                result.windows += windows
                result.tokens += [c[-1] for c in counts or []]
                progress.update(1)
                progress.set_postfix_str(f"mIoU {100 * result.scores.mean_iou:.2f}", refresh=False)
            progress.total = progress.n  # skipped files leave the bar short otherwise
        result.seconds = time.perf_counter() - start
        return result

    @staticmethod
    def _reference(path: Path, labels: np.ndarray) -> np.ndarray:
        if path.is_file():
            return np.asarray(Image.open(path)).astype(np.int64)
        Image.fromarray(labels.astype(np.uint16 if labels.max() > 255 else np.uint8)).save(path, format="PNG")
        return labels


def eval_command(args: argparse.Namespace) -> int:
    """Run ``algm-export eval``; returns the exit code."""
    if args.limit is not None and args.limit < 1:
        raise AlgmExportError(f"--limit must be >= 1, got {args.limit}")
    labelled = args.reference == "labels"
    dataset = open_dataset(args.data, args.dataset, args.split, labelled=labelled)
    dataset.check_sizes(args.limit)
    found = candidates(args.model, args.graphs, args.trust_checkpoint)
    folder = prepare_output_folder(args.output)
    image_views = views(args.multiscale, args.flip)
    results: list[BackendResult] = []
    taken: set[str] = set()
    with tempfile.TemporaryDirectory(prefix="algm-eval-reference-") as scratch:
        reference_folder = None if labelled else Path(scratch)
        evaluator = None
        for candidate in found:
            try:
                backend = candidate.open()
            except AlgmExportError as error:
                if not candidate.optional:
                    raise
                note("eval", f"skipped {candidate.source.name}: {error}")
                continue
            if evaluator is None:
                names = dataset.class_names or backend.info.class_names
                evaluator = Evaluator(dataset, len(names), image_views, args.batch, args.resize, args.limit)
            name = _unique(candidate.name or backend.name, taken, candidate.source)
            taken.add(name)
            results.append(evaluator.run(name, candidate.source, backend, reference_folder))
            del backend
            if results[-1].images == 0:
                raise AlgmExportError(f"{args.data}: no readable images")
    reference = next((r for r in results if r.name == PYTORCH), None)
    print(table(results, reference))
    skipped = sorted(set(dataset.skipped))
    settings = {
        "dataset": args.dataset, "data": str(args.data), "split": args.split or DEFAULT_SPLITS[args.dataset],
        "limit": args.limit,
        "reference": "pytorch labels" if not labelled else "annotations", "images": results[0].images,
        "skipped": skipped, "protocol": {"resize": args.resize, "multiscale": args.multiscale, "flip": args.flip,
                                         "views": [[v.ratio, v.flip] for v in image_views]},
    }
    written = write_outputs(folder, results, reference, names, settings)
    skipped_text = f"; skipped {len(skipped)} unreadable file(s)" if skipped else ""
    print(f"evaluated {results[0].images} images with {len(results)} backend(s) ({len(image_views)} view(s) per image)"
          f"{skipped_text}; wrote {', '.join(p.name for p in written[:2])} and {len(written) - 2} confusion "
          f"picture(s) to {folder}/")
    return 0
