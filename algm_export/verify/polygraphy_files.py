"""Artifacts that let a user check parity with polygraphy alone: inputs, a data loader, a postprocess
function and PyTorch's outputs as a RunResults file."""

from __future__ import annotations

import shlex
from pathlib import Path

import numpy as np
from polygraphy.comparator import IterationResult, RunResults
from polygraphy.logger import G_LOGGER

from ..artifacts import TORCH_OUTPUTS
from ..files import write_atomically
from .parity import CRITERIA, Reference

INPUTS = "polygraphy_inputs.npz"
DATA_LOADER = "polygraphy_data_loader.py"
POSTPROCESS = "polygraphy_postprocess.py"

DATA_LOADER_SOURCE = f'''"""polygraphy data loader: the verification inputs of algm-export, in order."""

from pathlib import Path

import numpy as np


def load_data():
    """Yield one feed dict per verification case (each image alone, then the mixed batch)."""
    with np.load(Path(__file__).with_name("{INPUTS}")) as inputs:
        for index in range(len(inputs.files)):
            yield {{"images": inputs[f"case{{index}}"]}}
'''

POSTPROCESS_SOURCE = '''"""polygraphy postprocess: compare per-pixel labels and token counts.

Full-resolution logits are too large to store for every verification image; algm-export stores
PyTorch's labels (argmax over classes) instead, and compares logits itself (see report.json).
The token maps are left out: where window similarities tie within rounding, two correct backends
may order merges differently (report.json counts and explains such cases).
"""

from polygraphy.comparator import IterationResult

KEPT = ("labels", "token_counts")
PATCH_SIZE = {patch}


def postprocess_outputs(result):
    """Keep labels and token_counts; a graph without a labels output gets them from logits (argmax over
    axis 1) or from scores (bilinear upsampling by the patch size, as the graphs do, then argmax)."""
    outputs = dict(result.items())
    if "labels" not in outputs and "logits" in outputs:
        outputs["labels"] = outputs["logits"].argmax(axis=1).astype("int32")
    elif "labels" not in outputs and "scores" in outputs:
        import torch

        scores = torch.from_numpy(outputs["scores"]).float()
        size = (scores.shape[2] * PATCH_SIZE, scores.shape[3] * PATCH_SIZE)
        upsampled = torch.nn.functional.interpolate(scores, size=size, mode="bilinear", align_corners=False)
        outputs["labels"] = upsampled.argmax(dim=1).to(torch.int32).numpy()
    return IterationResult(outputs={k: v for k, v in outputs.items() if k in KEPT},
                           runtime=result.runtime, runner_name=result.runner_name)
'''


def write_polygraphy_files(folder: Path, reference: Reference) -> list[Path]:
    """Write the inputs, the data loader, the postprocess script and PyTorch's outputs into ``folder``."""
    inputs = {f"case{i}": case.images for i, case in enumerate(reference.cases)}
    iterations = []
    for prediction in reference.predictions:
        outputs = {"labels": prediction.labels(reference.torch.info.image_size)}
        if prediction.token_counts is not None:
            outputs["token_counts"] = np.asarray(prediction.token_counts, dtype=np.int64)
        iterations.append(IterationResult(outputs=outputs, runner_name="pytorch"))
    results = RunResults()
    results.append(("pytorch", iterations))
    return [
        write_atomically(folder / INPUTS, lambda p: _save_npz(p, inputs)),
        write_atomically(folder / DATA_LOADER, lambda p: p.write_text(DATA_LOADER_SOURCE)),
        write_atomically(folder / POSTPROCESS, lambda p: p.write_text(
            POSTPROCESS_SOURCE.replace("{patch}", str(reference.torch.info.patch_size)))),
        write_atomically(folder / TORCH_OUTPUTS, lambda p: _save_quietly(results, p)),
    ]


def _save_quietly(results: RunResults, path: Path) -> None:
    with G_LOGGER.verbosity(G_LOGGER.ERROR):
        results.save(str(path))


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """np.savez appends '.npz' to names without it, so hand it an open file."""
    with path.open("wb") as handle:
        np.savez(handle, **arrays)


def compare_arguments(folder: Path, precision: str) -> list[str]:
    """polygraphy run arguments that compare a graph's outputs with the stored PyTorch outputs."""
    criteria = CRITERIA[precision]  # polygraphy compares with plain PyTorch's labels, exactly (no tie rule):
    # for INT8 that is the all-pixel floor (label_agreement_own_decisions_exact), not the tie-aware verdict
    quantile = criteria.get("label_agreement_own_decisions_exact",
                            criteria.get("label_agreement_own_decisions", criteria.get("label_agreement")))
    return [
        "--data-loader-script", f"{folder / DATA_LOADER}:load_data",
        "--load-outputs", str(folder / TORCH_OUTPUTS),
        "--postprocess-func-script", str(folder / POSTPROCESS),
        "--check-error-stat", "labels:quantile", "--error-quantile", f"labels:{quantile}",
        "--atol", "0", "--rtol", "0",
    ]


def onnxrt_command(graph: Path, folder: Path, precision: str) -> list[str]:
    """polygraphy CLI: run ``graph`` in ONNX Runtime and compare with PyTorch."""
    return ["polygraphy", "run", str(graph), "--onnxrt", *compare_arguments(folder, precision)]


def tensorrt_command(graph: Path, folder: Path, plugin_library: str, image_size: tuple[int, int],
                     batch: tuple[int, int, int], precision: str = "fp16") -> list[str]:
    """polygraphy CLI for a GPU machine: build ``graph`` with TensorRT and our plugins, compare with PyTorch."""
    shape = lambda b: f"images:[{b},3,{image_size[0]},{image_size[1]}]"  # noqa: E731
    return ["polygraphy", "run", str(graph), "--trt", "--strongly-typed", "--plugins", plugin_library,
            "--trt-min-shapes", shape(batch[0]), "--trt-opt-shapes", shape(batch[1]),
            "--trt-max-shapes", shape(batch[2]), *compare_arguments(folder, precision)]


def as_shell(command: list[str]) -> str:
    """A command list as one copy-pasteable shell line."""
    return " ".join(shlex.quote(part) for part in command)
