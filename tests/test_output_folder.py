"""One consistent output folder: a run replaces the folder as a whole; errors, a full disk and SIGINT /
SIGTERM / SIGKILL leave the previous set and no partial files."""

from __future__ import annotations

import errno
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from algm_export.cli import main
from algm_export.files import MARKER, remove_stale_staging, replaced_folder, write_marker


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def contents(folder: Path) -> dict[str, bytes]:
    """The set's files without algm-export's marker."""
    return {name: data for name, data in snapshot(folder).items() if name != MARKER}


@pytest.fixture()
def previous(pipeline_run, tmp_path) -> Path:
    """A copy of the session's `--fp16` export (what a user re-exports over)."""
    folder = tmp_path / "out"
    shutil.copytree(pipeline_run[2], folder)
    return folder


@pytest.fixture(scope="module")
def one_image(tmp_path_factory, photos) -> Path:
    folder = tmp_path_factory.mktemp("one")
    Image.fromarray(photos["coffee"]).save(folder / "coffee.png")
    return folder


@pytest.mark.slow
def test_re_export_without_fp16_leaves_exactly_this_runs_files(previous, research_checkpoint, one_image, capsys):
    assert (previous / "model.fp16.onnx").is_file()
    code = main([str(research_checkpoint), "-o", str(previous), "--images", str(one_image), "--verify-batch", "1"])
    out = capsys.readouterr().out
    assert code == 0, out
    names = sorted(p.name for p in previous.iterdir())
    assert "model.fp16.onnx" not in names and "model.fp16.plan" not in names
    assert {"model.onnx", "model.trt.onnx", "report.json", "torch_outputs.json"} <= set(names)
    report = (previous / "report.json").read_text()
    assert '"tensorrt"' not in report and "onnxruntime_fp16" not in report and "coffee.png" in report
    assert not [p for p in previous.parent.iterdir() if p.name.startswith(".")], "staging left behind"


def run_until_staging(argv: list[str], parent: Path) -> subprocess.Popen:
    """Start the CLI and return once its staging folder exists (it is building the new set)."""
    process = subprocess.Popen([sys.executable, "-m", "algm_export", *argv], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not [p for p in parent.iterdir() if p.name.endswith(".staging")]:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.2)
    time.sleep(1.0)
    return process


@pytest.mark.parametrize("signum, code, line", [(signal.SIGINT, 130, "interrupted"),
                                                pytest.param(signal.SIGTERM, 143, "terminated",
                                                             marks=pytest.mark.slow)])
def test_interrupt_keeps_the_previous_set(previous, research_checkpoint, signum, code, line):
    before = snapshot(previous)
    process = run_until_staging([str(research_checkpoint), "-o", str(previous)], previous.parent)
    process.send_signal(signum)
    _, err = process.communicate(timeout=120)
    assert process.returncode == code and err == f"algm-export: {line}\n", err
    assert snapshot(previous) == before
    assert sorted(p.name for p in previous.parent.iterdir()) == ["out"], "staging or partial files left behind"


def test_sigkill_keeps_the_previous_set_and_the_next_run_cleans_up(previous, research_checkpoint):
    before = snapshot(previous)
    process = run_until_staging([str(research_checkpoint), "-o", str(previous)], previous.parent)
    process.kill()
    process.communicate(timeout=60)
    assert snapshot(previous) == before
    assert not [p for p in previous.iterdir() if p.name.startswith(".")], "hidden partial files in the folder"
    remove_stale_staging(previous)  # what the next run does first
    assert sorted(p.name for p in previous.parent.iterdir()) == ["out"]


def test_full_disk_is_one_line_and_keeps_the_previous_set(tmp_path):
    previous = tmp_path / "out"
    previous.mkdir()
    (previous / "report.json").write_text('{"old": 1}')
    (previous / "model.onnx").write_bytes(b"old graph")
    write_marker(previous)
    before = snapshot(previous)

    def fill(path: Path) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    with pytest.raises(Exception) as raised:
        with replaced_folder(previous, keep=None) as staging:
            (staging / "report.json").write_text("{}")
            fill(staging / "model.onnx")
    assert type(raised.value).__name__ == "AlgmExportError"
    assert "no space left on the device while writing model.onnx" in str(raised.value)
    assert snapshot(previous) == before
    assert sorted(p.name for p in previous.parent.iterdir()) == ["out"]


