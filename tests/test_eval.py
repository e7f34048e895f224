"""``algm-export eval`` end to end on tiny datasets with a small (128-pixel window) checkpoint and its ONNX graph:
single scale equals ``predict``, ONNX Runtime within 0.1 mIoU of PyTorch, multi-scale follows the research views,
the report files, and the one-line errors."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import json
import math

import cv2
import numpy as np
import pytest
import tiny_datasets
import torch
import torch.nn.functional as F
from PIL import Image
from sample_models import make_sample_segmenter

from algm_export.checkpoints import load_segmenter
from algm_export.checkpoints.research import write_research_checkpoint
from algm_export.cli import main
from algm_export.config import WindowSettings
from algm_export.export.onnx_export import export_graphs

WINDOW, STRIDE = 128, 96  # overlapping windows: averaging is exercised
RATIOS = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)


def run(*args) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([*map(str, args)])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A ViT-Tiny ALGM research checkpoint with 128x128 windows every 96 pixels (short side 128)."""
    model = make_sample_segmenter("tiny", WINDOW, fit_steps=40)
    config = dataclasses.replace(model.config, inference=WindowSettings(WINDOW, WINDOW, STRIDE))
    return write_research_checkpoint(tmp_path_factory.mktemp("small") / "ckpt", config, model.algm,
                                     model.state_dict())


@pytest.fixture(scope="module")
def graphs(checkpoint, tmp_path_factory):
    """Its exported graphs (model.onnx for ONNX Runtime)."""
    folder = tmp_path_factory.mktemp("graphs")
    export_graphs(load_segmenter(checkpoint), folder, (WINDOW, WINDOW))
    return folder


@pytest.fixture(scope="module")
def predicted(checkpoint, photos, tmp_path_factory):
    """A folder dataset whose annotations are `predict`'s labels for its images (PyTorch, same batch)."""
    root = tmp_path_factory.mktemp("predicted")
    tiny_datasets.folder(root, photos)
    labels = tmp_path_factory.mktemp("predicted_labels")  # predict never overwrites the layout's placeholders
    code, _, err = run("predict", checkpoint, root / "images", "-o", labels, "--batch", "4")
    assert code == 0, err
    for annotation in (root / "annotations").glob("*.png"):
        annotation.write_bytes((labels / annotation.name).read_bytes())
    return root


