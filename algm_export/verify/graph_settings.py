"""What the exported graphs were built with (their ``algm_export`` metadata and outputs), checked against
MODEL and the command-line flags before ``verify``/``build`` test them."""

from __future__ import annotations

from pathlib import Path

import onnx

from ..artifacts import TOKEN_COUNTS, TOKEN_MAPS
from ..deployment import DeploymentInfo
from ..errors import AlgmExportError
from ..models.segmenter import Segmenter


def read_graph(path: Path) -> tuple[DeploymentInfo, list[str]]:
    """The deployment info and output names stored in an exported graph; one-line errors."""
    try:
        graph = onnx.load(str(path), load_external_data=False)
    except Exception as error:  # onnx raises DecodeError, OSError... for damaged files
        raise AlgmExportError(f"{path}: not a readable ONNX graph ({type(error).__name__})") from error
    return DeploymentInfo.from_onnx(str(path), graph), [output.name for output in graph.graph.output]


def _describe_algm(algm) -> str:
    return "dense (no ALGM)" if algm is None else (
        f"ALGM layers {','.join(map(str, algm.layers))}, window {algm.window[0]}x{algm.window[1]}, "
        f"threshold {algm.threshold:g}")


def setting_differences(info: DeploymentInfo, model: Segmenter, requested_size: tuple[int, int] | None
                        ) -> list[str]:
    """The settings in which a graph's ``info`` and MODEL + flags disagree, as phrases naming each setting."""
    differences = []
    if requested_size is not None and tuple(requested_size) != tuple(info.image_size):
        differences.append(f"image size: graph {info.image_size[0]}x{info.image_size[1]}, "
                           f"--image-size {requested_size[0]}x{requested_size[1]}")
    if (info.algm is None) != (model.algm is None):
        differences.append(f"dense/ALGM: graph {_describe_algm(info.algm)}, MODEL and flags "
                           f"{_describe_algm(model.algm)}")
    elif info.algm is not None:
        for setting in ("layers", "window", "threshold", "batch_rule"):
            stored, asked = getattr(info.algm, setting), getattr(model.algm, setting)
            if stored != asked:
                name = "--batch-rule" if setting == "batch_rule" else f"ALGM {setting}"
                differences.append(f"{name}: graph {stored}, MODEL and flags {asked}")
    config = model.config
    if info.normalization != config.normalization:
        differences.append(f"normalization: graph {info.normalization.name}, MODEL {config.normalization.name}")
    if len(info.class_names) != config.n_cls:
        differences.append(f"classes: graph {len(info.class_names)}, MODEL {config.n_cls}")
    return differences


def check_graphs(folder: Path, names: list[str], model: Segmenter, requested_size: tuple[int, int] | None
                 ) -> tuple[int, int]:
    """Refuse (AlgmExportError naming the setting) when any graph ``names`` present in ``folder`` was built
    with other settings than MODEL + flags, or lacks the outputs they imply; returns the graphs' image size."""
    sizes = set()
    for name in names:
        path = folder / name
        if not path.is_file():
            continue
        info, outputs = read_graph(path)
        differences = setting_differences(info, model, requested_size)
        if differences:
            raise AlgmExportError(f"{path} was exported with other settings ({'; '.join(differences)}); "
                                  "re-export, or pass the flags it was exported with")
        needed = [*info.outputs, *((TOKEN_COUNTS, TOKEN_MAPS) if info.algm is not None else ())]
        missing = [output for output in needed if output not in outputs]
        if missing:
            raise AlgmExportError(f"{path}: outputs {', '.join(missing)} missing (it has {', '.join(outputs)})")
        sizes.add(tuple(info.image_size))
    if len(sizes) > 1:
        raise AlgmExportError(f"{folder}: its graphs were exported at different image sizes {sorted(sizes)}")
    if not sizes:
        raise AlgmExportError(f"{folder}: no exported graph ({', '.join(names)})")
    return sizes.pop()
