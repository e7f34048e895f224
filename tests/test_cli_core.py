"""``algm-export MODEL``: summary, overrides, help and one-line errors."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from algm_export.cli import main


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_help_documents_every_pipeline_flag():
    result = subprocess.run([sys.executable, "-m", "algm_export", "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    for flag in ("--output", "--image-size", "--batch", "--verify-batch", "--images", "--fp16", "--int8",
                 "--calib-images", "--calib-count", "--int8-scope", "--layers", "--window", "--threshold", "--dense",
                 "--trust-checkpoint", "--verbose", "--dry-run", "algm-export verify", "algm-export bench"):
        assert flag in result.stdout, flag


@pytest.mark.parametrize("command, checks_parity", [("export", True), ("verify", True), ("build", True),
                                                    ("predict", False), ("bench", False)])
def test_each_help_ends_with_its_own_exit_codes_and_example(capsys, command, checks_parity):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    epilog = capsys.readouterr().out.split("exit codes:", 1)[1]
    assert ("a parity check failed" in epilog) == checks_parity
    examples = [line.strip() for line in epilog.splitlines() if line.strip().startswith("algm-export")]
    assert all(line.startswith(f"algm-export {command} ") for line in examples if command != "export"), examples


def test_console_script_prints_summary_and_token_counts(research_checkpoint):
    script = shutil.which("algm-export")
    assert script, "the algm-export console script is not installed"
    result = subprocess.run([script, str(research_checkpoint), "--dry-run"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "vit_tiny_patch16_384: 12 blocks, d_model 192" in result.stdout
    assert "150: wall, building, sky" in result.stdout
    assert "mean [0.5, 0.5, 0.5]" in result.stdout
    assert "CLAP in block 1 (window 2x2, threshold 0.88), GBM in block 5" in result.stdout
    assert "1025 -> 755 -> 543 on the sample photo 'astronaut'" in result.stdout
    assert "dry run: nothing written" in result.stdout


def test_overrides(capsys, research_checkpoint):
    code, out, _ = run_cli(capsys, research_checkpoint, "--layers", "1", "--threshold", "1.2", "--dry-run")
    assert code == 0 and "1025 -> 1025 on the sample photo" in out
    code, out, _ = run_cli(capsys, research_checkpoint, "--dense", "--dry-run")
    assert code == 0 and "none (dense model)" in out and "no merging" in out


@pytest.mark.parametrize("argv, message", [
    (["missing.pt"], "missing.pt: no such file"),
    (["{ckpt}", "--threshold", "2"], r"threshold must lie in (0, 1.5]"),
    (["{ckpt}", "--threshold", "0"], r"threshold must lie in (0, 1.5]"),
    (["{ckpt}", "--layers", "1,13"], "out of range: the encoder has blocks 1..12"),
    (["{ckpt}", "--layers", "5,1"], "strictly increasing"),
    (["{ckpt}", "--window", "3x3"], "does not tile the 32x32 patch grid"),
    (["{ckpt}", "--image-size", "500"], "not a multiple of the patch size 16"),
    (["{ckpt}", "--image-size", "528"], "does not tile the 33x33 patch grid"),
    (["{ckpt}", "--dense", "--threshold", "0.9"], "--dense cannot be combined"),
    (["{ckpt}", "--int8", "--calib-count", "0"], "--calib-count must be >= 1"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(capsys, research_checkpoint, tmp_path, monkeypatch,
                                                         argv, message):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, *[a.format(ckpt=research_checkpoint) for a in argv])
    assert code == 2
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_verbose_shows_traceback(capsys, tmp_path):
    code, _, err = run_cli(capsys, tmp_path / "missing.pt", "--verbose")
    assert code == 2 and "Traceback" in err and "no such file" in err


@pytest.mark.parametrize("argv, message", [
    (["x.pt", "--window", "2xa"], "argument --window: expected SIZE or HEIGHTxWIDTH, got '2xa'"),
    (["x.pt", "--nonsense"], "unrecognized arguments: --nonsense"),
    ([], "the following arguments are required: MODEL"),
    (["verify"], "algm-export verify: error: the following arguments are required: MODEL"),
    (["verify", "x.pt", "--bogus"], "algm-export verify: error: unrecognized arguments: --bogus (see algm-export "
                                    "verify --help)"),
    (["predict", "m.onnx", "a.png", "--bogus"], "algm-export predict: error: unrecognized arguments: --bogus"),
])
def test_argument_syntax_errors_are_one_line_exit_2(capsys, argv, message):
    code, out, err = run_cli(capsys, *argv)
    assert code == 2 and out == ""
    assert message in err and err.endswith("--help)\n") and err.count("\n") == 1


def test_subcommand_names_are_commands_unless_a_checkpoint_has_that_name(capsys, research_checkpoint, tmp_path,
                                                                        monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("checkpoint.pth", "variant.yml"):
        source = research_checkpoint.parent / name
        (tmp_path / name.replace("checkpoint.pth", "verify")).write_bytes(source.read_bytes())
    code, out, _ = run_cli(capsys, "verify", "--dry-run")
    assert code == 0 and "vit_tiny_patch16_384" in out and "dry run: nothing written" in out
    code, out, _ = run_cli(capsys, "export", "verify", "--dry-run", "--dense")
    assert code == 0 and "none (dense model)" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["variant.yml", "verify"]


def test_interrupt_during_start_up_is_one_line_exit_130(tmp_path):
    """SIGINT while the heavy modules import (torch takes seconds): one line, exit 130, no traceback."""
    import signal
    import time

    process = subprocess.Popen([sys.executable, "-m", "algm_export", str(tmp_path / "x.pt")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    maps = Path(f"/proc/{process.pid}/maps")
    deadline = time.monotonic() + 60
    while process.poll() is None and time.monotonic() < deadline:  # until torch's library is being loaded
        try:
            if "libtorch" in maps.read_text():
                break
        except OSError:
            break
        time.sleep(0.01)
    assert process.poll() is None, "the CLI ended before torch was imported"
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert err == "algm-export: interrupted\n"


def test_run_time_errors_carry_the_subcommand_like_usage_errors(capsys, tmp_path):
    code = main(["predict", str(tmp_path / "missing.onnx"), str(tmp_path / "missing.png")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("algm-export predict: error: ") and err.count("\n") == 1, err
    code = main(["verify", str(tmp_path / "missing.pt"), "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("algm-export verify: error: ") and err.count("\n") == 1, err
