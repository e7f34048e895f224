"""Shared fixtures: a small random-weight Segmenter and the real sample photos at 512x512."""

from __future__ import annotations

import os
import sys
from pathlib import Path

# A Ray started by a test (or by a CLI the tests run) serves this machine only: Ray then binds its servers to
# 127.0.0.1, not the machine's network address. Read by Ray when it is imported; its processes inherit it.
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
os.environ.pop("RAY_ADDRESS", None)

import numpy as np
import pytest
import torch

# Helpers that live beside the package, not in it: tests/ (cpu_kernels) and samples/ (sample_models).
sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1] / "samples")]

from sample_models import make_sample_segmenter  # noqa: E402 (found through the path set above)

from algm_export.checkpoints.research import write_research_checkpoint  # noqa: E402
from algm_export.photos import SAMPLE_PHOTOS, sample_photos  # noqa: E402
from algm_export.preprocess import PIL, make_batch  # noqa: E402

torch.set_num_threads(max(1, torch.get_num_threads()))


@pytest.fixture(scope="session")
def tiny_model():
    """The sample ViT-Tiny/16 Segmenter (mask transformer, 150 classes, ALGM layers 1 and 5)."""
    return make_sample_segmenter("tiny")


@pytest.fixture(scope="session")
def photos() -> dict[str, np.ndarray]:
    """astronaut, chelsea, coffee, rocket as RGB uint8."""
    return sample_photos()


@pytest.fixture(scope="session")
def photo_batch(tiny_model, photos) -> torch.Tensor:
    """The four photos resized to 512x512 and normalized: [4, 3, 512, 512] in SAMPLE_PHOTOS order.

    Resized with PIL, as when the exact kernel tests (C++ kernels vs PyTorch ops: the same arithmetic, identical
    token maps) were written and checked on AVX2 and AVX-512 machines. Resampled with the default OpenCV resize,
    rocket's sky holds windows whose similarities tie within rounding, which the two implementations may order
    differently (a near-tie, judged by the parity criterion elsewhere, not a defect); these inputs have none."""
    return torch.from_numpy(make_batch([photos[n] for n in SAMPLE_PHOTOS], (512, 512),
                                       tiny_model.config.normalization, PIL))


@pytest.fixture(scope="session")
def block1_tokens(tiny_model, photo_batch) -> torch.Tensor:
    """Tokens of the four photos after block 1's attention residual, where CLAP runs: [4, 1025, 192]."""
    from algm_export.models.encoder import attention_half

    vit = tiny_model.encoder
    with torch.no_grad():
        x = vit.patch_embed(photo_batch)
        x = torch.cat([vit.cls_token.expand(len(x), -1, -1), x], dim=1) + vit.pos_embed
        return attention_half(vit.blocks[0], x)


@pytest.fixture(scope="session")
def research_checkpoint(tmp_path_factory, tiny_model):
    """The tiny model as a research checkpoint (checkpoint.pth + variant.yml)."""
    return write_research_checkpoint(tmp_path_factory.mktemp("research") / "vit_tiny", tiny_model.config,
                                     tiny_model.algm, tiny_model.state_dict())


@pytest.fixture(scope="session")
def pipeline_run(tmp_path_factory, research_checkpoint):
    """`algm-export CHECKPOINT --fp16 --int8 -o DIR` run once: (exit code, printed text, output folder)."""
    import contextlib
    import io

    from algm_export.cli import main

    folder = tmp_path_factory.mktemp("pipeline") / "out"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main([str(research_checkpoint), "--fp16", "--int8", "-o", str(folder)])
    return code, printed.getvalue(), folder


@pytest.fixture(scope="session")
def dense_graphs(tmp_path_factory, tiny_model):
    """The tiny model's weights exported without ALGM."""
    from algm_export.export.onnx_export import export_graphs
    from algm_export.models.segmenter import Segmenter

    dense = Segmenter(tiny_model.config, None)
    dense.load_state_dict(tiny_model.state_dict())
    return export_graphs(dense.eval(), tmp_path_factory.mktemp("dense"), (512, 512), fp16=True)


@pytest.fixture(scope="session")
def all_output_graphs(tmp_path_factory, tiny_model):
    """The tiny ALGM model exported with every deployment output (labels, scores, logits), FP32 and FP16."""
    from algm_export.export.onnx_export import export_graphs

    return export_graphs(tiny_model, tmp_path_factory.mktemp("outputs"), (512, 512), fp16=True,
                         outputs=("labels", "scores", "logits"))


ORT_OPS_LIBRARY = Path(os.environ.get("ALGM_ORT_OPS",
                                      Path(__file__).resolve().parents[1] / "build/plugins/libalgm_ort_ops.so"))


@pytest.fixture(scope="session")
def ort_ops() -> Path:
    """libalgm_ort_ops.so from $ALGM_ORT_OPS (set by .ci/run) or build/plugins/; skipped with the reason without it."""
    if not ORT_OPS_LIBRARY.is_file():
        pytest.skip(f"libalgm_ort_ops.so is not built ({ORT_OPS_LIBRARY} missing; set ALGM_ORT_OPS or build "
                    "plugins/ with -Donnxruntime_ROOT=...)")
    return ORT_OPS_LIBRARY
