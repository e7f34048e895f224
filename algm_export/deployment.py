"""What a deployed graph or engine needs to know about its model: stored in ONNX metadata and sidecars."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from .artifacts import LOGITS, OUTPUT_NAMES
from .config import ALGMConfig, Normalization, WindowSettings
from .errors import AlgmExportError

METADATA_KEY = "algm_export"


@dataclass(frozen=True)
class DeploymentInfo:
    """Input size, normalization, classes, merging, deployment outputs and sliding-window settings of an
    exported model (graphs written before outputs/windows existed read as ``logits`` and one window)."""

    image_size: tuple[int, int]
    normalization: Normalization
    class_names: tuple[str, ...]
    algm: ALGMConfig | None
    precision: str = "fp32"
    outputs: tuple[str, ...] = (LOGITS,)
    windows: WindowSettings | None = None
    patch_size: int = 16

    def __post_init__(self) -> None:
        if self.windows is None:
            object.__setattr__(self, "windows", WindowSettings.square(self.image_size[0]))

    @classmethod
    def of(cls, model, image_size: tuple[int, int], precision: str = "fp32",
           outputs: tuple[str, ...] = OUTPUT_NAMES) -> "DeploymentInfo":
        """The info of a Segmenter exported at ``image_size`` with the deployment ``outputs``; its sliding-window
        settings scaled to windows of the export height when that differs from the checkpoint's window."""
        config = model.config
        windows = config.windows()
        if windows.window_size != image_size[0]:
            scale = image_size[0] / windows.window_size
            windows = WindowSettings(round(windows.im_size * scale), image_size[0],
                                     max(1, round(windows.window_stride * scale)))
        return cls(tuple(image_size), config.normalization, config.names(), model.algm, precision, tuple(outputs),
                   windows, config.patch_size)

    def to_dict(self) -> dict[str, Any]:
        """Plain types (JSON)."""
        data = asdict(self)
        data["image_size"] = list(self.image_size)
        data["class_names"] = list(self.class_names)
        data["algm"] = self.algm.to_dict() if self.algm else None
        data["outputs"] = list(self.outputs)
        data["windows"] = self.windows.to_dict()
        data["normalization"] = {"name": self.normalization.name, "mean": list(self.normalization.mean),
                                 "std": list(self.normalization.std)}
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "DeploymentInfo":
        """Inverse of :meth:`to_dict`."""
        norm = data["normalization"]
        return cls(
            image_size=tuple(data["image_size"]),
            normalization=Normalization(norm["name"], tuple(norm["mean"]), tuple(norm["std"])),
            class_names=tuple(data["class_names"]),
            # Graphs exported before batch rules existed merged with the published (min) rule.
            algm=ALGMConfig.from_dict(data["algm"], missing_rule="min") if data.get("algm") else None,
            precision=data.get("precision", "fp32"),
            outputs=tuple(data.get("outputs", (LOGITS,))),
            windows=WindowSettings.from_dict(data["windows"]) if data.get("windows") else None,
            patch_size=int(data.get("patch_size", 16)),
        )

    def to_json(self) -> str:
        """Compact JSON for ONNX metadata_props."""
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_onnx(cls, source: str, model) -> "DeploymentInfo":
        """Read from a loaded ONNX ModelProto; ``source`` names the file in errors."""
        return cls.from_metadata(source, {prop.key: prop.value for prop in model.metadata_props})

    @classmethod
    def from_metadata(cls, source: str, metadata: dict[str, str]) -> "DeploymentInfo":
        """Read from an ONNX model's metadata map; ``source`` names the file in errors."""
        if METADATA_KEY not in metadata:
            raise AlgmExportError(f"{source}: no {METADATA_KEY!r} metadata; was it written by algm-export?")
        try:
            return cls.from_dict(json.loads(metadata[METADATA_KEY]))
        except (ValueError, KeyError, TypeError) as error:
            raise AlgmExportError(f"{source}: damaged {METADATA_KEY!r} metadata ({error})") from error
