"""``predict --ray``: on a local Ray (2 CPUs, fractional CPUs per actor) the same files as local predict, the
manifest, an actor killed mid-job, resume after an interrupt, URIs. Every test has a hard timeout; all are slow
(a model export, a local predict and Ray's start take ~50 s before the first test, each test 15-40 s on 2 cores):
`python -m pytest -m slow tests/test_ray_predict.py`."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from algm_export.cli import main
from algm_export.photos import sample_photo

ray = pytest.importorskip("ray", reason="Ray is not installed: pip install 'algm-export[ray]'")
pytest.importorskip("ray.data", reason="Ray Data is not installed: pip install 'algm-export[ray]'")

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
WINDOW = 128  # the tiny model exported at 128x128: a few windows per image keep each run short
# Both sides run each window alone (--batch 1) through the same ONNX Runtime graph on the same machine, so the
# arithmetic is the same and the PNGs must be bit-identical (ONNX Runtime's CPU kernels split work over output
# elements, not inside a sum, so the actors' single thread vs local predict's default threads changes nothing).
SAME_WINDOWS = ("--batch", "1", "--overlay", "--show-merges")
RAY = ("--ray", "--ray-cpus", "0.5")  # fractional CPUs: two actors must leave Ray a CPU for its own tasks


def predict(*args) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["predict", *map(str, args)])
    return code, out.getvalue(), err.getvalue()


def pngs(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.png"))}


def manifest(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "manifest.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    """The sample ViT-Tiny (ALGM, random decoder: only the code paths are compared) exported at 128x128."""
    from sample_models import make_sample_segmenter  # samples/ is on sys.path (conftest.py)

    from algm_export.export.onnx_export import export_graphs

    folder = tmp_path_factory.mktemp("model")
    export_graphs(make_sample_segmenter("tiny", image_size=WINDOW, fit_steps=0), folder, (WINDOW, WINDOW))
    return folder / "model.onnx"


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """Tiny, portrait, wide, 16-bit grayscale, a corrupt PNG and a 5-frame video (when PyAV is there)."""
    folder = tmp_path_factory.mktemp("inputs")
    astronaut, chelsea = sample_photo("astronaut"), sample_photo("chelsea")
    Image.fromarray(np.ascontiguousarray(astronaut[::20, ::16][:20, :30])).save(folder / "tiny.png")
    Image.fromarray(np.ascontiguousarray(chelsea[:, 100:250])).resize((100, 200)).save(folder / "portrait.jpg")
    Image.fromarray(astronaut[200:264]).resize((400, 64)).save(folder / "wide.png")
    Image.fromarray((astronaut.mean(axis=2) * 257).astype(np.uint16)[::4, ::4]).save(folder / "gray16.png")
    (folder / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    with contextlib.suppress(ImportError):
        import av

        with av.open(str(folder / "clip.mp4"), "w") as container:
            stream = container.add_stream("mpeg4", rate=10)
            stream.width, stream.height, stream.pix_fmt = 128, 96, "yuv420p"
            frame = np.ascontiguousarray(astronaut[:96, :128])
            for shift in range(5):
                container.mux(stream.encode(av.VideoFrame.from_ndarray(np.roll(frame, 8 * shift, axis=1),
                                                                       format="rgb24")))
            container.mux(stream.encode())
    return folder


@pytest.fixture(scope="module")
def local(model, inputs, tmp_path_factory) -> dict[str, bytes]:
    """What local predict writes for the inputs."""
    folder = tmp_path_factory.mktemp("local")
    code, _, err = predict(model, inputs, "-o", folder, *SAME_WINDOWS)
    assert code == 0, err
    return pngs(folder)


@pytest.fixture(scope="module")
def cluster():
    """A local Ray sized like a small test machine; predict --ray uses it (it is already connected)."""
    ray.init(num_cpus=2, object_store_memory=256 * 2**20, include_dashboard=False, log_to_driver=False)
    assert ray.get_runtime_context().gcs_address.startswith("127.0.0.1:"), "loopback only (tests/conftest.py)"
    yield
    ray.shutdown()


@pytest.mark.timeout(300)
def test_same_files_as_local_predict_and_a_manifest(cluster, model, inputs, local, tmp_path):
    code, out, err = predict(model, inputs, "-o", tmp_path, *SAME_WINDOWS, *RAY, "--ray-actors", "2")
    assert code == 0, err
    written = pngs(tmp_path)
    assert sorted(written) == sorted(local)  # labels, overlays, merge pictures; the corrupt file has none
    assert [name for name in local if written[name] != local[name]] == []
    assert "skipped 1 unreadable" in out and "corrupt.png: not a readable image" in err
    rows = manifest(tmp_path)
    skipped = [row for row in rows if row["skipped"]]
    assert [Path(row["input"]).name for row in skipped] == ["corrupt.png"]
    done = {Path(row["output"]).name: row for row in rows if not row["skipped"]}
    assert sorted(done) == sorted(name for name in local if not name.endswith(("_overlay.png", "_merges.png")))
    wide = done["wide.png"]
    assert wide["size"] == [64, 400] and wide["windows"] == len(wide["tokens"]) > 1
    labels = np.asarray(Image.open(tmp_path / "wide.png"))
    assert sum(wide["classes"].values()) == pytest.approx(
        min(1.0, sum(sorted(np.bincount(labels.ravel()) / labels.size, reverse=True)[:10])), abs=1e-5)  # rounding
    frames = sorted(row["frame"] for row in rows if row["input"].endswith("clip.mp4"))
    assert frames == ([0, 1, 2, 3, 4] if "clip_000000.png" in local else [])
    assert not list(tmp_path.glob(".*"))  # no temporary files left


@pytest.mark.timeout(400)
def test_actor_killed_mid_job_is_restarted(cluster, model, inputs, local, tmp_path):
    """One actor, killed (SIGKILL) after its first input: the job can only finish if Ray restarts it."""
    result = {}
    job = threading.Thread(target=lambda: result.update(code=predict(
        model, inputs, "-o", tmp_path, *SAME_WINDOWS, *RAY, "--ray-actors", "1", "--ray-batch", "1")[0]),
        daemon=True)
    job.start()
    deadline = time.monotonic() + 240
    while not (tmp_path / "manifest.jsonl").is_file() or not (tmp_path / "manifest.jsonl").read_text().strip():
        assert time.monotonic() < deadline and job.is_alive(), "no manifest row arrived"
        time.sleep(0.2)
    worker = manifest(tmp_path)[0]["worker"]
    os.kill(int(worker.rsplit(":", 1)[1]), signal.SIGKILL)
    job.join(timeout=300)
    assert not job.is_alive() and result["code"] == 0
    assert pngs(tmp_path) == local
    rows = manifest(tmp_path)
    outputs = [row["output"] for row in rows if row["output"]]
    assert len(outputs) == len(set(outputs))  # a retried batch is not listed twice
    assert {row["worker"] for row in rows} - {worker}  # later rows come from the restarted actor


@pytest.mark.timeout(500)
def test_interrupted_job_completes_with_resume(cluster, model, inputs, local, tmp_path):
    """Ctrl-C (SIGINT) after the first rows: only complete files; --resume keeps them and does the rest."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", "algm_export", "predict", str(model), str(inputs), "-o", str(tmp_path),
               *SAME_WINDOWS, *RAY, "--ray-actors", "1", "--ray-batch", "1"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        while len(pngs(tmp_path)) < 3:
            assert time.monotonic() < deadline and process.poll() is None, process.stderr.read()
            time.sleep(0.1)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 130, err
    before = pngs(tmp_path)
    assert before and set(before) < set(local)  # interrupted part way
    assert {name: local[name] for name in before} == before  # every visible file is complete
    labels = [name for name in before if not name.endswith(("_overlay.png", "_merges.png"))]
    sets = [[label.replace(".png", suffix) for suffix in (".png", "_overlay.png", "_merges.png")] for label in labels]
    complete = [name for names in sets if set(names) <= set(before) for name in names]  # may be rewritten: the rest
    assert complete  # the first image's three files at least (the job was stopped after three files)
    stamps = {name: (tmp_path / name).stat().st_mtime_ns for name in complete}
    code, out, err = predict(model, inputs, "-o", tmp_path, *SAME_WINDOWS, *RAY, "--ray-actors", "2", "--resume")
    assert code == 0, err
    assert pngs(tmp_path) == local and not list(tmp_path.glob(".*"))
    assert {name: (tmp_path / name).stat().st_mtime_ns for name in complete} == stamps  # not written again
    rows = manifest(tmp_path)
    outputs = [Path(row["output"]).name for row in rows if row["output"]]
    assert sorted(outputs) == sorted(set(outputs)) and set(labels) <= set(outputs)
    assert [Path(row["input"]).name for row in rows if row["skipped"]] == ["corrupt.png"]


@pytest.mark.timeout(300)
def test_uri_inputs_and_outputs(cluster, model, inputs, local, tmp_path):
    """file:// URIs go through the pyarrow file-system path that s3:// and gs:// take."""
    code, _, err = predict(model, f"file://{inputs}", "-o", f"file://{tmp_path}/out", *SAME_WINDOWS, *RAY,
                           "--ray-actors", "2")
    assert code == 0, err
    assert pngs(tmp_path / "out") == local
    rows = manifest(tmp_path / "out")
    assert all(row["output"].startswith("file://") for row in rows if row["output"])
    assert [row["input"] for row in rows if row["skipped"]] == [f"file://{inputs}/corrupt.png"]
