"""Can this machine build and run TensorRT engines? Each check answers with a one-line reason."""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType

from ..artifacts import PLUGIN_LIBRARY
from ..ops_contract import OP_NAMES, PLUGIN_NAMESPACE, PLUGIN_VERSION

PLUGIN_LIBRARY_ENV = "ALGM_PLUGIN_LIBRARY"
REPO_ROOT = Path(__file__).resolve().parents[2]
# Where `cmake -S plugins -B build` or `-B build/plugins` puts the plugin layer, from the current folder
# or from the repository.
DEFAULT_LIBRARY_FOLDERS = tuple(root / build / "trt" for root in (Path.cwd(), REPO_ROOT)
                                for build in ("build", "build/plugins"))


PLUGIN_NAMES = OP_NAMES  # one plugin per algm op, named as the op (ops_contract.json)

# Plugin libraries loaded into this process, by resolved path: TensorRT's registry refuses a second
# load_library of creators it already holds, and keeps them registered until the process ends.
_LOADED_LIBRARIES: dict[Path, object] = {}


class Unavailable(Exception):
    """TensorRT stages cannot run here; ``str()`` says why in one line."""


class TensorRTFailure(Exception):
    """TensorRT itself failed (parser, builder, deserialization, execution); ``str()`` is one line."""


def import_tensorrt() -> ModuleType:
    """The ``tensorrt`` module, or Unavailable."""
    try:
        import tensorrt
    except ImportError as error:
        raise Unavailable(f"TensorRT's Python package is not installed ({error}); "
                          "install it with: pip install 'algm-export[gpu]'") from error
    return tensorrt


def require_gpu() -> str:
    """The name of the CUDA GPU, or Unavailable."""
    import torch

    if not torch.cuda.is_available():
        raise Unavailable("no CUDA GPU is visible to PyTorch (torch.cuda.is_available() is False)")
    return torch.cuda.get_device_name(0)


def find_plugin_library(explicit: str | os.PathLike | None = None) -> Path:
    """The plugin library: ``explicit``, else $ALGM_PLUGIN_LIBRARY, else build/trt/ or build/plugins/trt/ under
    the current folder or the repository; Unavailable when none exists."""
    candidates = [Path(explicit)] if explicit else []
    if not explicit and os.environ.get(PLUGIN_LIBRARY_ENV):
        candidates.append(Path(os.environ[PLUGIN_LIBRARY_ENV]))
    if not candidates:
        candidates = [folder / PLUGIN_LIBRARY for folder in DEFAULT_LIBRARY_FOLDERS]
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    raise Unavailable(
        f"the algm plugin library was not found ({', '.join(map(str, candidates))}); build it with "
        "`cmake -S plugins -B build/plugins -DTensorRT_ROOT=/path/to/TensorRT && cmake --build build/plugins` "
        "or pass --plugin-lib"
    )


def tensorrt_environment(plugin_library: str | os.PathLike | None = None) -> tuple[ModuleType, str, Path]:
    """(tensorrt module, GPU name, plugin library) when every TensorRT stage can run; else Unavailable."""
    tensorrt = import_tensorrt()
    gpu = require_gpu()
    return tensorrt, gpu, find_plugin_library(plugin_library)


def plugins_registered(tensorrt: ModuleType) -> bool:
    """Whether the registry already holds all three algm creators (from any library, e.g. the
    self-registering flavour preloaded by polygraphy or LD_PRELOAD)."""
    registry = tensorrt.get_plugin_registry()
    return all(registry.get_creator(name, PLUGIN_VERSION, PLUGIN_NAMESPACE) is not None for name in PLUGIN_NAMES)


def load_plugin_library(tensorrt: ModuleType, library: Path) -> None:
    """Register the algm plugin creators once per process: a library already loaded (same resolved path)
    or creators already in the registry are not loaded again; TensorRTFailure when loading fails."""
    key = Path(library).resolve()
    if key in _LOADED_LIBRARIES or plugins_registered(tensorrt):
        return
    try:
        handle = tensorrt.get_plugin_registry().load_library(str(key))
    except Exception as error:  # noqa: BLE001 - the bindings raise RuntimeError/TypeError variants
        raise TensorRTFailure(f"{key}: TensorRT could not load the plugin library ({error})") from error
    if handle is None:
        raise TensorRTFailure(f"{key}: TensorRT could not load the plugin library")
    _LOADED_LIBRARIES[key] = handle  # the handle keeps the library mapped
