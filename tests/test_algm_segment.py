"""The C++ sample algm_segment, run as a program on hand-built one-op graphs (no model, well under a second each).

The graph's `labels` output is the red channel the program fed it, as an 8-bit value (round(255 * x) of the
normalized input with mean 0, std 1) plus an offset: the label PNG shows exactly which 8-bit pixels the program
read, so its PNG reading is compared with Python's (algm_export.photos.read_image). The binary comes from
$ALGM_SEGMENT or build/sample/algm_segment; without it the tests are skipped with that reason."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

from algm_export.photos import read_image

BINARY = Path(os.environ.get("ALGM_SEGMENT", Path(__file__).resolve().parents[1] / "build/sample/algm_segment"))
SIZE = 16  # the graph's input size (and window)


@pytest.fixture(scope="module")
def binary() -> Path:
    if not BINARY.is_file():
        pytest.skip(f"algm_segment is not built ({BINARY} missing; set ALGM_SEGMENT or build samples/cpp, see .ci/run)")
    return BINARY


def red_channel_graph(path: Path, classes: int, offset: int = 0, windows: bool = False) -> Path:
    """A graph images [1, 3, SIZE, SIZE] -> labels [1, SIZE, SIZE] int64 = round(255 * red) + offset, with
    algm_export metadata for `classes` classes (and sliding-window settings when `windows`)."""
    images = helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, SIZE, SIZE])
    labels = helper.make_tensor_value_info("labels", TensorProto.INT64, [1, SIZE, SIZE])
    constants = [numpy_helper.from_array(np.array(value, dtype), name) for name, value, dtype in (
        ("starts", [0], np.int64), ("ends", [1], np.int64), ("axes", [1], np.int64),
        ("scale", 255.0, np.float32), ("offset", float(offset), np.float32))]
    nodes = [helper.make_node("Slice", ["images", "starts", "ends", "axes"], ["red"]),
             helper.make_node("Mul", ["red", "scale"], ["scaled"]),
             helper.make_node("Round", ["scaled"], ["rounded"]),
             helper.make_node("Add", ["rounded", "offset"], ["shifted"]),
             helper.make_node("Cast", ["shifted"], ["wide"], to=TensorProto.INT64),
             helper.make_node("Squeeze", ["wide", "axes"], ["labels"])]
    graph = helper.make_graph(nodes, "red_channel", [images], [labels], initializer=constants)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    info = {"image_size": [SIZE, SIZE], "normalization": {"mean": [0, 0, 0], "std": [1, 1, 1]},
            "class_names": [f"class{i}" for i in range(classes)]}
    if windows:
        info["windows"] = {"im_size": SIZE, "window_size": SIZE, "window_stride": SIZE // 2}
    helper.set_model_props(model, {"algm_export": json.dumps(info)})
    path.write_bytes(model.SerializeToString())
    return path


def write_png16(path: Path, samples: np.ndarray) -> Path:
    """A 16-bit PNG of uint16 `samples` [H, W, C] (C = 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA), written byte by byte
    (Pillow cannot write 16-bit colour)."""
    height, width, channels = samples.shape
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    raw = b"".join(b"\x00" + samples[y].astype(">u2").tobytes() for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
                     + chunk(b"IEND", b""))
    return path


def run(binary: Path, *arguments: object) -> subprocess.CompletedProcess:
    return subprocess.run([str(binary), *map(str, arguments)], capture_output=True, text=True, timeout=60)


def test_help_prints_usage_and_exits_0(binary):
    result = run(binary, "--help")
    assert result.returncode == 0 and result.stderr == ""
    assert result.stdout.startswith("usage: algm_segment MODEL IMAGE -o OUT.png")
    assert "--ort-ops" in result.stdout and "--plugins" in result.stdout and "Exit status" in result.stdout
    assert run(binary, "-h").stdout == result.stdout


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_16_bit_pngs_are_read_as_python_reads_them(binary, tmp_path, channels):
    """Random 16-bit samples (grey, grey+alpha, RGB, RGBA): the 8-bit pixels the program feeds the model equal
    Python's read_image on every pixel (both map uint16 to uint8 the same way: no tolerance)."""
    samples = np.random.default_rng(channels).integers(0, 65536, (SIZE, SIZE, channels), dtype=np.uint16)
    if channels in (2, 4):
        samples[..., -1] = 65535  # opaque: alpha is dropped by both sides
    photo = write_png16(tmp_path / f"photo{channels}.png", samples)
    graph = red_channel_graph(tmp_path / "red.onnx", classes=256)
    result = run(binary, graph, photo, "-o", tmp_path / "labels.png")
    assert result.returncode == 0, result.stderr
    written = np.asarray(Image.open(tmp_path / "labels.png"))
    np.testing.assert_array_equal(written, read_image(photo)[..., 0])


def test_more_than_256_classes_give_a_16_bit_label_png(binary, tmp_path):
    """300 classes: labels up to 299 are written as 16-bit indices (as predict writes them), not truncated."""
    photo = tmp_path / "photo.png"
    pixels = np.random.default_rng(3).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(photo)
    graph = red_channel_graph(tmp_path / "red300.onnx", classes=300, offset=44)
    result = run(binary, graph, photo, "-o", tmp_path / "labels.png")
    assert result.returncode == 0, result.stderr
    written = Image.open(tmp_path / "labels.png")
    assert written.mode == "I;16"
    np.testing.assert_array_equal(np.asarray(written), pixels[..., 0].astype(np.int64) + 44)
    assert np.asarray(written).max() > 255  # the test reaches the range 8 bits cannot hold


def test_labels_only_graph_with_several_windows_is_bad_input(binary, tmp_path):
    """A labels-only graph cannot be averaged over windows: one line naming the cause, exit 2, nothing written
    (before: 'Invalid output name: logits', exit 1)."""
    photo = tmp_path / "wide.png"
    Image.fromarray(np.zeros((SIZE, 2 * SIZE, 3), np.uint8)).save(photo)
    graph = red_channel_graph(tmp_path / "labels_only.onnx", classes=256, windows=True)
    result = run(binary, graph, photo, "-o", tmp_path / "labels.png")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "outputs only labels" in result.stderr
    assert f"{SIZE}x{SIZE}" in result.stderr and "--outputs labels,scores" in result.stderr
    assert not (tmp_path / "labels.png").exists()


def test_labels_only_graph_with_one_window_image_runs(binary, tmp_path):
    """An image of exactly one window needs no averaging: the graph's labels are the answer (as in Python)."""
    photo = tmp_path / "square.png"
    pixels = np.random.default_rng(4).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(photo)
    graph = red_channel_graph(tmp_path / "labels_only.onnx", classes=256, windows=True)
    result = run(binary, graph, photo, "-o", tmp_path / "labels.png")
    assert result.returncode == 0, result.stderr
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "labels.png")), pixels[..., 0])
