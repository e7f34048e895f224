"""Can this machine build and run TensorRT engines? Each check answers with a one-line reason."""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType

PLUGIN_LIBRARY_ENV = "ALGM_PLUGIN_LIBRARY"
PLUGIN_LIBRARY_NAME = "libalgm_plugins.so"  # getCreators(): IPluginRegistry.load_library, trtexec --dynamicPlugins
AUTOREGISTER_LIBRARY_NAME = "libalgm_plugins_autoreg.so"  # registers on dlopen: polygraphy --plugins
REPO_ROOT = Path(__file__).resolve().parents[2]
# Where `cmake -S plugins -B build` or `-B build/plugins` puts the plugin layer, from the current folder
# or from the repository.
DEFAULT_LIBRARY_FOLDERS = tuple(root / build / "trt" for root in (Path.cwd(), REPO_ROOT)
                                for build in ("build", "build/plugins"))


class Unavailable(Exception):
    """TensorRT stages cannot run here; ``str()`` says why in one line."""


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
        candidates = [folder / PLUGIN_LIBRARY_NAME for folder in DEFAULT_LIBRARY_FOLDERS]
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
