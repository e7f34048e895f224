"""``algm-export predict``: files, folders, video, image modes, output PNGs and errors."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
from PIL import Image

from algm_export.cli import main
from algm_export.predict import write_label_png
from algm_export.runtime import segment
from algm_export.runtime.loading import open_backend


def predict(*args) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["predict", *map(str, args)])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, photos):
    """A folder with two photos of different sizes, a 16-bit grayscale, a grayscale, an RGBA image, a text
    file (not an image: ignored by suffix) and a damaged PNG (skipped with a note)."""
    folder = tmp_path_factory.mktemp("inputs")
    Image.fromarray(photos["chelsea"]).save(folder / "chelsea.jpg")
    Image.fromarray(photos["rocket"]).save(folder / "rocket.png")
    gray = photos["coffee"].mean(axis=2).astype(np.uint8)
    Image.fromarray(gray.astype(np.uint16) * 257).save(folder / "coffee16.png")  # the same picture in 16 bits
    Image.fromarray(gray).save(folder / "coffee_gray.png")
    rgba = np.concatenate([photos["astronaut"], np.full((*photos["astronaut"].shape[:2], 1), 200, np.uint8)], axis=2)
    Image.fromarray(rgba).save(folder / "astronaut_rgba.png")
    (folder / "notes.txt").write_text("not an image")
    (folder / "damaged.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    return folder


def test_folder_to_class_index_pngs(pipeline_run, inputs, tmp_path, photos):
    model = pipeline_run[2] / "model.onnx"
    code, out, err = predict(model, inputs, "-o", tmp_path / "labels", "--batch", "1")
    assert code == 0, err
    assert "segmented 5 images" in out and "skipped 1 unreadable" in out
    assert "skipped" in err and "damaged.png" in err
    written = sorted(p.name for p in (tmp_path / "labels").iterdir())
    assert written == ["astronaut_rgba.png", "chelsea.png", "coffee16.png", "coffee_gray.png", "rocket.png"]
    chelsea = Image.open(tmp_path / "labels" / "chelsea.png")
    assert chelsea.mode == "L" and chelsea.size == (451, 300)
    photo = np.asarray(Image.open(inputs / "chelsea.jpg").convert("RGB"))
    expected = segment(open_backend(model), [photo], batch=1)[0]  # batch 1: ALGM's batch rule out of play
    assert np.array_equal(np.asarray(chelsea), expected)
    sixteen = np.asarray(Image.open(tmp_path / "labels" / "coffee16.png"))
    eight = np.asarray(Image.open(tmp_path / "labels" / "coffee_gray.png"))
    assert sixteen.shape == photos["coffee"].shape[:2] and np.array_equal(sixteen, eight)
    assert np.asarray(Image.open(tmp_path / "labels" / "astronaut_rgba.png")).shape == (512, 512)


def test_checkpoint_files_with_overlay_and_merges(research_checkpoint, inputs, tmp_path):
    code, out, err = predict(research_checkpoint, inputs / "chelsea.jpg", inputs / "rocket.png", "-o", tmp_path,
                             "--overlay", "--show-merges")
    assert code == 0, err
    assert "with pytorch" in out
    overlay = Image.open(tmp_path / "chelsea_overlay.png")
    assert overlay.mode == "RGB" and overlay.size[1] >= 300 and overlay.size[0] > 451  # image + legend
    merges = Image.open(tmp_path / "rocket_merges.png")
    assert merges.size[0] > 2 * 512  # two windows for a 427x640 photo resized to 512x767


def test_video_every_nth_frame(pipeline_run, tmp_path, photos):
    av = pytest.importorskip("av")
    video = tmp_path / "clip.mp4"
    frame = np.ascontiguousarray(photos["astronaut"][:240, :320])
    with av.open(str(video), "w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        for shift in range(5):
            packet = stream.encode(av.VideoFrame.from_ndarray(np.roll(frame, 8 * shift, axis=1), format="rgb24"))
            container.mux(packet)
        container.mux(stream.encode())
    code, out, err = predict(pipeline_run[2] / "model.onnx", video, "--every", "2", "-o", tmp_path / "frames")
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "frames").iterdir()) == [
        "clip_000000.png", "clip_000002.png", "clip_000004.png"]
    assert "(3 video frames)" in out
    assert Image.open(tmp_path / "frames" / "clip_000002.png").size == (320, 240)


def test_sixteen_bit_label_pngs_above_256_classes(tmp_path):
    labels = np.array([[0, 299], [256, 7]], np.int32)
    write_label_png(tmp_path / "many.png", labels, 300)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "many.png")), labels)
    write_label_png(tmp_path / "few.png", labels % 150, 150)
    assert Image.open(tmp_path / "few.png").mode == "L"


def test_errors_are_one_line_and_write_nothing(pipeline_run, inputs, tmp_path):
    model = pipeline_run[2] / "model.onnx"
    code, _, err = predict(tmp_path / "missing.onnx", inputs, "-o", tmp_path / "a")
    assert code == 2 and "missing.onnx: no such file" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "a").exists()
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = predict(model, inputs, "-o", blocker)
    assert code == 2 and "exists and is not a folder" in err
    code, _, err = predict(inputs, inputs / "rocket.png", "-o", tmp_path / "a")
    assert code == 2 and "is a folder; MODEL is a file" in err and not (tmp_path / "a").exists()
    code, _, err = predict(model, inputs / "damaged.png", "-o", tmp_path / "b")
    assert code == 2 and "no readable images" in err
    code, _, err = predict(model, tmp_path / "nowhere.jpg", "-o", tmp_path / "c")
    assert code == 2 and "nowhere.jpg: no such file or folder" in err and not (tmp_path / "c").exists()
    for option, value, message in (("--window-stride", 0, "window_stride must be a positive integer, got 0"),
                                   ("--im-size", 0, "im_size must be a positive integer, got 0"),
                                   ("--window-stride", 100000, "window_stride must be at most window_size (512), "
                                                               "got 100000")):
        code, _, err = predict(model, inputs / "rocket.png", option, value, "-o", tmp_path / "d")
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
        assert not (tmp_path / "d").exists()


def test_unreadable_video_among_images_is_skipped(pipeline_run, inputs, tmp_path):
    pytest.importorskip("av")
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42 not really a video")
    code, out, err = predict(pipeline_run[2] / "model.onnx", broken, inputs / "rocket.png", "-o", tmp_path / "out")
    assert code == 0, err
    assert "skipped" in err and "broken.mp4: not a readable video" in err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["rocket.png"]
    assert "segmented 1 images" in out and "skipped 1 unreadable" in out
