"""Sliding-window inference against the research procedure run window by window in PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
from reference_sliding import research_sliding_labels

from algm_export.config import WindowSettings
from algm_export.errors import AlgmExportError
from algm_export.preprocess import labels_at, resize_rgb
from algm_export.runtime.sliding import SlidingWindow, WindowPlan, axis_anchors, resize_argmax
from algm_export.runtime.torch_backend import TorchBackend

SETTINGS = WindowSettings(512, 512, 512)


def test_anchors_end_flush_with_the_border():
    assert axis_anchors(1200, 512, 512) == [0, 512, 688]
    assert axis_anchors(512, 512, 512) == [0]
    assert axis_anchors(910, 512, 341) == [0, 341, 398]
    plan = WindowPlan.of((2160, 3840), SETTINGS, (512, 512))
    assert plan.resized == (512, 910) and plan.cols == (0, 398) and not plan.direct
    assert WindowPlan.of((100, 150), SETTINGS, (512, 512)).resized == (512, 768)  # smaller than a window
    assert WindowPlan.of((512, 512), SETTINGS, (512, 512)).direct


def wide(photos, size):
    """A real-content image of ``size``: two photos side by side, resized."""
    return resize_rgb(np.concatenate([resize_rgb(photos["astronaut"], (512, 512)),
                                      resize_rgb(photos["coffee"], (512, 512))], axis=1), size)


@pytest.mark.parametrize("size", [(512, 1200), (900, 600), (100, 150),
                                  pytest.param((2160, 3840), marks=pytest.mark.slow)],
                         ids=["512x1200-overlapping", "portrait", "tiny", "4K"])
def test_matches_the_research_procedure(tiny_model, photos, size):
    image = wide(photos, size)
    # 512x1200 at stride 384: windows at columns 0, 384 and 688, so columns 384-511 and 688-895 lie in two
    # windows (their logits are averaged); the other shapes fit one window per axis position.
    stride = 384 if size == (512, 1200) else 512
    backend = TorchBackend(tiny_model, (512, 512))
    got = next(SlidingWindow(backend, WindowSettings(512, 512, stride), batch=1).segment([image]))
    expected = research_sliding_labels(tiny_model, image, 512, 512, stride)
    assert got.shape == size and got.dtype == np.int32
    # Not bit-exact: the reference upsamples every class plane with torch, we upsample candidate classes per
    # cell in numpy (runtime/sliding.py); the two round differently, so labels may differ where two classes'
    # upsampled logits lie within rounding of each other (the untrained head has such pixels). 0.999 allows
    # those near-ties, while a wrong window placement or averaging changes several percent (next tests).
    assert (got == expected).mean() >= 0.999
    assert len(np.unique(expected)) > 3


def test_4k_frame(tiny_model, photos):
    """A 3840x2160 frame: two windows of the frame resized to 512x910, labels at 3840x2160, the same as the
    labels of that resized frame scaled up (they differ only where the final 4K resize of the averaged logits
    and nearest-neighbour scaling of labels disagree, at class borders). The comparison with the research
    procedure at 4K is in the slow run: its reference needs 150 full-size logit planes."""
    image = wide(photos, (2160, 3840))
    result = next(SlidingWindow(TorchBackend(tiny_model, (512, 512)), SETTINGS, batch=2).run([image]))
    assert result.labels.shape == (2160, 3840) and result.plan.anchors == [(0, 0), (0, 398)]
    resized = resize_rgb(image, result.plan.resized)
    small = next(SlidingWindow(TorchBackend(tiny_model, (512, 512)), SETTINGS, batch=2).segment([resized]))
    assert small.shape == (512, 910) and (labels_at(small, (2160, 3840)) == result.labels).mean() >= 0.97


def test_resize_argmax_equals_the_dense_resize():
    import torch
    import torch.nn.functional as F

    values = np.random.default_rng(0).normal(size=(20, 30, 7)).astype(np.float32)
    for size in [(57, 91), (9, 13), (20, 30)]:
        dense = F.interpolate(torch.from_numpy(values).permute(2, 0, 1)[None], size, mode="bilinear")[0].argmax(0)
        assert (resize_argmax(values, size) == dense.numpy()).mean() >= 0.999


def test_overlap_averaging_is_what_changes_the_result(tiny_model, photos):
    """A failing case for the criterion: keeping only the last window's logits where windows overlap."""
    image = wide(photos, (512, 1200))
    backend = TorchBackend(tiny_model, (512, 512))
    expected = research_sliding_labels(tiny_model, image, 512, 512, 384)
    plan = WindowPlan.of(image.shape[:2], WindowSettings(512, 512, 384), (512, 512))
    crops = plan.crops(image, tiny_model.config.normalization)
    labels = backend.run(crops, ("labels",)).outputs["labels"]
    last_wins = np.zeros(image.shape[:2], np.int32)
    for window, (row, col) in zip(labels, plan.anchors):
        last_wins[row : row + 512, col : col + 512] = window
    assert (last_wins == expected).mean() < 0.999