@pytest.mark.slow  # the unit test above covers the mechanism in the default run
def test_full_disk_through_the_cli(previous, research_checkpoint, monkeypatch, capsys):
    import algm_export.export.onnx_export as onnx_export

    def no_space(model, path):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(onnx_export, "save_model", no_space)
    before = snapshot(previous)
    code = main([str(research_checkpoint), "-o", str(previous)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "no space left on the device" in err, err
    assert snapshot(previous) == before
    assert sorted(p.name for p in previous.parent.iterdir()) == ["out"]


def test_a_folder_with_other_files_is_not_replaced(research_checkpoint, tmp_path, capsys):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    code = main([str(research_checkpoint), "-o", str(tmp_path / "mine"), "--dry-run"])
    err = capsys.readouterr().err
    assert code == 2 and "not an algm-export output folder" in err and err.count("\n") == 1
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "precious"


def test_file_names_alone_do_not_make_a_folder_ours(research_checkpoint, tmp_path, capsys):
    """A user's folder holding a report.json of its own (and an algm-export.json of another tool) is refused,
    by --dry-run too, and keeps every file."""
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "report.json").write_text('{"mine": true}')
    (mine / "precious.txt").write_text("precious")
    (mine / "astronaut.jpg").write_bytes(b"jpeg")
    before = snapshot(mine)
    for extra in ([], ["--dry-run"]):
        code = main([str(research_checkpoint), "-o", str(mine), *extra])
        err = capsys.readouterr().err
        assert code == 2 and "not an algm-export output folder" in err and err.count("\n") == 1, err
    (mine / MARKER).write_text('{"tool": "something-else", "files": ["precious.txt"]}')
    before = snapshot(mine)
    code = main([str(research_checkpoint), "-o", str(mine), "--dry-run"])
    assert code == 2 and "not an algm-export output folder" in capsys.readouterr().err
    assert snapshot(mine) == before


def test_a_file_added_to_our_folder_is_never_deleted(tmp_path):
    """The marker lists the set's files: a file the user put into an algm-export folder afterwards makes the
    next run refuse the folder instead of deleting it."""
    folder = tmp_path / "out"
    with replaced_folder(folder) as staging:
        (staging / "report.json").write_text("1")
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(Exception, match="holds notes.txt, which algm-export did not write") as raised:
        with replaced_folder(folder) as staging:
            (staging / "report.json").write_text("2")
    assert type(raised.value).__name__ == "AlgmExportError"
    assert contents(folder) == {"notes.txt": b"mine", "report.json": b"1"}


def test_replaced_folder_swaps_whole_sets(tmp_path):
    folder = tmp_path / "out"
    with replaced_folder(folder) as staging:
        (staging / "report.json").write_text("1")
        (staging / "a").write_text("a")
    assert '"files": [\n  "a",\n  "report.json"\n ]' in (folder / MARKER).read_text()
    with replaced_folder(folder, keep=["a"]) as staging:
        (staging / "report.json").write_text("2")
    assert contents(folder) == {"a": b"a", "report.json": b"2"}
    with pytest.raises(KeyboardInterrupt):
        with replaced_folder(folder) as staging:
            (staging / "report.json").write_text("3")
            raise KeyboardInterrupt
    assert contents(folder) == {"a": b"a", "report.json": b"2"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_runs_that_add_to_a_folder_never_adopt_or_overwrite_a_users_files(previous, research_checkpoint, tmp_path,
                                                                          capsys):
    """verify, build and bench keep every file of their folder, but: a user's file of a name they write (here
    report.json) or another command's marker stops them up front (one line, exit 2, nothing touched); a user's
    file they would overwrite anyway stops them before the swap; and the marker never lists a user's file, so the
    next export refuses the folder instead of deleting it."""
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "report.json").write_text('{"mine": true}')
    (mine / "model.onnx").write_bytes((previous / "model.onnx").read_bytes())
    predictions = tmp_path / "predictions"
    shutil.copytree(previous, predictions)
    write_marker(predictions, "predict", ["report.json"])
    for folder, message in ((mine, "holds report.json, which algm-export did not write; move it away or choose "
                                   "another folder (this run would overwrite it)"),
                            (predictions, "not empty and an algm-export predict folder")):
        before = snapshot(folder)
        for argv in (["verify", str(research_checkpoint), "-o", str(folder)],
                     ["build", str(research_checkpoint), "-o", str(folder)],
                     ["bench", str(research_checkpoint), "-o", str(folder)]):
            code = main(argv)
            err = capsys.readouterr().err
            assert code == 2 and message in err and err.count("\n") == 1, (argv, err)
            assert snapshot(folder) == before
    (previous / "notes.txt").write_text("mine")
    with replaced_folder(previous, keep=None) as staging:  # what verify/build/bench run in
        (staging / "report.json").write_text("new")
    assert snapshot(previous)["notes.txt"] == b"mine" and snapshot(previous)["report.json"] == b"new"
    assert "notes.txt" not in (previous / MARKER).read_text()
    before = snapshot(previous)
    with pytest.raises(Exception, match="would overwrite notes.txt, which algm-export did not write"):
        with replaced_folder(previous, keep=None) as staging:
            (staging / "notes.txt").write_text("overwritten")
    assert snapshot(previous) == before
    with pytest.raises(Exception, match="holds notes.txt, which algm-export did not write"):
        with replaced_folder(previous):  # the next export
            pass
    assert snapshot(previous) == before


def test_an_export_folder_is_not_a_predict_folder(previous, research_checkpoint, one_image, tmp_path, capsys):
    """predict -o into an export folder would take over its marker (the export's list lost); export -o into a
    predict folder would delete the predictions. Each is refused by name."""
    marker = (previous / MARKER).read_bytes()
    code = main(["predict", str(previous / "model.onnx"), str(one_image), "-o", str(previous)])
    err = capsys.readouterr().err
    assert code == 2 and "an algm-export export folder; write predictions to their own -o folder" in err, err
    assert (previous / MARKER).read_bytes() == marker and not (previous / "coffee.png").exists()
    predictions = tmp_path / "predictions"
    predictions.mkdir()
    write_marker(predictions, "predict", [])
    code = main([str(research_checkpoint), "-o", str(predictions), "--dry-run"])
    err = capsys.readouterr().err
    assert code == 2 and "not empty and an algm-export predict folder" in err, err


@pytest.mark.parametrize("output", [".", "..", "out/.."])
def test_the_current_folder_is_refused_up_front(research_checkpoint, tmp_path, monkeypatch, capsys, output):
    """-o . (or a folder holding it) cannot be swapped out under the shell: refused by --dry-run already."""
    work = tmp_path / "work"
    (work / "out").mkdir(parents=True)
    monkeypatch.chdir(work)
    for extra in (["--dry-run"], []):
        code = main([str(research_checkpoint), "-o", output, *extra])
        err = capsys.readouterr().err
        assert code == 2 and "is the current folder or holds it" in err and err.count("\n") == 1, err
    assert sorted(p.name for p in work.iterdir()) == ["out"]


def test_a_linked_output_folder_is_written_through_its_link(tmp_path):
    """-o LINK: the set lands in the link's target, the link stays a link, no staging is left beside either."""
    target, link = tmp_path / "disk" / "real", tmp_path / "out"
    target.parent.mkdir()
    link.symlink_to(target, target_is_directory=True)
    for run in ("1", "2"):
        with replaced_folder(link) as staging:
            (staging / "report.json").write_text(run)
        assert link.is_symlink() and contents(target) == {"report.json": run.encode()}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["disk", "out"]
    assert sorted(p.name for p in target.parent.iterdir()) == ["real"]
    (tmp_path / "loop").symlink_to(tmp_path / "loop")  # a link to itself: one line, nothing written
    with pytest.raises(Exception, match="a symbolic link that cannot be followed") as raised:
        with replaced_folder(tmp_path / "loop"):
            pass
    assert type(raised.value).__name__ == "AlgmExportError"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["disk", "loop", "out"]


def test_a_users_file_inside_one_of_our_folders_is_never_deleted(tmp_path):
    """The marker records what each of the set's folders holds: a file the user put into ``bench/`` stops the
    next export by name; a run that adds to the folder keeps it, does not record it, and may not overwrite it."""
    folder = tmp_path / "out"
    with replaced_folder(folder) as staging:
        (staging / "bench" / "dense").mkdir(parents=True)
        (staging / "bench" / "dense" / "model.onnx").write_text("graph")
    (folder / "bench" / "my_results.csv").write_text("mine")
    with pytest.raises(Exception, match="holds bench/my_results.csv, which algm-export did not write"):
        with replaced_folder(folder):
            pass
    with replaced_folder(folder, keep=None) as staging:  # verify: keeps it, does not adopt it
        (staging / "report.json").write_text("1")
    assert (folder / "bench" / "my_results.csv").read_text() == "mine"
    assert "my_results.csv" not in (folder / MARKER).read_text()
    with pytest.raises(Exception, match="would overwrite bench/my_results.csv"):
        with replaced_folder(folder, keep=None) as staging:  # a bench run rewriting bench/
            shutil.rmtree(staging / "bench")
            (staging / "bench").mkdir()
    assert (folder / "bench" / "my_results.csv").read_text() == "mine"


def test_carried_links_stay_links_and_special_files_are_refused(tmp_path):
    """Runs that add to a folder carry a user's symbolic links as links (a link to a large folder is not
    copied, a dangling or looping one is no error); a named pipe is refused in one line, nothing built."""
    import os

    folder = tmp_path / "out"
    with replaced_folder(folder) as staging:
        (staging / "report.json").write_text("1")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "big.bin").write_bytes(b"x" * 1000)
    (folder / "data").symlink_to(tmp_path / "data")
    (folder / "dangling").symlink_to(tmp_path / "nowhere")
    (folder / "sub").mkdir()
    (folder / "sub" / "self").symlink_to(".")
    with replaced_folder(folder, keep=None) as staging:
        (staging / "report.json").write_text("2")
    assert (folder / "data").is_symlink() and os.readlink(folder / "data") == str(tmp_path / "data")
    assert (folder / "dangling").is_symlink() and (folder / "sub" / "self").is_symlink()
    os.mkfifo(folder / "pipe")
    before = sorted(p.name for p in folder.iterdir())
    with pytest.raises(Exception, match="pipe: not a file, folder or link") as raised:
        with replaced_folder(folder, keep=None):
            pass
    assert type(raised.value).__name__ == "AlgmExportError"
    assert sorted(p.name for p in folder.iterdir()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "out"]
