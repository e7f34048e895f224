"""Attention on each image's real tokens only (issue 22): the ``algm::packed_attention`` op, its two ONNX forms
(a Loop over the images in the portable graph, padded and key-masked in the TensorRT graph), and a mixed batch
whose images each get their batch-1 result through them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F
from sample_models import make_sample_segmenter  # samples/ is on the path (conftest.py)

from algm_export.artifacts import LOGITS, TOKEN_COUNTS
from algm_export.export.attention import ATTENTION_DOMAIN, expand_attention
from algm_export.export.onnx_export import export_graphs
from algm_export.models.attention import packed_attention
from algm_export.photos import SAMPLE_PHOTOS
from algm_export.preprocess import make_batch
from algm_export.reference.research_algm import reference_forward

# Float32 attention of the same rows: only the summation order differs (padding keys add exact zeros after the
# softmax, but the SIMD blocking of a longer row changes), a few ulps of values of order 1.
OP_TOLERANCE = 1e-5
# Logits of whole graphs against PyTorch / against another batch: the same as tests/test_batch_rule.py's
# LOGIT_TOLERANCE, a float32 forward through 6 blocks whose kernels (ORT MLAS vs PyTorch, batch sizes) sum in
# different orders; the logits are of order 1-10.
LOGIT_TOLERANCE = 1e-4


def padded_reference(qkv: torch.Tensor, lengths: list[int], heads: int) -> torch.Tensor:
    """The layout before issue 22: packed rows spread over [B, max, 3C], SDPA with padding keys masked, the real
    rows packed again."""
    channels = qkv.shape[-1] // 3
    longest, rows, start = max(lengths), [], 0
    padded = torch.zeros(len(lengths), longest, 3 * channels)
    for b, length in enumerate(lengths):
        padded[b, :length] = qkv[0, start:start + length]
        start += length
    q, k, v = padded.reshape(len(lengths), longest, 3, heads, -1).permute(2, 0, 3, 1, 4).unbind(0)
    valid = torch.arange(longest)[None] < torch.tensor(lengths)[:, None]
    mask = torch.where(valid, 0.0, -torch.inf)[:, None, None, :]
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask).transpose(1, 2).reshape(len(lengths), longest, -1)
    for b, length in enumerate(lengths):
        rows.append(out[b, :length])
    return torch.cat(rows)[None]


def test_packed_attention_equals_padded_masked_attention():
    torch.manual_seed(0)
    lengths = [5, 2, 9]
    qkv = torch.randn(1, sum(lengths), 3 * 12)
    out = packed_attention(qkv, torch.tensor(lengths), 3, 4**-0.5)
    assert out.shape == (1, 16, 12)
    assert (out - padded_reference(qkv, lengths, 3)).abs().max().item() <= OP_TOLERANCE
    # each image alone: the same rows (nothing leaks between images)
    alone = packed_attention(qkv[:, 5:7], torch.tensor([2]), 3, 4**-0.5)
    assert (alone - out[:, 5:7]).abs().max().item() <= OP_TOLERANCE
    swapped = qkv.clone()
    swapped[0, :5] = torch.randn(5, 36)  # another first image: the other images' rows do not move
    assert torch.equal(packed_attention(swapped, torch.tensor(lengths), 3, 4**-0.5)[:, 5:], out[:, 5:])


def test_per_image_model_at_batch1_matches_the_research_reference(tiny_model, photo_batch):
    """The default (per-image) model runs the packed path; at batch 1 it is the published algorithm."""
    images = photo_batch[:1]
    with torch.no_grad():
        logits = tiny_model(images)
    expected, expected_counts = reference_forward(tiny_model, images, tiny_model.algm)
    assert tiny_model.token_counts[0].tolist() == expected_counts
    assert (logits - expected).abs().max().item() <= 1e-4  # tests/test_exactness.py's TOLERANCE


@pytest.fixture(scope="module")
def micro_export(tmp_path_factory, photos):
    """A 6-block ViT-micro sample exported at 256x256, and a mixed batch: the four photos and two flat images
    (one colour with faint noise, which merges most)."""
    model = make_sample_segmenter("micro", image_size=256, fit_steps=0)
    rng = np.random.default_rng(1)
    flat = np.clip(np.full((256, 256, 3), (90, 140, 200)) + rng.integers(-4, 5, (256, 256, 3)), 0, 255)
    rgb = [photos[name] for name in SAMPLE_PHOTOS] + [flat.astype(np.uint8)] * 2
    images = make_batch(rgb, (256, 256), model.config.normalization)
    graphs = export_graphs(model, tmp_path_factory.mktemp("micro"), (256, 256), outputs=(LOGITS,))
    return model, images, graphs


def run_graph(path: Path | onnx.ModelProto, images: np.ndarray) -> dict[str, np.ndarray]:
    data = path.SerializeToString() if isinstance(path, onnx.ModelProto) else str(path)
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    return dict(zip(names, session.run(None, {session.get_inputs()[0].name: images})))


def test_graphs_loop_portable_padded_tensorrt(micro_export):
    _, _, graphs = micro_export
    portable, plugin = onnx.load(graphs.portable), onnx.load(graphs.plugin)
    for graph in (portable, plugin):
        assert all(node.domain != ATTENTION_DOMAIN for node in graph.graph.node)
        assert all(entry.domain != ATTENTION_DOMAIN for entry in graph.opset_import)
    loops = [node for node in portable.graph.node if node.op_type == "Loop"]
    assert len(loops) == 5 + 2, "one per encoder block after the first merge and per decoder block"
    assert not any(node.op_type == "Loop" for node in plugin.graph.node)
    with pytest.raises(ValueError, match="unknown attention form 'fused'"):
        expand_attention(plugin, "fused")


def test_mixed_batch_each_image_equals_batch1_in_both_graphs(micro_export):
    model, images, graphs = micro_export
    with torch.no_grad():
        expected = model(torch.from_numpy(images)).numpy()
    counts = model.token_counts.numpy()
    assert counts[:, -1].max() >= 3 * counts[:, -1].min(), "the batch spreads its token counts 3:1"
    for path in (graphs.portable, graphs.plugin):
        batch = run_graph(path, images)
        np.testing.assert_array_equal(batch[TOKEN_COUNTS], counts)
        assert np.abs(batch[LOGITS] - expected).max() <= LOGIT_TOLERANCE, path.name
        for b in (0, 4):  # a photo and a flat image (the most padding)
            alone = run_graph(path, images[b:b + 1])
            assert np.abs(alone[LOGITS][0] - batch[LOGITS][b]).max() <= LOGIT_TOLERANCE, (path.name, b)
