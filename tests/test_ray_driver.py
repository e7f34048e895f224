"""``predict --ray`` on the driver, without starting Ray: input errors (one line on stderr, exit 2, no output
folder made) and the manifest's resume bookkeeping."""

from __future__ import annotations

import contextlib
import io
import json
import socket
import sys

import numpy as np
import pytest
from PIL import Image

from algm_export.cli import main
from algm_export.distributed import MANIFEST, Manifest
from algm_export.storage import OutputFolder


def predict(*args) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = main(["predict", *map(str, args)])
    return code, err.getvalue()


@pytest.fixture()
def job(tmp_path):
    """A checkpoint file (only the actors open checkpoints: every error here comes first), an image, an output."""
    (tmp_path / "model.pth").write_bytes(b"not opened")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "a.png")
    return tmp_path / "model.pth", tmp_path / "a.png", tmp_path / "out"


def one_line_error(code: int, err: str, text: str) -> None:
    assert code == 2 and len(err.strip().splitlines()) == 1 and text in err, err


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.timeout(60)
def test_unreachable_address(job):
    pytest.importorskip("ray.data", reason="Ray Data is not installed: pip install 'algm-export[ray]'")
    model, image, output = job
    code, err = predict(model, image, "-o", output, "--ray", f"127.0.0.1:{free_port()}")
    one_line_error(code, err, "no Ray cluster reachable there")
    assert not output.exists()
    code, err = predict(model, image, "-o", output, "--ray", "ray://127.0.0.1:10001")
    one_line_error(code, err, "Ray Client addresses are not supported")
    code, err = predict(model, image, "-o", output, "--ray", "nonsense")
    one_line_error(code, err, "no Ray cluster reachable there")


def test_missing_extra(job, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError, as without the extra
    model, image, output = job
    code, err = predict(model, image, "-o", output, "--ray")
    one_line_error(code, err, "--ray needs Ray Data: pip install 'algm-export[ray]'")
    assert not output.exists()


def test_options_that_need_ray_or_are_out_of_range(job):
    model, image, output = job
    one_line_error(*predict(model, image, "-o", output, "--resume"), "--resume needs --ray")
    one_line_error(*predict(model, "s3://bucket/photos/", "-o", output), "URIs are read and written with --ray only")
    one_line_error(*predict(model, image, "-o", output, "--ray", "--ray-cpus", "0"), "expected a number > 0")
    one_line_error(*predict(model, image, "-o", output, "--ray", "--ray-actors", "0"), "expected an integer >= 1")
    assert not output.exists()


def test_same_stem_from_two_folders_is_refused(job, tmp_path):
    pytest.importorskip("ray.data", reason="Ray Data is not installed: pip install 'algm-export[ray]'")
    model, image, output = job
    (tmp_path / "other").mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "other" / "a.jpg")
    code, err = predict(model, image, tmp_path / "other", "-o", output, "--ray")
    one_line_error(code, err, "would both be written to a.png")
    assert not output.exists()


def test_damaged_onnx_graph_is_refused_before_ray_starts(job, tmp_path):
    pytest.importorskip("ray.data", reason="Ray Data is not installed: pip install 'algm-export[ray]'")
    _, image, output = job
    (tmp_path / "model.onnx").write_bytes(b"not a graph")
    code, err = predict(tmp_path / "model.onnx", image, "-o", output, "--ray", f"127.0.0.1:{free_port()}")
    one_line_error(code, err, "model.onnx: not an ONNX graph")
    assert not output.exists()


def test_manifest_on_resume_keeps_one_row_per_output(tmp_path):
    """Earlier rows of outputs that are there are kept; a kept output made again keeps only its new row; a row
    whose output is gone is dropped; a truncated last line (a killed driver) is ignored."""
    for name in ("a.png", "b.png"):
        (tmp_path / name).write_bytes(b"png")
    earlier = [{"input": f"/in/{stem}.jpg", "output": str(tmp_path / f"{stem}.png"), "seconds": 1.0}
               for stem in ("a", "b", "gone")]
    (tmp_path / MANIFEST).write_text("".join(json.dumps(row) + "\n" for row in earlier) + '{"input": "/in/c.j')
    manifest = Manifest(OutputFolder(str(tmp_path)), resume=True)
    assert sorted(manifest.kept) == [str(tmp_path / "a.png"), str(tmp_path / "b.png")]
    manifest.add({"input": "/in/a.jpg", "output": str(tmp_path / "a.png"), "seconds": 2.0})  # made again
    manifest.add({"input": "/in/b.jpg", "output": str(tmp_path / "b.png"), "resumed": True})  # complete already
    manifest.add({"input": "/in/d.png", "output": None, "skipped": "d.png: not a readable image"})
    manifest.close()
    rows = [json.loads(line) for line in (tmp_path / MANIFEST).read_text().splitlines()]
    assert rows == [earlier[1], {"input": "/in/a.jpg", "output": str(tmp_path / "a.png"), "seconds": 2.0},
                    {"input": "/in/d.png", "output": None, "skipped": "d.png: not a readable image"}]
    assert (manifest.rows, manifest.resumed, manifest.skipped) == (3, 1, 1)
    assert not list(tmp_path.glob(".*"))
