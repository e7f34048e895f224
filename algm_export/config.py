"""Plain-data descriptions of a Segmenter model and of its ALGM merging settings."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .errors import AlgmExportError

NORMALIZATIONS: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "vit": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
    "deit": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}

DECODER_NAMES = ("linear", "mask_transformer")
MAX_DIMENSION = 1 << 16  # widths, depths, classes: far above any ViT, far below what overflows memory
BATCH_RULES = ("per-image", "min")
MAX_PATCHES = 8192  # per image: attention and GBM scores grow with its square (8192 patches: 1024x2048 at 16 px)


@dataclass(frozen=True)
class ALGMConfig:
    """Where and how ALGM merges tokens.

    ``layers`` are 1-based encoder block numbers: the first runs CLAP (local merging inside
    ``window``-sized windows, for windows whose mean cosine similarity is at least ``threshold``),
    every later one runs GBM (global bipartite merging with the adaptive threshold).

    ``batch_rule`` says how the images of a batch share decisions: ``per-image`` (the default) merges each
    image exactly as it would alone (its own r, its own GBM threshold; token tensors padded to the longest
    image, padded tokens have size 0 and are masked out of attention); ``min`` is the published rule (r is
    the minimum over the batch, the GBM threshold a batch mean), which makes an image's output depend on
    the other images of its batch.
    """

    layers: tuple[int, ...] = (1, 5)
    window: tuple[int, int] = (2, 2)
    threshold: float = 0.88
    batch_rule: str = "per-image"

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", tuple(int(v) for v in self.layers))
        object.__setattr__(self, "window", tuple(int(v) for v in self.window))
        object.__setattr__(self, "threshold", float(self.threshold))
        if self.batch_rule not in BATCH_RULES:
            raise AlgmExportError(f"unknown ALGM batch rule {self.batch_rule!r} (known: {', '.join(BATCH_RULES)})")

    @property
    def per_image(self) -> bool:
        """Whether each image of a batch merges as it would alone."""
        return self.batch_rule == "per-image"

    def validate(self, n_layers: int, grid: tuple[int, int] | None = None) -> None:
        """Raise :class:`AlgmExportError` unless the settings fit an encoder of ``n_layers`` blocks
        and, when given, a patch grid ``(rows, cols)``."""
        if not self.layers:
            raise AlgmExportError("ALGM needs at least one merge layer")
        if list(self.layers) != sorted(set(self.layers)):
            raise AlgmExportError(f"ALGM layers must be strictly increasing, got {list(self.layers)}")
        if self.layers[0] < 1 or self.layers[-1] > n_layers:
            raise AlgmExportError(
                f"ALGM layers {list(self.layers)} out of range: the encoder has blocks 1..{n_layers}"
            )
        if len(self.window) != 2 or min(self.window) < 1 or self.window[0] * self.window[1] < 2:
            raise AlgmExportError("ALGM window must be two positive sizes covering >= 2 tokens, "
                                  f"got {list(self.window)}")
        if not 0.0 < self.threshold <= 1.5:
            raise AlgmExportError(f"ALGM threshold must lie in (0, 1.5], got {self.threshold}")
        if grid is not None and (grid[0] % self.window[0] or grid[1] % self.window[1]):
            raise AlgmExportError(
                f"ALGM window {self.window[0]}x{self.window[1]} does not tile the {grid[0]}x{grid[1]} patch grid"
            )

    def to_dict(self) -> dict[str, Any]:
        """Plain types, for YAML/JSON/bundles."""
        return {"layers": list(self.layers), "window": list(self.window), "threshold": self.threshold,
                "batch_rule": self.batch_rule}

    @classmethod
    def from_dict(cls, data: dict[str, Any], missing_rule: str = "per-image") -> "ALGMConfig":
        """Inverse of :meth:`to_dict`; ``missing_rule`` is the batch rule of data written without one."""
        return cls(layers=tuple(data["layers"]), window=tuple(data["window"]), threshold=float(data["threshold"]),
                   batch_rule=data.get("batch_rule", missing_rule))


@dataclass(frozen=True)
class WindowSettings:
    """Segmenter's sliding-window inference (``inference_kwargs`` of the research ``variant.yml``): the
    image is resized so that its short side is ``im_size``, then cut into ``window_size`` windows every
    ``window_stride`` pixels (the last window flush with the border)."""

    im_size: int
    window_size: int
    window_stride: int

    def __post_init__(self) -> None:
        for name in ("im_size", "window_size", "window_stride"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value or value < 1:
                raise AlgmExportError(f"sliding window: {name} must be a positive integer, got {value!r}")
            object.__setattr__(self, name, int(value))
        if self.window_stride > self.window_size:  # pixels between two windows would get no prediction
            raise AlgmExportError(f"sliding window: window_stride must be at most window_size ({self.window_size}), "
                                  f"got {self.window_stride}")

    @classmethod
    def square(cls, size: int) -> "WindowSettings":
        """One window per ``size``-sized image: im_size = window_size = window_stride = ``size``."""
        return cls(size, size, size)

    def to_dict(self) -> dict[str, int]:
        """Plain types (the research ``inference_kwargs`` keys)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "WindowSettings":
        """Inverse of :meth:`to_dict`; extra keys are ignored."""
        return cls(data["im_size"], data["window_size"], data["window_stride"])


