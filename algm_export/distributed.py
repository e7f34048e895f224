"""``algm-export predict MODEL INPUT... -o DIR --ray [ADDRESS]``: the files of local ``predict``, written by a
pool of Ray actors (:class:`~algm_export.segment_actor.SegmentActor`, one model each) fed through Ray Data's
``map_batches``. Only input names and manifest rows travel through Ray: images are read, and videos decoded,
inside the actors, which write their outputs themselves (each under a temporary name, then renamed).

The driver writes ``DIR/manifest.jsonl`` as rows arrive, one JSON object per line (:data:`MANIFEST_FIELDS`).
With ``--resume`` the rows of outputs that are complete are kept, and only the rest runs again.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import re
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path, PurePosixPath
from typing import Iterator

from .console import note
from .errors import AlgmExportError
from .files import write_atomically
from .predict import Source, expected_images
from .segment_actor import JobSettings, SegmentActor
from .storage import OutputFolder, collect_inputs, file_system, is_uri, is_video

MANIFEST = "manifest.jsonl"
MANIFEST_FIELDS = {
    "input": "the input's path or URI",
    "frame": "the frame index of a video (null for an image)",
    "output": "the label PNG's path or URI (null when skipped)",
    "skipped": "why the input was skipped (unreadable image or video), else null",
    "size": "[height, width] of the image",
    "windows": "sliding windows run on it",
    "tokens": "per window: tokens after each merge (null for a dense model)",
    "classes": "class name -> share of the pixels, the largest first (at most 10)",
    "seconds": "time the actor spent on it (reading, windows, writing)",
    "worker": "host:pid of the actor that wrote it",
    "resumed": "true when the output was complete already (--resume) and its earlier row was lost",
}
ACTOR_ERROR = re.compile(r"^algm_export\.[\w.]+: (.+)$", re.MULTILINE)  # the last line of an actor's traceback
CONNECT_TIMEOUT_S = 5.0  # an unreachable HOST:PORT fails here instead of in Ray's minutes of retries


LOOPBACK_ONLY = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"  # "0": Ray takes 127.0.0.1 as this node's address


def _ray(address: str = ""):
    """Import Ray. A Ray that this process may start itself (no --ray ADDRESS, no $RAY_ADDRESS) serves this
    machine only: Ray then binds its servers to the loopback interface instead of the machine's network address
    (Ray reads the setting when it is imported, and its processes inherit it)."""
    if not address and not os.environ.get("RAY_ADDRESS"):
        os.environ.setdefault(LOOPBACK_ONLY, "0")
    try:
        import ray
        import ray.data  # noqa: F401 - the 'data' part of the extra
    except ImportError as error:
        raise AlgmExportError(f"--ray needs Ray Data: pip install 'algm-export[ray]' ({error})") from error
    return ray


def connect(ray, address: str) -> bool:
    """Join the Ray cluster named by ``address`` ('' : Ray's default; 'auto'; HOST:PORT) unless this process is
    connected already; returns whether it connected (and so must disconnect). One-line error when it cannot."""
    if ray.is_initialized():
        return False
    if address.startswith("ray://"):
        raise AlgmExportError(f"--ray {address}: Ray Client addresses are not supported; run the command on the "
                              "cluster with `ray job submit` (README) or give the GCS address HOST:6379")
    if address not in ("", "auto"):
        host, _, port = address.rpartition(":")
        try:
            socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S).close()
        except (OSError, ValueError) as error:
            reason = error.strerror if isinstance(error, OSError) and error.strerror else type(error).__name__
            raise AlgmExportError(f"--ray {address}: no Ray cluster reachable there ({reason}); expected "
                                  "HOST:PORT of a head node (ray start --head prints it)") from error
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")  # Ray's C++ warnings; failures still raise
    try:
        ray.init(address=address or None, log_to_driver=False, include_dashboard=False if not address else None,
                 logging_level="ERROR", configure_logging=True)
    except (ConnectionError, RuntimeError, ValueError) as error:
        raise AlgmExportError(f"--ray {address or '(default)'}: {' '.join(str(error).split())[:200]}") from error
    return True


def actor_count(ray, requested: int | None, cpus: float, gpus: float | None) -> int:
    """``--ray-actors``, or as many actors as the cluster's CPUs (GPUs with --ray-gpus) hold; error when not
    even one actor fits (Ray would wait for the resources forever)."""
    resources = ray.cluster_resources()
    fits = math.floor(resources.get("CPU", 0) / cpus)
    if gpus:
        fits = min(fits, math.floor(resources.get("GPU", 0) / gpus))
    if fits < 1:
        raise AlgmExportError(f"no actor fits: each takes {cpus:g} CPUs{f' and {gpus:g} GPUs' if gpus else ''}, "
                              f"the cluster has {resources.get('CPU', 0):g} CPUs and {resources.get('GPU', 0):g} GPUs")
    return requested or fits


class Manifest:
    """``manifest.jsonl``: one row per line, appended and flushed as rows arrive (in the output folder, or in a
    local file uploaded when the job ends, also on Ctrl-C, for a URI). With ``resume`` the earlier rows of
    outputs that are there come first; an output made again (its set of files was incomplete) keeps only its
    new row."""

    def __init__(self, output: OutputFolder, resume: bool):
        self.output = output
        self.kept = self._earlier_rows() if resume else {}
        self.superseded: set[str] = set()
        self.rows = self.skipped = self.resumed = 0
        self.path = (Path(output.target) / MANIFEST if not output.remote
                     else Path(tempfile.mkdtemp(prefix="algm-manifest-")) / MANIFEST)
        write_atomically(self.path, lambda temporary: temporary.write_text(
            "".join(json.dumps(row) + "\n" for row in self.kept.values())))
        self.file = open(self.path, "a")

    def _earlier_rows(self) -> dict[str, dict]:
        """Rows of the previous run whose label PNG is there, by output (a truncated last line is ignored)."""
        try:
            if not self.output.remote:
                text = (Path(self.output.target) / MANIFEST).read_text()
            else:
                system, path = file_system(self.output.target)
                with system.open_input_stream(f"{path}/{MANIFEST}") as stream:
                    text = stream.read().decode()
        except OSError:  # no manifest yet
            text = ""
        rows = {}
        for line in text.splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict) and row.get("output") and self.output.exists(PurePosixPath(row["output"]).name):
                rows[row["output"]] = row
        return rows

    def add(self, row: dict) -> None:
        """Append a row; a 'resumed' row of an output whose earlier row was kept is dropped."""
        self.rows += 1
        self.skipped += bool(row.get("skipped"))
        self.resumed += bool(row.get("resumed"))
        if row.get("output") in self.kept:
            if row.get("resumed"):
                return
            self.superseded.add(row["output"])
        self.file.write(json.dumps(row) + "\n")
        self.file.flush()

    def close(self) -> None:
        """Drop the superseded earlier rows (atomically) and, for a URI, upload the manifest."""
        self.file.close()
        if self.superseded:
            write_atomically(self.path, self._compact)
        if self.output.remote:
            self.output.upload(self.path)
            shutil.rmtree(self.path.parent, ignore_errors=True)

    def _compact(self, target: Path) -> None:
        with open(self.path) as source, open(target, "w") as sink:
            for number, line in enumerate(source):
                output = json.loads(line).get("output") if number < len(self.kept) else None
                if output not in self.superseded:
                    sink.write(line)


def _quiet(ray) -> None:
    """No Ray Data progress bars or execution banners: the command prints its own progress."""
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    logging.getLogger("ray").setLevel(logging.ERROR)
    logging.getLogger("ray.data").setLevel(logging.CRITICAL)  # its error banners: the command reports errors itself


def _rows(dataset) -> Iterator[dict]:
    for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
        for text in batch["row"]:
            yield json.loads(text)


def _user_error(error: BaseException) -> AlgmExportError | None:
    """The AlgmExportError an actor raised, if any: Ray wraps one raised in a task (RayTaskError,
    UserCodeException), and keeps only the text of one raised while the actor started (ActorDiedError)."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, AlgmExportError) and type(error).__module__.startswith("algm_export"):
            return error
        found = ACTOR_ERROR.findall(str(error)) if type(error).__name__ == "ActorDiedError" else []
        if found:
            return AlgmExportError(found[-1])
        error = getattr(error, "cause", None) or error.__cause__
    return None


def check_settings(model: str, args: argparse.Namespace) -> None:
    """What every actor would refuse, checked once before Ray starts: --batch and, for a local ONNX graph, its
    metadata and --im-size / --window-stride against its window. (Other models are checked by the actors.)"""
    if args.batch < 1:
        raise AlgmExportError(f"--batch must be >= 1, got {args.batch}")
    overrides = {k: v for k, v in (("im_size", args.im_size), ("window_stride", args.window_stride)) if v is not None}
    if is_uri(model) or Path(model).suffix.lower() != ".onnx":
        return
    import dataclasses

    import onnx

    from .deployment import DeploymentInfo

    try:
        graph = onnx.load(model, load_external_data=False)
    except Exception as error:  # noqa: BLE001 - protobuf's DecodeError and others
        raise AlgmExportError(f"{model}: not an ONNX graph ({type(error).__name__})") from error
    dataclasses.replace(DeploymentInfo.from_onnx(model, graph).windows, **overrides)


def _expected(inputs: list[str], every: int) -> int | None:
    """Images and frames the progress bar expects, as local predict counts them (None for URIs, or when a
    video does not say how many frames it has)."""
    if any(is_uri(name) for name in inputs):
        return None
    try:
        return expected_images([Source(Path(name)) for name in inputs], every)
    except AlgmExportError:  # PyAV missing here: the actors may still have it
        return None



def ray_predict_command(args: argparse.Namespace) -> int:
    """Run ``algm-export predict ... --ray``; returns the exit code."""
    from tqdm import tqdm

    ray = _ray(args.ray)
    inputs = collect_inputs([str(item) for item in args.inputs])
    model = str(args.model)
    if not is_uri(model):
        if not Path(model).is_file():
            problem = "is a folder; MODEL is a file" if Path(model).is_dir() else "no such file"
            raise AlgmExportError(f"{model}: {problem}")
        model = str(Path(model).absolute())
    check_settings(model, args)
    output = OutputFolder(str(args.output) if is_uri(str(args.output)) else str(Path(args.output).absolute()))
    if not output.remote and Path(output.target).exists() and not Path(output.target).is_dir():
        raise AlgmExportError(f"{output.target}: output path exists and is not a folder")
    connected = connect(ray, args.ray)
    manifest = None
    try:
        output.prepare()
        if args.resume and output.remove_partial_files():
            note("predict", "removed temporary files left by an interrupted run")
        actors = min(actor_count(ray, args.ray_actors, args.ray_cpus, args.ray_gpus), len(inputs))
        threads = args.ray_threads or max(1, round(args.ray_cpus))
        job = JobSettings(model, output.target, threads, args.batch, args.every, args.im_size, args.window_stride,
                          args.overlay, args.show_merges, args.resume, args.trust_checkpoint)
        manifest = Manifest(output, args.resume)
        _quiet(ray)
        blocks = min(len(inputs), max(actors, math.ceil(len(inputs) / args.ray_batch)))
        dataset = ray.data.from_items([{"input": name} for name in inputs], override_num_blocks=blocks)
        results = dataset.map_batches(SegmentActor, fn_constructor_args=(job,), batch_size=args.ray_batch,
                                      compute=ray.data.ActorPoolStrategy(size=actors), num_cpus=args.ray_cpus,
                                      num_gpus=args.ray_gpus, batch_format="numpy")
        start = time.perf_counter()
        with tqdm(total=_expected(inputs, args.every), unit="img", desc=f"segmenting ({actors} Ray actors)",
                  file=sys.stderr, dynamic_ncols=True) as bar:
            for row in _rows(results):
                manifest.add(row)
                if row.get("skipped"):
                    note("predict", f"skipped {row['skipped']}")
                    if bar.total is not None and row["frame"] is None and not is_video(row["input"]):
                        bar.total -= 1
                        bar.refresh()
                else:
                    bar.update(1)
        elapsed = time.perf_counter() - start
    except Exception as error:  # noqa: BLE001 - an actor's one-line error becomes ours; others stay as they are
        found = _user_error(error)
        if found is not None:
            raise AlgmExportError(str(found)) from error
        raise
    except BaseException:  # Ctrl-C, SIGTERM: the actors stop with the driver; drop what they had half written
        if connected:
            ray.shutdown()
            output.remove_partial_files()
        raise
    finally:
        if manifest is not None:
            manifest.close()
        if connected and ray.is_initialized():
            ray.shutdown()
    done = manifest.rows - manifest.skipped - manifest.resumed
    if done + manifest.resumed == 0:
        raise AlgmExportError("no readable images among the inputs")
    skipped = f"; skipped {manifest.skipped} unreadable (see {MANIFEST})" if manifest.skipped else ""
    resumed = f" ({manifest.resumed} were complete already)" if manifest.resumed else ""
    print(f"segmented {done} images{resumed} in {elapsed:.1f} s ({done / elapsed:.2f} images/s) with {actors} Ray "
          f"actors ({args.ray_cpus:g} CPUs{f', {args.ray_gpus:g} GPUs' if args.ray_gpus else ''} and {threads} threads "
          f"each); wrote {output.target}/ and {MANIFEST}{skipped}")
    return 0
