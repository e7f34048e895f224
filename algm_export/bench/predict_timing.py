"""``predict`` timed end to end on a short 1920x1080 test video, dense against ALGM."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np

from ..errors import AlgmExportError
from ..files import prepare_output_folder
from ..flops import segmenter_flops
from ..models.segmenter import Segmenter
from ..preprocess import resize_rgb
from ..runtime.base import Backend
from ..runtime.sliding import SlidingWindow

PREDICT_FRAME = (1080, 1920)


def write_test_video(path: Path, photos: dict[str, np.ndarray], frames: int, size: tuple[int, int]) -> Path:
    """A short video of the sample photos resized to ``size`` (PyAV, MPEG-4 part 2)."""
    import av

    names = list(photos)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = size[1], size[0], "yuv420p"
        stream.options = {"qscale": "3"}
        for index in range(frames):
            image = resize_rgb(photos[names[index % len(names)]], size)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    return path


def time_predict(backends: dict[str, Backend], model: Segmenter, folder: Path, photos: dict[str, np.ndarray],
                 frames: int) -> dict:
    """``predict`` on a 1920x1080 video end to end (decode, resize, windows, run, merge, write the PNGs) with
    the dense and the ALGM backend; frames/s, and the FLOP ratio of the windows' measured token counts."""
    try:
        import av  # noqa: F401
    except ImportError:
        return {"status": "skipped", "reason": "PyAV is not installed (pip install 'algm-export[video]')"}
    from ..arguments import DEFAULT_PREDICT_BATCH as DEFAULT_BATCH
    from ..predict import Predictor, Source

    video = write_test_video(folder / "frames_1080p.mp4", photos, frames, PREDICT_FRAME)
    record = {"status": "timed", "frames": frames, "frame_size": list(PREDICT_FRAME), "batch": DEFAULT_BATCH}
    for kind, backend in backends.items():
        sliding = SlidingWindow(backend, batch=DEFAULT_BATCH)
        next(sliding.segment([photos[next(iter(photos))]]))  # warm-up (builds the scores-only session)
        predictor = Predictor(backend, prepare_output_folder(folder / f"predict_{kind}"), sliding)
        start = time.perf_counter()
        predictor.run([Source(video)])
        elapsed = time.perf_counter() - start
        if predictor.images != frames:  # predict skips what it cannot read: a timing needs every frame
            raise AlgmExportError(f"predict timing: {predictor.images} of the {frames} test frames were segmented "
                                  f"({'; '.join(predictor.skipped) or 'none skipped'})")
        record[f"{kind}_frames_per_s"] = round(predictor.images / elapsed, 3)
        if predictor.token_counts:
            windows = [counts for image in predictor.token_counts for counts in image]
            size = backend.info.image_size
            dense = segmenter_flops(model.config, size, None, None)
            merged = statistics.mean(segmenter_flops(model.config, size, model.algm, c) for c in windows)
            record["flop_ratio_dense_over_algm"] = round(dense / merged, 3)
    record["speedup"] = round(record["ALGM_frames_per_s"] / record["dense_frames_per_s"], 3)
    record["speedup_over_flop_ratio"] = round(record["speedup"] / record["flop_ratio_dense_over_algm"], 3)
    return record