@dataclass(frozen=True)
class Normalization:
    """Per-channel mean/std applied to RGB images scaled to [0, 1]."""

    name: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    @classmethod
    def named(cls, name: str) -> "Normalization":
        """The normalization the research code calls ``name`` (``vit`` or ``deit``)."""
        if name not in NORMALIZATIONS:
            raise AlgmExportError(f"unknown normalization {name!r} (known: {', '.join(NORMALIZATIONS)})")
        mean, std = NORMALIZATIONS[name]
        return cls(name, mean, std)


def check_patch_count(size: tuple[int, int], patch_size: int, what: str) -> None:
    """AlgmExportError when an image of ``size`` has more than :data:`MAX_PATCHES` patches."""
    patches = (size[0] // patch_size) * (size[1] // patch_size)
    if patches > MAX_PATCHES:
        raise AlgmExportError(f"{what} {size[0]}x{size[1]}: {patches} patches of {patch_size} px, more than the "
                              f"{MAX_PATCHES} supported (e.g. 1024x2048 at patch 16)")


@dataclass(frozen=True)
class SegmenterConfig:
    """Architecture of a Segmenter: ViT encoder plus a linear or mask-transformer decoder."""

    backbone: str
    d_model: int
    n_heads: int
    n_layers: int
    d_ff: int
    patch_size: int
    image_size: tuple[int, int]
    n_cls: int
    decoder: str = "mask_transformer"
    decoder_layers: int = 2
    distilled: bool = False
    encoder_head_classes: int = 1000
    normalization: Normalization = field(default_factory=lambda: Normalization.named("vit"))
    class_names: tuple[str, ...] = ()
    inference: WindowSettings | None = None  # None: one window of image_size

    def __post_init__(self) -> None:
        object.__setattr__(self, "image_size", tuple(int(v) for v in self.image_size))
        object.__setattr__(self, "class_names", tuple(self.class_names))
        for name in ("d_model", "n_heads", "n_layers", "d_ff", "patch_size", "n_cls", "encoder_head_classes"):
            if not 1 <= int(getattr(self, name)) <= MAX_DIMENSION:
                raise AlgmExportError(f"{name} must be an integer in 1..{MAX_DIMENSION}, got {getattr(self, name)}")
        if self.decoder_layers < 0:
            raise AlgmExportError(f"decoder n_layers must be >= 0, got {self.decoder_layers}")
        if len(self.image_size) != 2 or min(self.image_size) < 1:
            raise AlgmExportError(f"image size must be one or two positive sizes, got {list(self.image_size)}")
        check_patch_count(self.image_size, self.patch_size, "image size")
        if self.decoder not in DECODER_NAMES:
            raise AlgmExportError(f"unknown decoder {self.decoder!r} (known: {', '.join(DECODER_NAMES)})")
        if self.d_model % self.n_heads:
            raise AlgmExportError(f"d_model {self.d_model} is not divisible by n_heads {self.n_heads}")
        if self.image_size[0] % self.patch_size or self.image_size[1] % self.patch_size:
            raise AlgmExportError(f"image size {list(self.image_size)} is not a multiple of patch size "
                                  f"{self.patch_size}")
        if self.class_names and len(self.class_names) != self.n_cls:
            raise AlgmExportError(f"{len(self.class_names)} class names given for {self.n_cls} classes")

    @property
    def grid(self) -> tuple[int, int]:
        """Patch grid (rows, cols) at the training image size."""
        return self.image_size[0] // self.patch_size, self.image_size[1] // self.patch_size

    def names(self) -> tuple[str, ...]:
        """Class names, or ``class_0 ...`` when the checkpoint carries none."""
        return self.class_names or tuple(f"class_{i}" for i in range(self.n_cls))

    def windows(self) -> WindowSettings:
        """The sliding-window settings (stored ones, else one window of the training size)."""
        return self.inference or WindowSettings.square(self.image_size[0])

    def to_dict(self) -> dict[str, Any]:
        """Plain types, for bundles and sidecars."""
        data = asdict(self)
        data["image_size"] = list(self.image_size)
        data["class_names"] = list(self.class_names)
        data["normalization"] = {"name": self.normalization.name, "mean": list(self.normalization.mean),
                                 "std": list(self.normalization.std)}
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SegmenterConfig":
        """Inverse of :meth:`to_dict`."""
        data = dict(data)
        norm = data.pop("normalization")
        data["normalization"] = Normalization(norm["name"], tuple(norm["mean"]), tuple(norm["std"]))
        if data.get("inference") is not None:
            data["inference"] = WindowSettings.from_dict(data["inference"])
        return cls(**data)
