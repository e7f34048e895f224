"""Input handling: images, the public Python API, the command line's bad-input bullets (one line on stderr,
exit 2, nothing written), verify/build refusing graphs exported with other settings, and the Python sample."""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from algm_export import AlgmExportError, load_segmenter
from algm_export.cli import main
from algm_export.photos import read_image, read_image_folder
from algm_export.runtime import segment
from algm_export.runtime.onnxruntime_backend import OnnxRuntimeBackend

ROOT = Path(__file__).resolve().parents[1]


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_refused(code: int, err: str, message: str, folder: Path | None = None, expected: list[str] = ()):
    assert code == 2, err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err, err
    if folder is not None:
        assert sorted(p.name for p in folder.iterdir()) == sorted(expected)


# ---- images ---------------------------------------------------------------------------------------------

def test_sixteen_bit_png_is_scaled_not_clipped(tmp_path):
    ramp = np.linspace(0, 65535, 256 * 256).reshape(256, 256).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "g16.png")
    pixels = read_image(tmp_path / "g16.png")
    assert pixels.shape == (256, 256, 3) and pixels.dtype == np.uint8
    assert (pixels == 255).mean() < 0.01
    np.testing.assert_allclose(pixels[..., 0].astype(float), ramp / 257.0, atol=0.51)


def test_exif_orientation_is_applied(tmp_path):
    image = np.zeros((20, 40, 3), np.uint8)
    image[:, :20] = 255  # left half white
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    Image.fromarray(image).save(tmp_path / "rotated.jpg", exif=exif, quality=100)
    pixels = read_image(tmp_path / "rotated.jpg")
    assert pixels.shape == (40, 20, 3)
    assert pixels[:18].mean() > 200 and pixels[22:].mean() < 50  # white half now on top


@pytest.mark.parametrize("mode, value", [("L", 128), ("RGBA", (10, 20, 30, 255)), ("P", 3), ("CMYK", (0, 255, 0, 0)),
                                         ("LA", (50, 255)), ("1", 1), ("I;16", 65535)])
def test_image_modes(tmp_path, mode, value):
    suffix = ".jpg" if mode == "CMYK" else ".tif" if mode == "I;16" else ".png"
    Image.new(mode, (8, 6), value).save(tmp_path / f"x{suffix}")
    pixels = read_image(tmp_path / f"x{suffix}")
    assert pixels.shape == (6, 8, 3) and pixels.dtype == np.uint8


def test_non_images_in_a_folder_are_skipped_with_a_note(tmp_path, photos, capsys):
    Image.fromarray(photos["coffee"]).save(tmp_path / "coffee.png")
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    images = read_image_folder(tmp_path)
    assert list(images) == ["coffee.png"]
    err = capsys.readouterr().err
    assert "note: skipping" in err and "notes.txt" in err and "broken.png" in err


