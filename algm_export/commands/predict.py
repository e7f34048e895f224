"""``algm-export predict``: segment images and videos with an exported model, locally, through a server
(``--server``) or on a Ray cluster (``--ray``)."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time

from ..console import note
from ..errors import AlgmExportError
from ..evaluation.protocol import views
from ..files import prepare_output_folder
from ..predict import Predictor, check_foreign_outputs, collect_sources, expected_images, mark_written
from ..runtime.loading import open_backend
from ..runtime.sliding import SlidingWindow


def predict_command(args: argparse.Namespace) -> int:
    """Run ``algm-export predict``; returns the exit code."""
    from tqdm import tqdm

    if args.server:
        from ..serving.client import predict_with_server  # PyTriton's client: only with --server

        return predict_with_server(args)
    if not args.inputs:
        raise AlgmExportError("predict: no INPUT given (MODEL INPUT... or --server URL INPUT...)")
    if args.every < 1:
        raise AlgmExportError(f"--every must be >= 1, got {args.every}")
    if args.ray is not None:  # the same files, written by a pool of Ray actors (algm_export/distributed.py)
        from ..distributed import ray_predict_command  # Ray: only with --ray

        return ray_predict_command(args)
    if args.resume:
        raise AlgmExportError("--resume needs --ray")
    uris = [item for item in (args.model, args.output, *args.inputs) if isinstance(item, str)]
    if uris:
        raise AlgmExportError(f"{uris[0]}: URIs are read and written with --ray only")
    sources = collect_sources(args.inputs)
    backend = open_backend(args.model, args.trust_checkpoint, args.ort_ops)
    overrides = {k: v for k, v in (("im_size", args.im_size), ("window_stride", args.window_stride)) if v is not None}
    sliding = SlidingWindow(backend, dataclasses.replace(backend.info.windows, **overrides), args.batch, args.resize)
    image_views = views(args.multiscale, args.flip)
    with_merges = args.show_merges and backend.info.algm is not None and len(image_views) <= 1
    ours = check_foreign_outputs(args.output, sources, args.every, args.overlay, with_merges)
    created = not args.output.exists()
    folder = prepare_output_folder(args.output)
    if args.show_merges and backend.info.algm is None:
        note("predict", "--show-merges: the model does not merge tokens (dense); no merge pictures")
    if args.show_merges and backend.info.algm is not None and len(image_views) > 1:
        note("predict", "--show-merges: not drawn with --multiscale/--flip (merges differ per view)")
    predictor = Predictor(backend, folder, sliding, args.every, args.overlay, with_merges, image_views)
    start = time.perf_counter()
    try:
        with tqdm(total=expected_images(sources, args.every), unit="img", desc="segmenting", file=sys.stderr,
                  dynamic_ncols=True) as progress:
            predictor.run(sources, progress)
    finally:  # also on an error or interrupt: the files written so far are listed as predict's
        if predictor.written:
            mark_written(folder, predictor, ours)
        elif created:
            folder.rmdir()  # nothing written: leave no empty folder behind
    elapsed = time.perf_counter() - start
    if predictor.images == 0:
        raise AlgmExportError("no readable images among the inputs")
    frames = f" ({predictor.frames} video frames)" if predictor.frames else ""
    skipped = f"; skipped {len(predictor.skipped)} unreadable" if predictor.skipped else ""
    views_text = f", {len(image_views)} test-time views" if len(image_views) > 1 else ""
    rate = predictor.images / elapsed
    print(f"segmented {predictor.images} images{frames} in {elapsed:.1f} s ({rate:.2f} images/s) with {backend.name}, "
          f"windows {sliding.window[0]}x{sliding.window[1]} every {sliding.settings.window_stride} px, "
          f"batch {sliding.batch}{views_text}; wrote {folder}/{skipped}")
    return 0