def test_single_scale_pytorch_equals_predict_and_onnxruntime_is_within_0_1_miou(checkpoint, graphs, predicted,
                                                                                  tmp_path):
    out = tmp_path / "eval"
    code, printed, err = run("eval", checkpoint, graphs, "--data", predicted, "--dataset", "folder", "-o", out,
                             "--batch", "4")
    assert code == 0, err
    report = json.loads((out / "eval.json").read_text())
    backends = report["backends"]
    assert list(backends) == ["pytorch", "pytorch_dense", "onnxruntime_fp32"]
    # The same code path, images and batches as predict: every pixel agrees, not just most (aAcc is exact).
    assert backends["pytorch"]["aAcc"] == 100.0 and backends["pytorch"]["mIoU"] == 100.0
    # ONNX Runtime FP32 vs PyTorch: the parity tolerance in mIoU terms (kernels differ in the last bits, which
    # can flip near-tied pixels; 0.1 points is the gate).
    assert abs(backends["onnxruntime_fp32"]["delta_mIoU"]) <= 0.1
    assert backends["pytorch_dense"]["mean_tokens"] == (WINDOW // 16) ** 2 + 1
    assert backends["pytorch"]["mean_tokens"] < backends["pytorch_dense"]["mean_tokens"]  # ALGM merged tokens
    assert backends["pytorch"]["images"] == 4 and backends["pytorch"]["windows"] == expected_windows(predicted, [1.0])
    for line in ("pytorch ", "pytorch_dense", "onnxruntime_fp32", "mIoU", "ΔmIoU", "images/s"):
        assert line in printed
    rows = list(csv.reader((out / "per_class.csv").open()))
    assert len(rows) == 151 and rows[0][:3] == ["class", "pytorch IoU", "pytorch Acc"]
    picture = Image.open(out / "confusion_onnxruntime_fp32.png")
    assert picture.mode == "RGB" and picture.size[0] >= 600


def image_sizes(root) -> list[tuple[int, int]]:
    return [np.asarray(Image.open(p)).shape[:2] for p in sorted((root / "images").iterdir())]


def view_size(size: tuple[int, int], ratio: float) -> tuple[tuple[int, int], tuple[int, int]]:
    """mmcv's keep-ratio rescale to (4 * 128 * r, 128 * r), then the research enlargement to the window."""
    height, width = size
    scale = min(int(4 * WINDOW * ratio) / max(size), int(WINDOW * ratio) / min(size))
    scaled = int(height * scale + 0.5), int(width * scale + 0.5)
    h, w = scaled
    if min(h, w) < WINDOW:
        h, w = (WINDOW, int(w / h * WINDOW)) if h < w else (int(h / w * WINDOW), WINDOW)
    return scaled, (h, w)


def anchors(length: int) -> list[int]:
    return [a for a in range(0, length, STRIDE) if a < length - WINDOW] + [length - WINDOW]


def expected_windows(root, ratios, flips=1, limit=None) -> int:
    total = 0
    for size in image_sizes(root)[:limit]:
        for ratio in ratios:
            _, (h, w) = view_size(size, ratio)
            total += len(anchors(h)) * len(anchors(w)) * flips
    return total


@pytest.mark.parametrize("size", [(60, 90), (96, 64), (72, 72), (300, 451), (40, 400), (1080, 1920)])
def test_view_plans_follow_the_research_ratios(size):
    """Every view's uint8 size, enlarged size and windows, against the restatement above (no model run)."""
    from algm_export.evaluation.protocol import view_plan, views

    settings = WindowSettings(WINDOW, WINDOW, STRIDE)
    plans = [view_plan(size, settings, (WINDOW, WINDOW), view) for view in views(multiscale=True, flip=False)]
    assert [(p.flip, p.original) for p in plans] == [(f, size) for _ in RATIOS for f in (False, True)]
    for ratio, plan in zip([r for r in RATIOS for _ in (0, 1)], plans):
        scaled, enlarged = view_size(size, ratio)
        assert (plan.scaled, plan.resized) == (scaled, enlarged)
        assert (list(plan.rows), list(plan.cols)) == (anchors(enlarged[0]), anchors(enlarged[1]))


@pytest.mark.slow  # 12 views of 1 image through the model and the report: ~30 s on 2 busy cores
def test_multiscale_runs_the_twelve_research_views(checkpoint, predicted, tmp_path):
    out = tmp_path / "eval"
    code, _, err = run("eval", checkpoint, "--data", predicted, "--dataset", "folder", "-o", out, "--multiscale",
                       "--limit", "1")
    assert code == 0, err
    report = json.loads((out / "eval.json").read_text())
    assert report["protocol"]["views"] == [[r, f] for r in RATIOS for f in (False, True)]
    pytorch = report["backends"]["pytorch"]
    assert pytorch["images"] == 1 and pytorch["windows"] == expected_windows(predicted, RATIOS, 2, limit=1)
    assert pytorch["aAcc"] < 100.0  # the averaged views do not all agree with the single-scale labels


@torch.no_grad()
def restated_multiscale(model, photo: np.ndarray) -> np.ndarray:
    """The research --multiscale for one image, written out: cv2 resize, flip, normalize, enlarge, windows one
    at a time, logits averaged, resized to the image, flipped back, softmax, averaged over the 12 views."""
    mean = torch.tensor(model.config.normalization.mean).view(3, 1, 1)
    std = torch.tensor(model.config.normalization.std).view(3, 1, 1)
    total = 0
    for ratio in RATIOS:
        for flip in (False, True):
            (h, w), enlarged = view_size(photo.shape[:2], ratio)
            image = cv2.resize(photo, (w, h), interpolation=cv2.INTER_LINEAR)
            image = np.ascontiguousarray(image[:, ::-1] if flip else image)
            x = ((torch.from_numpy(image).permute(2, 0, 1).float() / 255 - mean) / std)[None]
            x = F.interpolate(x, enlarged, mode="bilinear", align_corners=False) if enlarged != (h, w) else x
            logits = torch.zeros(model.config.n_cls, *enlarged)
            count = torch.zeros(1, *enlarged)
            for row in anchors(enlarged[0]):
                for col in anchors(enlarged[1]):
                    window = model(x[..., row:row + WINDOW, col:col + WINDOW])[0]
                    logits[:, row:row + WINDOW, col:col + WINDOW] += window
                    count[:, row:row + WINDOW, col:col + WINDOW] += 1
            full = F.interpolate((logits / count)[None], photo.shape[:2], mode="bilinear", align_corners=False)[0]
            total = total + (full.flip(-1) if flip else full).softmax(dim=0)
    return (total / 12).argmax(dim=0).numpy()


@pytest.mark.slow  # 30 windows through predict and again through the restatement
def test_predict_multiscale_equals_a_direct_restatement(checkpoint, predicted, tmp_path):
    image = predicted / "images" / "chelsea.png"
    code, out, err = run("predict", checkpoint, image, "-o", tmp_path / "labels", "--multiscale", "--batch", "1")
    assert code == 0, err
    assert "12 test-time views" in out
    labels = np.asarray(Image.open(tmp_path / "labels" / "chelsea.png"))
    expected = restated_multiscale(load_segmenter(checkpoint), np.asarray(Image.open(image).convert("RGB")))
    # Same windows, one at a time on both sides, but the summation order of overlapping windows and of the
    # views differs in float32: a near-tied pixel may flip, hence agreement rather than equality.
    assert (labels == expected).mean() >= 0.999
    single = np.asarray(Image.open(predicted / "annotations" / "chelsea.png"))
    assert (labels != single).any()  # multi-scale is not the single-scale answer


def test_reference_pytorch_scores_an_unlabelled_folder(checkpoint, graphs, predicted, tmp_path):
    out = tmp_path / "eval"
    code, _, err = run("eval", checkpoint, graphs / "model.onnx", "--data", predicted / "images", "--dataset", "folder",
                       "--reference", "pytorch", "-o", out)
    assert code == 0, err
    backends = json.loads((out / "eval.json").read_text())["backends"]
    assert backends["pytorch"]["mIoU"] == 100.0  # against its own labels
    assert backends["onnxruntime_fp32"]["mIoU"] >= 99.9  # the parity tolerance again (see above)
    assert not math.isnan(backends["pytorch_dense"]["mIoU"]) and backends["pytorch_dense"]["mIoU"] < 100.0


def test_ade20k_layout_and_the_flip_mode(checkpoint, photos, tmp_path):
    tiny_datasets.ade20k(tmp_path / "ade", photos)
    code, printed, err = run("eval", checkpoint, "--data", tmp_path / "ade", "--dataset", "ade20k", "--flip",
                             "--limit", "1", "-o", tmp_path / "out")
    assert code == 0, err
    report = json.loads((tmp_path / "out" / "eval.json").read_text())
    assert report["protocol"]["views"] == [[1.0, False], [1.0, True]] and report["images"] == 1
    per_class = report["backends"]["pytorch"]["per_class"]
    assert len(per_class) == 150 and "wall" in per_class


def test_errors_are_one_line_and_write_nothing(checkpoint, photos, predicted, tmp_path):
    out = tmp_path / "out"
    code, _, err = run("eval", checkpoint, "--data", tmp_path / "nothing", "--dataset", "ade20k", "-o", out)
    assert code == 2 and err.count("\n") == 1 and "no such folder" in err
    code, _, err = run("eval", checkpoint, "--data", predicted, "--dataset", "coco", "-o", out)
    assert code == 2 and "invalid choice" in err
    tiny_datasets.cityscapes(tmp_path / "city", photos)
    code, _, err = run("eval", checkpoint, "--data", tmp_path / "city", "--dataset", "cityscapes", "-o", out)
    assert code == 2 and "150 classes, the dataset 19" in err
    bad = tmp_path / "bad"
    tiny_datasets.folder(bad, photos)
    Image.fromarray(np.zeros((5, 7), np.uint8)).save(bad / "annotations" / "rocket.png")
    code, _, err = run("eval", checkpoint, "--data", bad, "--dataset", "folder", "-o", out)
    assert code == 2 and err.count("\n") == 1 and "rocket.png: annotation is 7x5" in err
    assert not (out / "eval.json").exists()
    code, _, err = run("eval", checkpoint, "--data", bad, "--dataset", "folder", "--limit", "0", "-o", out)
    assert code == 2 and "--limit" in err


def test_predict_resize_pil_is_honoured(checkpoint, photos, tmp_path):
    """--resize pil gives PIL's (antialiased) resize: predict's labels equal the sliding window run with PIL's
    resize (same backend, batch 1 both sides), and on a 400x600 photo shrunk to 128 short side they differ from
    the default OpenCV resize's."""
    from algm_export.runtime.loading import open_backend
    from algm_export.runtime.sliding import SlidingWindow

    Image.fromarray(photos["coffee"]).save(tmp_path / "coffee.png")
    code, _, err = run("predict", checkpoint, tmp_path / "coffee.png", "-o", tmp_path / "pil", "--batch", "1",
                       "--resize", "pil")
    assert code == 0, err
    written = np.asarray(Image.open(tmp_path / "pil" / "coffee.png"))
    backend = open_backend(checkpoint)
    assert np.array_equal(written, next(SlidingWindow(backend, batch=1, resize="pil").segment([photos["coffee"]])))
    assert (written != next(SlidingWindow(backend, batch=1).segment([photos["coffee"]]))).any()
