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
    assert written == ["algm-export.json", "astronaut_rgba.png", "chelsea.png", "coffee16.png", "coffee_gray.png",
                       "rocket.png"]
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
        "algm-export.json", "clip_000000.png", "clip_000002.png", "clip_000004.png"]
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
    assert code == 2 and "no readable images" in err and not (tmp_path / "b").exists(), "no empty folder left"
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
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["algm-export.json", "rocket.png"]
    assert "segmented 1 images" in out and "skipped 1 unreadable" in out


def test_files_predict_did_not_write_are_never_overwritten(pipeline_run, inputs, tmp_path):
    """A same-named file of the user's stops the run before anything is written; files an earlier predict wrote
    (listed in the folder's marker) are replaced by the next run."""
    model, out = pipeline_run[2] / "model.onnx", tmp_path / "out"
    out.mkdir()
    (out / "rocket.png").write_bytes(b"the user's own rocket.png")
    code, _, err = predict(model, inputs / "rocket.png", inputs / "chelsea.jpg", "-o", out)
    assert code == 2 and "rocket.png exists and was not written by algm-export predict" in err, err
    assert sorted(p.name for p in out.iterdir()) == ["rocket.png"]
    assert (out / "rocket.png").read_bytes() == b"the user's own rocket.png"
    (out / "rocket.png").unlink()
    for _ in range(2):  # the second run replaces what the first wrote
        code, _, err = predict(model, inputs / "rocket.png", "-o", out)
        assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["algm-export.json", "rocket.png"]


def test_extreme_shapes_and_broken_links_are_skipped_with_a_note(pipeline_run, inputs, tmp_path):
    """A 2x2000 strip would need 2048 windows once its short side fits the window: skipped with a note, like a
    link to a missing file; the other images are segmented. With only such inputs: exit 2, no folder."""
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(np.full((2, 2000, 3), 90, np.uint8)).save(folder / "strip.png")
    (folder / "gone.png").symlink_to(tmp_path / "missing.png")
    (folder / "rocket.png").write_bytes((inputs / "rocket.png").read_bytes())
    code, out, err = predict(pipeline_run[2] / "model.onnx", folder, "-o", tmp_path / "out")
    assert code == 0, err
    assert "strip.png" in err and "above the 16 MP supported" in err
    assert "gone.png: a link to" in err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["algm-export.json", "rocket.png"]
    code, _, err = predict(pipeline_run[2] / "model.onnx", folder / "strip.png", "-o", tmp_path / "none")
    assert code == 2 and "no readable images" in err and not (tmp_path / "none").exists()


def test_batch_is_bounded(pipeline_run, inputs, tmp_path):
    code, _, err = predict(pipeline_run[2] / "model.onnx", inputs / "rocket.png", "--batch", "1000000",
                           "-o", tmp_path / "out")
    assert code == 2 and "--batch must be in 1..64" in err and not (tmp_path / "out").exists()


def test_truncated_video_is_noted(pipeline_run, tmp_path, photos):
    """Videos cut short: an AVI announcing 10 frames of which 2 decode keeps the 2 and notes the shortfall; a
    Matroska file that decodes no frame at all is noted too (neither is a silent success)."""
    av = pytest.importorskip("av")
    cut = {}
    for suffix, keep in (("avi", 0.9), ("mkv", 0.6)):  # fractions measured to give 2 and 0 decodable frames
        video = tmp_path / f"clip.{suffix}"
        with av.open(str(video), "w") as container:
            stream = container.add_stream("mpeg4", rate=5)
            stream.width, stream.height, stream.pix_fmt = 128, 96, "yuv420p"
            for shift in range(10):
                frame = np.ascontiguousarray(np.roll(photos["astronaut"][:96, :128], 8 * shift, axis=1))
                container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
            container.mux(stream.encode())
        data = video.read_bytes()
        cut[suffix] = tmp_path / f"cut_{suffix}.{suffix}"
        cut[suffix].write_bytes(data[: int(len(data) * keep)])
    code, out, err = predict(pipeline_run[2] / "model.onnx", cut["avi"], cut["mkv"], "-o", tmp_path / "out")
    assert code == 0, err
    assert "skipped 8 of the 10 frames" in err and "cut_avi.avi announces (truncated? kept the 2 decoded)" in err, err
    assert "cut_mkv.mkv: no frame could be decoded" in err, err
    assert "segmented 2 images (2 video frames)" in out, out