def test_batched_windows_stream_in_order(tiny_model, photos):
    backend = TorchBackend(tiny_model, (512, 512))
    images = [wide(photos, (512, 700)), photos["chelsea"], resize_rgb(photos["rocket"], (512, 512))]
    results = list(SlidingWindow(backend, SETTINGS, batch=3).run(iter(images)))
    assert [r.labels.shape for r in results] == [i.shape[:2] for i in images]
    assert [len(r.plan.anchors) for r in results] == [2, 2, 1]
    assert results[0].token_maps.shape == (2, 2, 1024) and len(results[0].token_counts) == 2


def test_stride_beyond_the_window_is_refused():
    """Pixels between two windows would get no prediction at all."""
    assert WindowSettings(512, 512, 512).window_stride == 512
    with pytest.raises(AlgmExportError, match=r"window_stride must be at most window_size \(512\), got 513"):
        WindowSettings(512, 512, 513)


def test_window_size_must_match_the_model(tiny_model):
    with pytest.raises(AlgmExportError, match="window_size 640 differs from the model's input size 512x512"):
        SlidingWindow(TorchBackend(tiny_model, (512, 512)), WindowSettings(640, 640, 512))


def test_stream_is_lazy_and_ordered(tiny_model, photos):
    from algm_export.runtime import segment_stream

    pulled = []

    def frames():
        for index in range(4):
            pulled.append(index)
            yield resize_rgb(photos["rocket"], (512, 512 + 16 * index))

    stream = segment_stream(TorchBackend(tiny_model, (512, 512)), frames(), batch=2)
    first = next(stream)
    assert first.shape == (512, 512) and pulled == [0, 1]  # the first batch held two frames' windows
    assert [labels.shape[1] for labels in stream] == [528, 544, 560]


def test_window_settings_come_from_inference_kwargs(tmp_path, tiny_model):
    import dataclasses

    import yaml

    from algm_export import load_segmenter
    from algm_export.checkpoints.research import write_research_checkpoint

    config = dataclasses.replace(tiny_model.config, inference=WindowSettings(512, 512, 384))
    checkpoint = write_research_checkpoint(tmp_path / "ckpt", config, tiny_model.algm, tiny_model.state_dict())
    assert load_segmenter(checkpoint).config.windows() == WindowSettings(512, 512, 384)
    variant = yaml.safe_load((tmp_path / "ckpt" / "variant.yml").read_text())
    variant["inference_kwargs"] = {"im_size": 512, "window_size": 512, "window_stride": 0}
    (tmp_path / "ckpt" / "variant.yml").write_text(yaml.safe_dump(variant))
    with pytest.raises(AlgmExportError, match="window_stride must be a positive integer"):
        load_segmenter(checkpoint)
