"""``predict --ray`` input errors: one line on stderr, exit 2, no output folder made; none of them starts Ray."""

from __future__ import annotations

import contextlib
import io
import socket
import sys

import numpy as np
import pytest
from PIL import Image

from algm_export.cli import main


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
