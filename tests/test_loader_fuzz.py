"""Loader fuzzing: >= 200 mutated checkpoints and >= 50 mutated variant.yml files are each refused with one
line (AlgmExportError; through the CLI: exit 2, one line on stderr, nothing written) or load as documented
valid (VALID_CHECKPOINT_KINDS, VALID_VARIANTS). In-process for speed (a micro model), plus
a few through the real CLI."""

from __future__ import annotations

import copy
import io
import os
import pickle
import random
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import torch
import yaml

from algm_export import AlgmExportError, load_segmenter
from algm_export.checkpoints.research import write_research_checkpoint
from algm_export.cli import main
from algm_export.config import ALGMConfig, SegmenterConfig
from algm_export.models.segmenter import Segmenter


@pytest.fixture(scope="module")
def micro(tmp_path_factory) -> Path:
    """A micro research checkpoint (d_model 16, 2 blocks, 64x64) that loads in milliseconds."""
    config = SegmenterConfig(backbone="vit_micro_patch16_64", d_model=16, n_heads=2, n_layers=2, d_ff=32, patch_size=16,
                             image_size=(64, 64), n_cls=3, decoder="linear", decoder_layers=0)
    torch.manual_seed(0)
    model = Segmenter(config, ALGMConfig(layers=(1, 2), window=(2, 2), threshold=0.9))
    return write_research_checkpoint(tmp_path_factory.mktemp("micro") / "m", config, model.algm, model.state_dict())


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def checkpoint_mutations(original: bytes, rng: random.Random) -> list[tuple[str, bytes]]:
    """(kind, bytes) of every mutated checkpoint."""
    mutations = [("empty", b"")]
    mutations += [("truncated", original[:rng.randrange(1, len(original))]) for _ in range(70)]
    for _ in range(70):
        data = bytearray(original)
        for _ in range(rng.choice((1, 1, 8))):
            position = rng.randrange(len(data))
            data[position] ^= 1 << rng.randrange(8)
        mutations.append(("bit flip", bytes(data)))
    mutations += [("random bytes", rng.randbytes(rng.choice((10, 1000, 100_000)))) for _ in range(25)]
    with zipfile.ZipFile(io.BytesIO(original)) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    for index in range(20):
        changed = dict(members)
        name = rng.choice(sorted(changed))
        if index % 3 == 0:
            del changed[name]
        elif index % 3 == 1:
            changed[name + ".renamed"] = changed.pop(name)
        else:
            changed[name] = rng.randbytes(len(changed[name]) or 1)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            for key, value in changed.items():
                archive.writestr(key, value)
        mutations.append(("zip member", buffer.getvalue()))
    payloads = [Evil(), {"model": Evil()}, [Evil()], {"model": {"x": Evil()}}, copy.copy]
    for payload in payloads:
        for protocol in (2, 4):
            mutations.append(("pickle with code", pickle.dumps(payload, protocol=protocol)))
        buffer = io.BytesIO()
        torch.save(payload, buffer)
        mutations.append(("pickle with code", buffer.getvalue()))
    for payload in ([1, 2], {"model": 3}, {"model": {"a": 1}}, {"epoch": 0}, "text", None,
                    {"model": {"encoder.cls_token": torch.zeros(1)}}):
        buffer = io.BytesIO()
        torch.save(payload, buffer)
        mutations.append(("wrong content", buffer.getvalue()))
    return mutations


# Documented valid: the checkpoint format has no checksum, so a bit flip or a replaced zip member inside
# tensor data that leaves finite weights, or a removed optional zip member, still loads.
VALID_CHECKPOINT_KINDS = {"bit flip", "zip member"}


def assert_one_line_refusal_or_valid(path: Path, kind: str, outcomes: dict) -> None:
    try:
        load_segmenter(path)
    except AlgmExportError as error:
        message = str(error)
        assert message and "\n" not in message, (kind, message)
        assert "needs code" not in message or kind == "pickle with code", (kind, message)
        outcomes["refused"] += 1
        return
    assert kind in VALID_CHECKPOINT_KINDS, f"{kind} mutation loaded"
    outcomes["valid"] += 1


def test_mutated_checkpoints_are_refused_in_one_line(micro, tmp_path):
    start = time.perf_counter()
    original = micro.read_bytes()
    mutations = checkpoint_mutations(original, random.Random(7))
    assert len(mutations) >= 200
    outcomes = {"refused": 0, "valid": 0}
    for index, (kind, data) in enumerate(mutations):
        path = tmp_path / "m" / f"case{index}.pth"
        path.parent.mkdir(exist_ok=True)
        (path.parent / "variant.yml").write_bytes((micro.parent / "variant.yml").read_bytes())
        path.write_bytes(data)
        assert_one_line_refusal_or_valid(path, kind, outcomes)
    assert outcomes["refused"] >= 130, outcomes  # all but some bit flips and zip-member edits
    assert time.perf_counter() - start < 60


