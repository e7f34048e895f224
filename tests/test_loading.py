"""load_segmenter / save_bundle: research checkpoints, bundles, overrides and every kind of bad file."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from algm_export import ALGMConfig, AlgmExportError, load_segmenter, save_bundle
from algm_export.datasets import ADE20K_CLASSES

RESEARCH_KEYS = [
    "encoder.patch_embed.proj.weight", "encoder.patch_embed.proj.bias", "encoder.cls_token", "encoder.pos_embed",
    "encoder.blocks.0.norm1.weight", "encoder.blocks.0.attn.qkv.weight", "encoder.blocks.0.attn.proj.bias",
    "encoder.blocks.11.norm2.bias", "encoder.blocks.11.mlp.fc1.weight", "encoder.blocks.11.mlp.fc2.bias",
    "encoder.norm.weight", "encoder.head.weight", "decoder.cls_emb", "decoder.proj_dec.weight",
    "decoder.proj_patch", "decoder.proj_classes", "decoder.blocks.1.attn.qkv.weight",
    "decoder.decoder_norm.weight", "decoder.mask_norm.bias",
]


def copy_research(source: Path, target: Path, name: str = "checkpoint.pth") -> Path:
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy(source, target / name)
    shutil.copy(source.parent / "variant.yml", target / "variant.yml")
    return target / name


def edit_variant(checkpoint: Path, edit) -> None:
    path = checkpoint.parent / "variant.yml"
    variant = yaml.safe_load(path.read_text())
    edit(variant)
    path.write_text(yaml.safe_dump(variant))


def logits(model, images):
    with torch.no_grad():
        return model(images)


def test_research_checkpoint_loads_exactly(research_checkpoint, tiny_model, photo_batch):
    state = torch.load(research_checkpoint, weights_only=True)["model"]
    assert set(RESEARCH_KEYS) <= set(state)
    model = load_segmenter(research_checkpoint)
    assert not model.training
    assert model.algm == ALGMConfig(layers=(1, 5), window=(2, 2), threshold=0.88)
    assert model.mean == (0.5, 0.5, 0.5) and model.std == (0.5, 0.5, 0.5)
    assert model.config.class_names == ADE20K_CLASSES
    assert torch.equal(logits(model, photo_batch[:1]), logits(tiny_model, photo_batch[:1]))


def test_any_file_name_and_extra_entries(research_checkpoint, tmp_path):
    data = torch.load(research_checkpoint, weights_only=True)
    data.update(optimizer={"state": {}, "param_groups": [{"lr": 0.001}]}, epoch=63, lr_scheduler={"last_epoch": 3})
    (tmp_path / "ckpt").mkdir()
    torch.save(data, tmp_path / "ckpt" / "model.pt")
    shutil.copy(research_checkpoint.parent / "variant.yml", tmp_path / "ckpt" / "variant.yml")
    assert load_segmenter(tmp_path / "ckpt" / "model.pt").algm is not None


def test_algm_choice(research_checkpoint, photo_batch):
    dense = load_segmenter(research_checkpoint, algm=None)
    assert dense.algm is None
    logits(dense, photo_batch[:1])
    assert dense.token_counts is None
    custom = load_segmenter(research_checkpoint, algm=ALGMConfig(layers=(2, 6, 9), threshold=0.8))
    logits(custom, photo_batch[:1])
    assert custom.token_counts.shape == (1, 3)


def test_dense_research_checkpoint_has_no_algm(research_checkpoint, tmp_path):
    checkpoint = copy_research(research_checkpoint, tmp_path / "dense")
    edit_variant(checkpoint, lambda v: v["dataset_kwargs"].update(patch_type="pure", threshold=None))
    assert load_segmenter(checkpoint).algm is None


def test_bundle_round_trip(research_checkpoint, tmp_path, photo_batch):
    model = load_segmenter(research_checkpoint, algm=ALGMConfig(threshold=0.9))
    path = save_bundle(model, tmp_path / "model.pt")
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]
    data = torch.load(path, weights_only=True)
    assert data["format"] == "algm-export-bundle" and data["algm"]["threshold"] == 0.9
    loaded = load_segmenter(path)
    assert loaded.algm == model.algm and loaded.config == model.config
    assert loaded.config.normalization.mean == (0.5, 0.5, 0.5)
    assert torch.equal(logits(loaded, photo_batch[:1]), logits(model, photo_batch[:1]))


def test_untrusted_pickle_refused_unless_trusted(research_checkpoint, tmp_path):
    data = torch.load(research_checkpoint, weights_only=True)
    data["args"] = argparse.Namespace(lr=0.001)
    checkpoint = copy_research(research_checkpoint, tmp_path / "pickled")
    torch.save(data, checkpoint)
    with pytest.raises(AlgmExportError, match=r"needs code to unpickle \(argparse.Namespace\).*--trust-checkpoint"):
        load_segmenter(checkpoint)
    assert load_segmenter(checkpoint, trust_checkpoint=True).algm is not None


def _drop_key(checkpoint):
    data = torch.load(checkpoint, weights_only=True)
    del data["model"]["decoder.proj_patch"]
    data["model"]["decoder.extra"] = torch.zeros(1)
    torch.save(data, checkpoint)


BAD_FILES = {
    "missing file": (lambda c: c.unlink(), "no such file"),
    "missing variant": (lambda c: (c.parent / "variant.yml").unlink(), "variant.yml: missing"),
    "wrong keys": (_drop_key, "missing keys: decoder.proj_patch; unexpected keys: decoder.extra"),
    "wrong shapes": (lambda c: edit_variant(c, lambda v: v["net_kwargs"].update(n_cls=21)),
                     r"wrong shapes: decoder.cls_emb \[1, 150, 192\] != \[1, 21, 192\]"),
    "truncated": (lambda c: c.write_bytes(c.read_bytes()[:5000]), "not a readable PyTorch checkpoint"),
    "not a checkpoint": (lambda c: c.write_text("just some text\n"), "not a readable PyTorch checkpoint"),
    "not a dict": (lambda c: torch.save([1, 2, 3], c), "neither a research checkpoint"),
    "bad yaml": (lambda c: (c.parent / "variant.yml").write_text("net_kwargs: [unclosed"), "not valid YAML"),
    "missing yaml key": (lambda c: edit_variant(c, lambda v: v["net_kwargs"].pop("d_model")),
                         "missing net_kwargs.d_model"),
    "threshold out of range": (lambda c: edit_variant(c, lambda v: v["dataset_kwargs"].update(threshold=1.7)),
                               r"threshold must lie in \(0, 1.5\]"),
    "layers out of range": (lambda c: edit_variant(c, lambda v: v["dataset_kwargs"].update(selected_layers=[1, 13])),
                            r"out of range: the encoder has blocks 1..12"),
    "window not tiling": (lambda c: edit_variant(c, lambda v: v["dataset_kwargs"].update(merging_window_size=[3, 3])),
                          "does not tile the 32x32 patch grid"),
}


@pytest.mark.parametrize("case", BAD_FILES, ids=list(BAD_FILES))
def test_bad_checkpoints_give_one_line_errors(research_checkpoint, tmp_path, case):
    damage, message = BAD_FILES[case]
    checkpoint = copy_research(research_checkpoint, tmp_path / "bad")
    damage(checkpoint)
    with pytest.raises(AlgmExportError, match=message) as error:
        load_segmenter(checkpoint)
    assert "\n" not in str(error.value)
    assert str(tmp_path / "bad") in str(error.value)


def test_bad_override(research_checkpoint):
    with pytest.raises(AlgmExportError, match=r"ALGM override: ALGM threshold must lie in \(0, 1.5\]"):
        load_segmenter(research_checkpoint, algm=ALGMConfig(threshold=0.0))
