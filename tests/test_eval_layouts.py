"""Dataset layout readers of ``algm-export eval``: ADE20K, Cityscapes, Pascal-Context, plain folders; mismatched,
missing and corrupt files."""

from __future__ import annotations

import numpy as np
import pytest
import tiny_datasets
from PIL import Image

from algm_export.errors import AlgmExportError
from algm_export.evaluation.layouts import CITYSCAPES_TRAIN_IDS, open_dataset


def read_all(dataset):
    return [(sample.name, image, label) for sample, image, label in dataset.read()]


def test_ade20k_reduces_the_zero_label(tmp_path, photos):
    raw = tiny_datasets.ade20k(tmp_path, photos)
    dataset = open_dataset(tmp_path, "ade20k")
    assert len(dataset.class_names) == 150
    read = read_all(dataset)
    assert [name for name, _, _ in read] == sorted(raw)
    for name, image, label in read:
        expected = raw[name].astype(np.int64) - 1
        expected[raw[name] == 0] = 255
        assert image.shape[:2] == label.shape and np.array_equal(label, expected)
    assert open_dataset(tmp_path / "ADEChallengeData2016", "ade20k").samples == dataset.samples  # either root


def test_cityscapes_train_ids_and_mapped_label_ids(tmp_path, photos):
    raw = tiny_datasets.cityscapes(tmp_path, photos)
    read = read_all(open_dataset(tmp_path, "cityscapes"))
    assert [name for name, _, _ in read] == [f"{stem}_leftImg8bit" for stem in raw]
    for (name, _, label), (stem, ids) in zip(read, raw.items()):
        if stem.startswith("aachen"):  # *_labelTrainIds.png: read as is
            assert np.array_equal(label, ids)
        else:  # *_labelIds.png: mapped to trainIds, the rest ignored
            expected = np.vectorize(lambda v: CITYSCAPES_TRAIN_IDS.get(int(v), 255))(ids)
            assert np.array_equal(label, expected) and (label == 255).any() and (label < 19).any()


def test_pascal_context_follows_the_split_list(tmp_path, photos):
    raw = tiny_datasets.pascal_context(tmp_path, photos)
    dataset = open_dataset(tmp_path, "pascal_context")
    assert len(dataset.class_names) == 59
    read = read_all(dataset)
    assert [name for name, _, _ in read] == list(raw)  # the listed three, not the fourth image
    name, _, label = read[0]
    assert np.array_equal(label == 255, raw[name] == 0) and label[label != 255].max() <= 58


def test_folder_labelled_and_unlabelled(tmp_path, photos):
    raw = tiny_datasets.folder(tmp_path, photos)
    read = read_all(open_dataset(tmp_path, "folder"))
    assert {name: label.tolist() for name, _, label in read} == {k: v.astype(np.int64).tolist() for k, v in raw.items()}
    unlabelled = read_all(open_dataset(tmp_path / "images", "folder", labelled=False))
    assert [label for _, _, label in unlabelled] == [None] * 4


def test_limit_stops_reading(tmp_path, photos):
    tiny_datasets.folder(tmp_path, photos)
    assert len(list(open_dataset(tmp_path, "folder").read(limit=2))) == 2


def test_missing_and_unknown_layouts_are_one_line_errors(tmp_path, photos):
    with pytest.raises(AlgmExportError, match="no such folder"):
        open_dataset(tmp_path / "absent", "ade20k")
    with pytest.raises(AlgmExportError, match=r"images/<split>"):
        open_dataset(tmp_path, "ade20k")
    with pytest.raises(AlgmExportError, match="unknown layout"):
        open_dataset(tmp_path, "coco")
    tiny_datasets.ade20k(tmp_path, photos)
    with pytest.raises(AlgmExportError, match="no such folder"):
        open_dataset(tmp_path, "ade20k", split="training")
    (tmp_path / "ADEChallengeData2016" / "annotations" / "validation" / "ADE_val_00000001.png").unlink()
    with pytest.raises(AlgmExportError, match="ADE_val_00000001.png: annotation missing"):
        open_dataset(tmp_path, "ade20k")


def test_size_mismatch_names_the_annotation(tmp_path, photos):
    tiny_datasets.folder(tmp_path, photos)
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(tmp_path / "annotations" / "coffee.png")
    message = r"annotations/coffee.png: annotation is 10x10, its image coffee.png is 120x80"
    with pytest.raises(AlgmExportError, match=message):  # from the headers, before anything is decoded
        open_dataset(tmp_path, "folder").check_sizes()
    open_dataset(tmp_path, "folder").check_sizes(limit=1)  # astronaut only: fine
    with pytest.raises(AlgmExportError, match=message):  # and while reading
        read_all(open_dataset(tmp_path, "folder"))


def test_corrupt_files_are_skipped_with_a_note_and_counted(tmp_path, photos, capsys):
    tiny_datasets.folder(tmp_path, photos)
    (tmp_path / "images" / "chelsea.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    (tmp_path / "annotations" / "rocket.png").write_bytes(b"not a png")
    Image.fromarray(np.zeros((72, 72, 3), np.uint8)).save(tmp_path / "annotations" / "astronaut.png")  # RGB: no classes
    dataset = open_dataset(tmp_path, "folder")
    assert [name for name, _, _ in read_all(dataset)] == ["coffee"]
    assert len(dataset.skipped) == 3
    err = capsys.readouterr().err
    assert "chelsea.png" in err and "rocket.png" in err and "astronaut.png" in err