def variant_mutations(variant: dict) -> list[tuple[str, object]]:
    """(kind, variant.yml content: a dict or raw text) of every mutated variant."""
    net_fields = ["d_model", "n_heads", "n_layers", "d_ff", "patch_size", "n_cls", "image_size"]
    bad_values = [0, -16, "abc", None, [], 1.5e9, 10**9, {"a": 1}]
    mutations = []
    for field in net_fields:
        for value in bad_values:
            changed = copy.deepcopy(variant)
            changed["net_kwargs"][field] = value
            mutations.append((f"net_kwargs.{field}={value!r}", changed))
    for value in ([64], [64, 64, 64], "64x64", [-64, 64], [64, 0], [100000, 100000], 100000):
        changed = copy.deepcopy(variant)
        changed["net_kwargs"]["image_size"] = value
        mutations.append((f"image_size={value!r}", changed))
    for section, key, value in (("net_kwargs", "decoder", {"name": "fancy"}), ("net_kwargs", "decoder", "linear"),
                                ("net_kwargs", "normalization", "imagenet"),
                                ("net_kwargs", "backbone", "vit_base_patch16_384"),
                                ("net_kwargs", "backbone", "vit_small_patch8_384"),
                                ("dataset_kwargs", "threshold", "x"),
                                ("dataset_kwargs", "threshold", 7), ("dataset_kwargs", "selected_layers", [9]),
                                ("dataset_kwargs", "merging_window_size", [3, 3]),
                                ("dataset_kwargs", "selected_layers", "1"), ("dataset_kwargs", "dataset", 12)):
        changed = copy.deepcopy(variant)
        changed[section][key] = value
        mutations.append((f"{section}.{key}={value!r}", changed))
    mutations += [("yaml", "net_kwargs: [unclosed"), ("yaml", "- a list"), ("yaml", "\x00\x01binary"),
                  ("yaml", ""), ("yaml", "net_kwargs: 3"), ("yaml", "dataset_kwargs: 5\nnet_kwargs: {}")]
    return mutations


VALID_VARIANTS = {"dataset_kwargs.dataset=12"}  # unknown dataset: class names class_0..; documented valid


def test_mutated_variant_files_are_refused_in_one_line(micro, tmp_path):
    start = time.perf_counter()
    variant = yaml.safe_load((micro.parent / "variant.yml").read_text())
    mutations = variant_mutations(variant)
    assert len(mutations) >= 50
    for index, (kind, content) in enumerate(mutations):
        folder = tmp_path / f"v{index}"
        folder.mkdir()
        (folder / "checkpoint.pth").write_bytes(micro.read_bytes())
        text = content if isinstance(content, str) else yaml.safe_dump(content)
        (folder / "variant.yml").write_text(text)
        try:
            load_segmenter(folder / "checkpoint.pth")
        except AlgmExportError as error:
            assert str(error) and "\n" not in str(error), (kind, str(error))
            assert kind not in VALID_VARIANTS, kind
            continue
        assert kind in VALID_VARIANTS, f"{kind} loaded"
    assert time.perf_counter() - start < 30


@pytest.mark.parametrize("kind, subprocess_run", [("truncated", True),
                                                  pytest.param("pickle with code", True, marks=pytest.mark.slow),
                                                  ("random bytes", False), ("patch_size 0", False)])
def test_mutations_through_the_cli_exit_2_in_one_line_and_write_nothing(micro, tmp_path, capsys, monkeypatch,
                                                                        kind, subprocess_run):
    folder = tmp_path / "in"
    folder.mkdir()
    data = micro.read_bytes()
    variant = yaml.safe_load((micro.parent / "variant.yml").read_text())
    if kind == "truncated":
        data = data[: len(data) // 2]
    elif kind == "random bytes":
        data = random.Random(1).randbytes(5000)
    elif kind == "pickle with code":
        data = pickle.dumps({"model": Evil()})
    else:
        variant["net_kwargs"]["patch_size"] = 0
    (folder / "checkpoint.pth").write_bytes(data)
    (folder / "variant.yml").write_text(yaml.safe_dump(variant))
    argv = [str(folder / "checkpoint.pth"), "-o", str(tmp_path / "out")]
    if subprocess_run:
        result = subprocess.run([sys.executable, "-m", "algm_export", *argv], capture_output=True, text=True,
                                cwd=tmp_path)
        code, err = result.returncode, result.stderr
    else:
        monkeypatch.chdir(tmp_path)
        code, err = main(argv), capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    if kind == "truncated":  # said in our words, not torch's internals (miniz's "central directory")
        assert "a zip archive cut short" in err and "miniz" not in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]
