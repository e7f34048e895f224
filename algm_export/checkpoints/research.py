"""The research checkpoint format: ``checkpoint.pth`` (dict with ``model``) beside ``variant.yml``."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import torch
import yaml

from ..config import ALGMConfig, Normalization, SegmenterConfig, WindowSettings
from ..datasets import class_names_for
from ..errors import AlgmExportError
from .files import first_line

VARIANT_NAME = "variant.yml"
BACKBONE = re.compile(r"^(vit|deit)_(?P<size>[a-z]+)_(distilled_)?patch(?P<patch>\d+)_\d+$")
BACKBONE_WIDTHS = {"tiny": 192, "small": 384, "base": 768, "large": 1024}


def variant_path(checkpoint: Path) -> Path:
    """Where the research format keeps the model description of ``checkpoint``."""
    return checkpoint.parent / VARIANT_NAME


def read_variant(path: Path) -> dict[str, Any]:
    """Parse ``variant.yml``; raise AlgmExportError when absent or not a YAML mapping."""
    if not path.is_file():
        raise AlgmExportError(f"{path}: missing; a research checkpoint needs its {VARIANT_NAME} beside it")
    try:
        variant = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise AlgmExportError(f"{path}: not valid YAML ({str(error).splitlines()[0]})") from error
    if not isinstance(variant, dict) or not isinstance(variant.get("net_kwargs"), dict):
        raise AlgmExportError(f"{path}: no net_kwargs mapping")
    return variant


def _require(path: Path, section: dict[str, Any], key: str, where: str) -> Any:
    if key not in section or section[key] is None:
        raise AlgmExportError(f"{path}: missing {where}{key}")
    return section[key]


def configs_from_variant(path: Path, variant: dict[str, Any], state_dict: dict[str, torch.Tensor]
                         ) -> tuple[SegmenterConfig, ALGMConfig | None]:
    """Model and ALGM configs described by a parsed ``variant.yml`` (ALGM None when trained dense)."""
    net = variant["net_kwargs"]
    decoder = _require(path, net, "decoder", "net_kwargs.")
    if not isinstance(decoder, dict):
        raise AlgmExportError(f"{path}: net_kwargs.decoder must be a mapping")
    dataset = variant.get("dataset_kwargs") or {}
    if not isinstance(dataset, dict):
        raise AlgmExportError(f"{path}: dataset_kwargs must be a mapping")
    image_size = _require(path, net, "image_size", "net_kwargs.")
    image_size = [image_size, image_size] if isinstance(image_size, int) else image_size
    if not isinstance(image_size, list) or len(image_size) != 2 or not all(type(v) is int for v in image_size):
        raise AlgmExportError(f"{path}: net_kwargs.image_size must be a size or [height, width], got {image_size!r}")
    head = state_dict.get("encoder.head.weight")
    try:
        n_cls = int(_require(path, net, "n_cls", "net_kwargs."))
        config = SegmenterConfig(
            backbone=str(net.get("backbone", "vit")),
            d_model=int(_require(path, net, "d_model", "net_kwargs.")),
            n_heads=int(_require(path, net, "n_heads", "net_kwargs.")),
            n_layers=int(_require(path, net, "n_layers", "net_kwargs.")),
            d_ff=int(net.get("d_ff") or 4 * int(net["d_model"])),
            patch_size=int(_require(path, net, "patch_size", "net_kwargs.")),
            image_size=tuple(image_size),
            n_cls=n_cls,
            decoder=str(_require(path, decoder, "name", "net_kwargs.decoder.")),
            decoder_layers=int(decoder.get("n_layers") or 0),
            distilled=bool(net.get("distilled", False)),
            encoder_head_classes=int(head.shape[0]) if isinstance(head, torch.Tensor) else 1000,
            normalization=Normalization.named(str(net.get("normalization", "vit"))),
            class_names=class_names_for(dataset.get("dataset"), n_cls),
            inference=window_settings(variant.get("inference_kwargs")),
        )
    except (TypeError, ValueError, AttributeError, OverflowError) as error:
        raise AlgmExportError(f"{path}: bad value in net_kwargs ({first_line(error)})") from error
    except AlgmExportError as error:
        raise AlgmExportError(f"{path}: {error}") from error
    check_backbone(path, config)
    return config, algm_from_dataset_kwargs(path, dataset)


def check_backbone(path: Path, config: SegmenterConfig) -> None:
    """Refuse a timm-style backbone name (``vit_small_patch16_384``) that contradicts the numbers beside it;
    note on stderr that an unknown name is ignored (the architecture comes from the numbers)."""
    found = BACKBONE.match(config.backbone)
    if not found:
        print(f"note: {path}: unknown backbone {config.backbone!r}; using the architecture variant.yml gives "
              f"(d_model {config.d_model}, {config.n_layers} blocks, patch {config.patch_size})", file=sys.stderr)
        return
    width = BACKBONE_WIDTHS.get(found["size"])
    if int(found["patch"]) != config.patch_size or (width is not None and width != config.d_model):
        raise AlgmExportError(f"{path}: backbone {config.backbone!r} contradicts d_model {config.d_model} / "
                              f"patch_size {config.patch_size}")


def window_settings(inference: Any) -> WindowSettings | None:
    """The sliding-window settings of ``inference_kwargs`` (None when absent)."""
    if not inference:
        return None
    if not isinstance(inference, dict) or any(inference.get(k) is None for k in ("im_size", "window_size",
                                                                                  "window_stride")):
        raise AlgmExportError("inference_kwargs needs im_size, window_size and window_stride")
    return WindowSettings.from_dict(inference)


def algm_from_dataset_kwargs(path: Path, dataset: dict[str, Any]) -> ALGMConfig | None:
    """The ALGM settings a research checkpoint was trained with, or None for a dense model."""
    if dataset.get("patch_type", "pure") != "algm" or dataset.get("threshold") is None:
        return None
    if not isinstance(dataset, dict):
        raise AlgmExportError(f"{path}: dataset_kwargs must be a mapping")
    for key in ("selected_layers", "merging_window_size"):
        value = dataset.get(key)
        if value is not None and (not isinstance(value, list) or not all(type(v) is int for v in value)):
            raise AlgmExportError(f"{path}: dataset_kwargs.{key} must be a list of integers, got {value!r:.40}")
    try:
        return ALGMConfig(
            layers=tuple(dataset.get("selected_layers") or (1, 5)),
            window=tuple(dataset.get("merging_window_size") or (2, 2)),
            threshold=float(dataset["threshold"]),
        )
    except (TypeError, ValueError, OverflowError) as error:
        raise AlgmExportError(f"{path}: bad ALGM settings in dataset_kwargs ({first_line(error)})") from error


def write_research_checkpoint(folder: Path, config: SegmenterConfig, algm: ALGMConfig | None,
                              state_dict: dict[str, torch.Tensor], dataset: str = "ade20k") -> Path:
    """Write ``checkpoint.pth`` + ``variant.yml`` in the research layout; returns the checkpoint path."""
    folder.mkdir(parents=True, exist_ok=True)
    variant = {
        "net_kwargs": {
            "backbone": config.backbone, "d_model": config.d_model, "n_heads": config.n_heads,
            "n_layers": config.n_layers, "d_ff": config.d_ff, "patch_size": config.patch_size,
            "image_size": list(config.image_size), "normalization": config.normalization.name,
            "distilled": config.distilled, "dropout": 0.0, "drop_path_rate": 0.1, "n_cls": config.n_cls,
            "decoder": {"name": config.decoder, "n_layers": config.decoder_layers, "dropout": 0.0,
                        "drop_path_rate": 0.0},
        },
        "dataset_kwargs": {
            "dataset": dataset,
            "patch_type": "algm" if algm else "pure",
            "selected_layers": list(algm.layers) if algm else None,
            "merging_window_size": list(algm.window) if algm else None,
            "threshold": algm.threshold if algm else None,
        },
        "inference_kwargs": config.windows().to_dict(),
    }
    checkpoint = folder / "checkpoint.pth"
    torch.save({"model": state_dict, "epoch": 0}, checkpoint)
    variant_path(checkpoint).write_text(yaml.safe_dump(variant, sort_keys=False))
    return checkpoint