def huge_png(path: Path, side: int = 20000) -> None:
    """A valid 20000x20000 grayscale PNG header with a tiny compressed body (a decompression bomb)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    body = zlib.compress(b"\x00" * (side + 1) * 16)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b""))


def test_huge_png_is_refused_in_one_line(research_checkpoint, tmp_path, capsys, monkeypatch):
    (tmp_path / "images").mkdir()
    huge_png(tmp_path / "images" / "huge.png")
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, research_checkpoint, "--images", tmp_path / "images", "--dry-run")
    assert_refused(code, err, "huge.png: larger than the 64 megapixels this tool reads", tmp_path, ["images"])


# ---- public Python API ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def backend(pipeline_run):
    return OnnxRuntimeBackend(pipeline_run[2] / "model.onnx")


@pytest.mark.parametrize("images, message", [
    (np.zeros((1, 3, 512, 512), np.uint8), "pixels of type uint8"),
    (np.zeros((1, 3, 512, 512), np.int64), "pixels of type int64"),
    (np.zeros((1, 3, 512, 512), bool), "pixels of type bool"),
    (np.zeros((1, 3, 512, 512), object), "pixels of type object"),
    (np.zeros((1, 3, 512, 512), np.complex64), "pixels of type complex64"),
    (np.full((1, 3, 512, 512), np.nan, np.float32), "NaN or infinite"),
    (np.full((1, 3, 512, 512), np.inf, np.float32), "NaN or infinite"),
    (np.zeros((3, 512, 512), np.float32), "input of shape [3, 512, 512]"),
    (np.zeros((0, 3, 512, 512), np.float32), "input of shape [0, 3, 512, 512]"),
    ([[0.0]], "expected a numpy array"),
    (None, "expected a numpy array"),
])
def test_backend_run_refuses_bad_input(backend, images, message):
    with pytest.raises(AlgmExportError, match=message.replace("[", r"\[").replace("]", r"\]")):
        backend.run(images)


@pytest.mark.parametrize("photos, message", [
    (None, "expected a non-empty list of photo arrays, got NoneType"),
    ([], "got an empty list"),
    (np.zeros((64, 64, 3), np.uint8), "got ndarray"),
    ([np.zeros((64, 64, 3), np.complex64)], "pixels of type complex64"),
    ([np.zeros((64, 64, 3), object)], "pixels of type object"),
    ([np.full((64, 64, 3), np.nan)], "float pixels must be finite"),
    ([np.zeros((64,), np.uint8)], "is not an image"),
    (["photo.jpg"], "expected a numpy array, got str"),
])
def test_segment_refuses_bad_photos(backend, photos, message):
    with pytest.raises(AlgmExportError, match=message):
        segment(backend, photos)


def test_segment_accepts_grayscale_rgba_uint16_and_float(backend, photos):
    rgb = photos["coffee"]
    gray = rgb.mean(axis=2).astype(np.uint8)
    variants = [rgb, gray, gray[..., None], np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)]),
                rgb.astype(np.uint16) * 257, rgb.astype(np.float32) / 255.0]
    labels = segment(backend, variants, batch=1)  # alone (also what the per-image batch rule gives in a batch)
    assert all(label.shape == rgb.shape[:2] for label in labels)
    for index in (3, 4, 5):  # RGBA, uint16 and float of the same photo give the RGB photo's labels
        assert (labels[index] == labels[0]).mean() > 0.999


@pytest.mark.parametrize("argument, message", [((), "must be a file name, got tuple"), (None, "got NoneType"),
                                               ([1], "got list"), ("", "got str")])
def test_load_segmenter_refuses_bad_arguments(argument, message):
    with pytest.raises(AlgmExportError, match=message):
        load_segmenter(argument)


def test_load_segmenter_refuses_bad_algm_and_trust(research_checkpoint):
    with pytest.raises(AlgmExportError, match="algm must be 'auto', None or an ALGMConfig"):
        load_segmenter(research_checkpoint, algm=[1, 5])
    with pytest.raises(AlgmExportError, match="trust_checkpoint must be True or False"):
        load_segmenter(research_checkpoint, trust_checkpoint="yes")


# ---- command line: bad input ----------------------------------------------------------------------------

def copy_checkpoint(research_checkpoint: Path, folder: Path, **net_changes) -> Path:
    folder.mkdir()
    shutil.copy(research_checkpoint, folder / "checkpoint.pth")
    variant = yaml.safe_load((research_checkpoint.parent / "variant.yml").read_text())
    variant["net_kwargs"].update(net_changes)
    (folder / "variant.yml").write_text(yaml.safe_dump(variant))
    return folder / "checkpoint.pth"


@pytest.mark.parametrize("changes, message", [
    ({"patch_size": 0}, "patch_size must be an integer in 1..65536, got 0"),
    ({"n_heads": 0}, "n_heads must be an integer in 1..65536, got 0"),
    ({"d_model": 0}, "d_model must be an integer in 1..65536, got 0"),
    ({"patch_size": -16}, "patch_size must be an integer in 1..65536, got -16"),
    ({"image_size": [-512, 512]}, "image size must be one or two positive sizes"),
    ({"image_size": [512]}, "net_kwargs.image_size must be a size or [height, width], got [512]"),
    ({"image_size": [512, 512, 3]}, "got [512, 512, 3]"),
    ({"backbone": "vit_small_patch16_384"}, "backbone 'vit_small_patch16_384' contradicts d_model 192"),
])
def test_bad_variant_values(research_checkpoint, tmp_path, capsys, monkeypatch, changes, message):
    checkpoint = copy_checkpoint(research_checkpoint, tmp_path / "in", **changes)
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, checkpoint, "--dry-run")
    assert_refused(code, err, message, tmp_path, ["in"])


def test_unknown_backbone_name_is_a_note(research_checkpoint, tmp_path, capsys):
    checkpoint = copy_checkpoint(research_checkpoint, tmp_path / "in", backbone="my_special_net")
    code, out, err = run_cli(capsys, checkpoint, "--dry-run")
    assert code == 0 and "note:" in err and "unknown backbone 'my_special_net'" in err and "d_model 192" in err


@pytest.mark.parametrize("argv, message", [
    (["{ckpt}", "--image-size", "100000"], "--image-size 100000x100000: 39062500 patches of 16 px"),
    (["{ckpt}", "--image-size", "4096"], "--image-size 4096x4096: 65536 patches of 16 px, more than the 8192"),
    (["{ckpt}", "--verify-batch", "0"], "--verify-batch must be >= 1"),
    (["{ckpt}", "--workspace", "0"], "--workspace must be at least 1 MiB"),
    (["{ckpt}", "-o", "{tmp}/afile"], "output path exists and is not a folder"),
    (["{ckpt}", "--images", "{tmp}/empty"], "contains no readable images"),
    (["{ckpt}", "--images", "{tmp}/nowhere"], "not a folder of images"),
    (["{tmp}"], "is a folder; MODEL is a checkpoint file"),
    (["{tmp}/random.pt"], "not a readable PyTorch checkpoint (damaged, or another format)"),
    (["{tmp}/nan/checkpoint.pth"], "encoder.blocks.3.mlp.fc1.weight[0, 0] is nan"),
])
def test_dry_run_checks_what_a_real_run_checks(research_checkpoint, tmp_path, capsys, monkeypatch, argv, message):
    (tmp_path / "afile").write_text("x")
    (tmp_path / "empty").mkdir()
    (tmp_path / "random.pt").write_bytes(np.random.default_rng(0).bytes(4000))
    nan = copy_checkpoint(research_checkpoint, tmp_path / "nan")
    data = torch.load(nan, weights_only=True)
    data["model"]["encoder.blocks.3.mlp.fc1.weight"][0, 0] = float("nan")
    torch.save(data, nan)
    before = sorted(p.name for p in tmp_path.iterdir())
    monkeypatch.chdir(tmp_path)
    argv = [a.format(ckpt=research_checkpoint, tmp=tmp_path) for a in argv]
    for extra in (["--dry-run"], []) if message.startswith("encoder") or "patches" in message else (["--dry-run"],):
        code, _, err = run_cli(capsys, *argv, *extra)
        assert_refused(code, err, message, tmp_path, before)


def test_raw_pickle_gives_no_torch_warning(tmp_path, capsys):
    import pickle

    (tmp_path / "raw.pt").write_bytes(pickle.dumps({"model": {"a": 1}}, protocol=4))
    code, _, err = run_cli(capsys, tmp_path / "raw.pt", "--dry-run")
    assert_refused(code, err, "a plain pickle that the safe loader cannot read")
    assert "Warning" not in err


def test_bench_dense_leaves_no_folder(research_checkpoint, tmp_path, capsys):
    code, _, err = run_cli(capsys, "bench", research_checkpoint, "--dense", "-o", tmp_path / "bench_out",
                           "--runs", "1", "--warmup", "0")
    assert_refused(code, err, "bench compares dense and ALGM", tmp_path, [])


# ---- verify / build check what they test ----------------------------------------------------------------

@pytest.mark.parametrize("argv, message", [
    (["--dense"], "dense/ALGM: graph ALGM layers 1,5, window 2x2, threshold 0.88, MODEL and flags dense (no ALGM)"),
    (["--threshold", "0.9"], "ALGM threshold: graph 0.88, MODEL and flags 0.9"),
    (["--layers", "1,6"], "ALGM layers: graph (1, 5), MODEL and flags (1, 6)"),
    (["--window", "1x2"], "ALGM window: graph (2, 2), MODEL and flags (1, 2)"),
    (["--image-size", "256"], "image size: graph 512x512, --image-size 256x256"),
    (["--batch-rule", "min"], "--batch-rule: graph per-image, MODEL and flags min"),
])
def test_verify_refuses_graphs_exported_with_other_settings(pipeline_run, research_checkpoint, capsys, argv,
                                                            message):
    before = {p.name: p.stat().st_mtime_ns for p in pipeline_run[2].iterdir()}
    code, _, err = run_cli(capsys, "verify", research_checkpoint, "-o", pipeline_run[2], *argv)
    assert_refused(code, err, message)
    assert {p.name: p.stat().st_mtime_ns for p in pipeline_run[2].iterdir()} == before


def test_build_checks_its_inputs_without_tensorrt(pipeline_run, research_checkpoint, tmp_path, capsys):
    folder = pipeline_run[2]
    code, _, err = run_cli(capsys, "build", research_checkpoint, "-o", folder, "--plugin-lib", tmp_path / "no.so")
    assert_refused(code, err, "--plugin-lib")
    code, _, err = run_cli(capsys, "build", research_checkpoint, "-o", folder, "--timing-cache", tmp_path)
    assert_refused(code, err, "is a folder")
    code, _, err = run_cli(capsys, "build", research_checkpoint, "-o", tmp_path)
    assert_refused(code, err, "model.fp16.onnx: missing; export it first")
    code, _, err = run_cli(capsys, "build", research_checkpoint, "-o", folder, "--dense")
    assert_refused(code, err, "dense/ALGM")


# ---- the Python sample ----------------------------------------------------------------------------------

@pytest.mark.parametrize("output, message", [("nowhere/labels.png", "does not exist"),
                                             ("labels.xyz", "unknown image type '.xyz'")])
def test_python_sample_bad_output_is_one_line(pipeline_run, tmp_path, output, message):
    result = subprocess.run([sys.executable, str(ROOT / "samples/python/segment_photo.py"),
                             str(pipeline_run[2] / "model.onnx"), "-o", str(tmp_path / output)],
                            capture_output=True, text=True)
    assert result.returncode == 2 and message in result.stderr and result.stderr.count("\n") == 1, result.stderr
    assert list(tmp_path.iterdir()) == []
