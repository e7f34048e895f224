"""mmseg ``mean_iou`` (algm_export.evaluation.metrics) against an independent restatement and hand counts."""

from __future__ import annotations

import math

import numpy as np
import pytest

from algm_export.evaluation.layouts import cityscapes_train_ids, reduce_zero_label
from algm_export.evaluation.metrics import ConfusionMatrix

IGNORE = 255


def mmseg_mean_iou(predictions, labels, n_cls, reduce_zero=False):
    """mmseg 0.x ``mean_iou`` restated: per image histograms of intersection, prediction and label (values
    outside [0, n_cls) fall out of every histogram), summed over images."""
    total_i, total_u, total_p, total_l = (np.zeros(n_cls) for _ in range(4))
    for prediction, label in zip(predictions, labels):
        label = label.astype(np.int64).copy()
        if reduce_zero:
            zero = label == 0
            label = label - 1
            label[zero] = IGNORE
            label[label == IGNORE - 1] = IGNORE
        keep = label != IGNORE
        prediction, label = prediction[keep], label[keep]
        intersect = prediction[prediction == label]
        hist = lambda values: np.histogram(values, bins=n_cls, range=(0, n_cls))[0]  # noqa: E731
        area_i, area_p, area_l = hist(intersect), hist(prediction), hist(label)
        total_i += area_i
        total_p += area_p
        total_l += area_l
        total_u += area_p + area_l - area_i
    with np.errstate(divide="ignore", invalid="ignore"):
        return total_i.sum() / total_l.sum(), total_i / total_u, total_i / total_l


def scores_of(predictions, labels, n_cls, reduce_zero=False):
    confusion = ConfusionMatrix(n_cls)
    for prediction, label in zip(predictions, labels):
        confusion.add(prediction, reduce_zero_label(label) if reduce_zero else label)
    return confusion.scores()


@pytest.mark.parametrize("reduce_zero", [False, True])
def test_matches_the_mmseg_restatement_on_random_maps(reduce_zero):
    rng = np.random.default_rng(7)
    n_cls = 12
    predictions, labels = [], []
    for index in range(6):
        shape = tuple(rng.integers(5, 40, 2))
        prediction = rng.integers(0, n_cls - 3, shape)  # classes 9..11 never predicted
        label = rng.integers(0, n_cls - 2, shape)  # ... and 10, 11 never in the ground truth: 10, 11 absent
        label[rng.random(shape) < 0.2] = IGNORE
        if index == 2:
            label[0, :3] = 200  # neither a class nor ignored: counts in the prediction area only (mmseg)
        predictions.append(prediction)
        labels.append(label)
    scores = scores_of(predictions, labels, n_cls, reduce_zero)
    all_acc, iou, acc = mmseg_mean_iou(predictions, labels, n_cls, reduce_zero)
    np.testing.assert_allclose(scores.iou, iou, rtol=1e-12)  # same counts, same division: only rounding differs
    np.testing.assert_allclose(scores.accuracy, acc, rtol=1e-12)
    assert math.isclose(scores.all_accuracy, all_acc, rel_tol=1e-12)
    absent = 3 if reduce_zero else 2  # reduce_zero_label shifts the labels down: class 9 loses its pixels too
    assert np.isnan(scores.iou[-absent:]).all() and not np.isnan(scores.iou[:-absent]).any()
    assert math.isclose(scores.mean_iou, np.nanmean(iou), rel_tol=1e-12)
    assert math.isclose(scores.mean_accuracy, np.nanmean(acc), rel_tol=1e-12)


def test_hand_counted_case():
    """3 classes; class 2 absent from both (NaN, left out of the means); one ignored pixel."""
    label = np.array([[0, 0, 1], [1, 1, IGNORE]])
    prediction = np.array([[0, 1, 1], [1, 0, 2 - 2]])  # the ignored pixel's prediction does not count
    scores = scores_of([prediction], [label], 3)
    # class 0: I = 1 (pixel (0,0)), label 2, predicted 2 -> U = 3; class 1: I = 2, label 3, predicted 3 -> U = 4
    np.testing.assert_allclose(scores.iou[:2], [1 / 3, 1 / 2])
    np.testing.assert_allclose(scores.accuracy[:2], [1 / 2, 2 / 3])
    assert np.isnan(scores.iou[2]) and np.isnan(scores.accuracy[2])
    assert math.isclose(scores.mean_iou, 5 / 12) and math.isclose(scores.mean_accuracy, 7 / 12)
    assert math.isclose(scores.all_accuracy, 3 / 5)


def test_accumulates_over_the_dataset_not_per_image():
    """Two images: per-image IoUs would average to 0.5 for class 0; the dataset's I/U is 1/3."""
    first = (np.array([[0, 0]]), np.array([[0, 0]]))  # class 0: I 2, U 2
    second = (np.array([[1, 1, 1, 1]]), np.array([[0, 0, 0, 0]]))  # class 0: I 0, U 4
    scores = scores_of([first[0], second[0]], [first[1], second[1]], 2)
    assert math.isclose(scores.iou[0], 2 / 6)
    assert scores.iou[1] == 0.0  # predicted but never labelled: defined, zero


def test_predicted_only_class_counts_and_nothing_labelled_is_nan():
    scores = scores_of([np.array([[1, 1]])], [np.array([[IGNORE, IGNORE]])], 2)
    assert np.isnan(scores.iou).all() and math.isnan(scores.mean_iou) and math.isnan(scores.all_accuracy)


def test_bad_shapes_and_classes_are_refused():
    confusion = ConfusionMatrix(3)
    with pytest.raises(ValueError, match="shape"):
        confusion.add(np.zeros((2, 2), int), np.zeros((2, 3), int))
    with pytest.raises(ValueError, match="predicted classes"):
        confusion.add(np.full((2, 2), 3), np.zeros((2, 2), int))


def test_label_transforms():
    ade = np.array([[0, 1, 150, 255]])
    assert reduce_zero_label(ade).tolist() == [[IGNORE, 0, 149, IGNORE]]
    city = np.array([[0, 7, 8, 26, 33, 34, 255]])
    assert cityscapes_train_ids(city).tolist() == [[IGNORE, 0, 1, 13, 18, IGNORE, IGNORE]]
