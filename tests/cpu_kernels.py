"""NumPy access to the C++ CPU kernels of the ``algm`` ops (``libalgm_cpu.so``, built from ``plugins/``).

These are the same kernels, from the same arithmetic (``plugins/core/include/algm/math.h``), that the
CUDA build and the TensorRT plugins run; the tests compare them with the PyTorch ops of
:mod:`algm_export.merging.ops`. Semantics: ``docs/plugin-ops.md``.

A test helper (not part of the package): the library comes from ``$ALGM_CPU_KERNELS`` when set, else it is
built with CMake (CPU only) from this repository's ``plugins/`` into ``build/plugins-cpu``, or into a
temporary folder when that is not writable.
"""

from __future__ import annotations

import ctypes
import functools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from algm_export.errors import AlgmExportError

ENV_LIBRARY = "ALGM_CPU_KERNELS"
LIBRARY_NAME = "libalgm_cpu.so"
C_API_VERSION = 2

_DTYPES = {np.dtype(np.float32): 0, np.dtype(np.float16): 1}
_STATUS = {1: "invalid argument", 2: "CUDA error"}
_REPO_ROOT = Path(__file__).resolve().parents[1]
_SOURCE_DIR = _REPO_ROOT / "plugins"

_size_t, _int, _float = ctypes.c_size_t, ctypes.c_int, ctypes.c_float
_ptr = ctypes.c_void_p


def _cpu_build_dir() -> Path:
    """Where the CPU library is built: ``build/plugins-cpu`` in the repository, else a temporary folder."""
    build_root = _REPO_ROOT / "build"
    if os.access(build_root if build_root.exists() else _REPO_ROOT, os.W_OK):
        return build_root / "plugins-cpu"
    return Path(tempfile.gettempdir()) / f"algm-plugins-cpu-{os.getuid()}"


def _run_cmake(args: list[str], step: str, log_path: Path) -> None:
    """Run one cmake step, raising a one-line AlgmExportError (full output in ``log_path``) on failure."""
    result = subprocess.run(args, capture_output=True, text=True)
    log_path.write_text(result.stdout + result.stderr)
    if result.returncode == 0:
        return
    output = result.stdout + result.stderr
    if "CMAKE_CXX_COMPILER" in output:
        raise AlgmExportError(f"no C++ compiler found to build the kernels (install g++ or clang); see {log_path}")
    raise AlgmExportError(f"{step} the kernels failed (exit {result.returncode}); see {log_path}")


def build_plugins(build_dir: Path, targets: Sequence[str], cuda: bool = False) -> Path:
    """Configure ``plugins/`` with CMake into ``build_dir`` and build ``targets``; returns ``build_dir``.

    ``cuda=False`` passes ``-DALGM_CUDA=OFF`` (CPU only: a few seconds). Incremental: repeated calls are
    cheap. Raises :class:`AlgmExportError` when the sources, CMake or a C++ compiler are missing or a step
    fails (the step's output is kept in ``build_dir/configure.log`` / ``build.log``).
    """
    if not (_SOURCE_DIR / "CMakeLists.txt").is_file():
        raise AlgmExportError(f"kernel sources not found at {_SOURCE_DIR}; set {ENV_LIBRARY} to a built {LIBRARY_NAME}")
    cmake = shutil.which("cmake")
    if cmake is None:
        raise AlgmExportError(f"cmake not found on PATH: needed to build the kernels (or set {ENV_LIBRARY})")
    build_dir = Path(build_dir)
    build_dir.mkdir(parents=True, exist_ok=True)
    _run_cmake([cmake, "-S", str(_SOURCE_DIR), "-B", str(build_dir), f"-DALGM_CUDA={'ON' if cuda else 'OFF'}",
                "-DCMAKE_BUILD_TYPE=Release"], "configuring", build_dir / "configure.log")
    _run_cmake([cmake, "--build", str(build_dir), "--parallel", "--target", *targets],
               "building", build_dir / "build.log")
    return build_dir


def find_cpu_library() -> Path:
    """Path of ``libalgm_cpu.so``: ``$ALGM_CPU_KERNELS`` if set, else built (CPU only) with CMake.

    Raises :class:`AlgmExportError` when the variable names a missing file, or when the library cannot
    be built (see :func:`build_plugins`).
    """
    configured = os.environ.get(ENV_LIBRARY)
    if configured:
        path = Path(configured)
        if not path.is_file():
            raise AlgmExportError(f"{ENV_LIBRARY}={configured} is not a file")
        return path
    return build_plugins(_cpu_build_dir(), ["algm_cpu"]) / LIBRARY_NAME


@functools.lru_cache(maxsize=None)
def _library() -> ctypes.CDLL:
    """The loaded CPU library with its C signatures declared (loaded once per process)."""
    path = find_cpu_library()
    try:
        lib = ctypes.CDLL(str(path))
    except OSError as error:
        raise AlgmExportError(f"cannot load {path}: {error}") from error
    lib.algm_c_api_version.restype = _int
    if lib.algm_c_api_version() != C_API_VERSION:
        raise AlgmExportError(f"{path} has C API version {lib.algm_c_api_version()}, expected {C_API_VERSION}")
    lib.algm_cpu_local_merge_workspace_size.restype = _size_t
    lib.algm_cpu_local_merge_workspace_size.argtypes = [_int] * 6
    lib.algm_cpu_local_merge.restype = _int
    lib.algm_cpu_local_merge.argtypes = [_int] + [_ptr] * 5 + [_int] * 6 + [_float, _int, _ptr]
    lib.algm_cpu_global_merge_workspace_size.restype = _size_t
    lib.algm_cpu_global_merge_workspace_size.argtypes = [_int] * 5
    lib.algm_cpu_global_merge.restype = _int
    lib.algm_cpu_global_merge.argtypes = [_int] + [_ptr] * 7 + [_int] * 6 + [_ptr]
    lib.algm_cpu_unmerge.restype = _int
    lib.algm_cpu_unmerge.argtypes = [_int] + [_ptr] * 3 + [_int] * 4
    return lib


def _pointer(array: np.ndarray) -> int:
    return array.ctypes.data


def _activations(x: np.ndarray, name: str, ndim: int = 3) -> np.ndarray:
    """``x`` as a C-contiguous float32/float16 array of ``ndim`` dimensions."""
    x = np.asarray(x)
    if x.dtype not in _DTYPES:
        raise AlgmExportError(f"{name}: dtype {x.dtype} not supported, expected float32 or float16")
    if x.ndim != ndim:
        raise AlgmExportError(f"{name}: expected {ndim} dimensions, got shape {x.shape}")
    return np.ascontiguousarray(x)


def _check(status: int, op: str, detail: str) -> None:
    """Raise AlgmExportError unless the kernel's status is success."""
    if status != 0:
        raise AlgmExportError(f"{op}: the CPU kernel returned {_STATUS.get(status, f'status {status}')} ({detail})")


def _workspace(size: int, op: str, detail: str) -> np.ndarray:
    """Scratch memory of ``size`` bytes; size 0 is how the library says the parameters are invalid."""
    if size == 0:
        raise AlgmExportError(f"{op}: invalid arguments ({detail})")
    return np.empty(size, dtype=np.uint8)


def local_merge(
    x: np.ndarray, grid: tuple[int, int], window: tuple[int, int], threshold: float, per_image: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CLAP on ``x`` [B, 1 + grid_h*grid_w, C] (float32 or float16, class token first), under the per-image
    rule (``per_image``: each image's own r, outputs padded with size-0 tokens) or the published one.

    Returns ``(merged [B, T', C] in x's dtype, sizes [B, T'] float32, token_map [B, N] int32)``.
    """
    x = _activations(x, "local_merge")
    batch, tokens, channels = x.shape
    (grid_h, grid_w), (window_h, window_w) = grid, window
    detail = f"grid {grid_h}x{grid_w}, window {window_h}x{window_w}, tokens {tokens}"
    if tokens != 1 + grid_h * grid_w:
        raise AlgmExportError(f"local_merge: {tokens} tokens do not match 1 + {grid_h}x{grid_w} patches")
    lib = _library()
    workspace = _workspace(lib.algm_cpu_local_merge_workspace_size(batch, channels, grid_h, grid_w, window_h, window_w),
                           "local_merge", detail)
    merged = np.empty_like(x)
    sizes = np.empty((batch, tokens), dtype=np.float32)
    token_map = np.empty((batch, tokens - 1), dtype=np.int32)
    count = np.zeros(1, dtype=np.int64)
    status = lib.algm_cpu_local_merge(_DTYPES[x.dtype], _pointer(x), _pointer(merged), _pointer(sizes),
                                      _pointer(token_map), _pointer(count), batch, channels, grid_h, grid_w,
                                      window_h, window_w, float(threshold), int(per_image), _pointer(workspace))
    _check(status, "local_merge", detail)
    return _dense(merged, sizes, int(count[0])) + (token_map,)


def global_merge(
    x: np.ndarray, sizes: np.ndarray, token_map: np.ndarray, layer_number: int, per_image: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """GBM on ``x`` [B, T, C] with token ``sizes`` [B, T] (0: padding) and patch ``token_map`` [B, N] (int32),
    under the per-image rule (``per_image``: each image's own threshold and r) or the published one.

    Returns ``(merged [B, T', C] in x's dtype, sizes [B, T'] float32, token_map [B, N] int32)``.
    """
    x = _activations(x, "global_merge")
    batch, tokens, channels = x.shape
    sizes = np.ascontiguousarray(sizes, dtype=np.float32)
    token_map = np.ascontiguousarray(token_map, dtype=np.int32)
    if sizes.shape != (batch, tokens) or token_map.ndim != 2 or token_map.shape[0] != batch:
        raise AlgmExportError(f"global_merge: sizes {sizes.shape} / token_map {token_map.shape} do not fit x {x.shape}")
    patches = token_map.shape[1]
    detail = f"tokens {tokens}, patches {patches}, layer {layer_number}"
    lib = _library()
    workspace = _workspace(lib.algm_cpu_global_merge_workspace_size(batch, tokens, channels, patches, layer_number),
                           "global_merge", detail)
    merged = np.empty_like(x)
    new_sizes = np.empty((batch, tokens), dtype=np.float32)
    new_map = np.empty_like(token_map)
    count = np.zeros(1, dtype=np.int64)
    status = lib.algm_cpu_global_merge(_DTYPES[x.dtype], _pointer(x), _pointer(sizes), _pointer(token_map),
                                       _pointer(merged), _pointer(new_sizes), _pointer(new_map), _pointer(count),
                                       batch, tokens, channels, patches, layer_number, int(per_image),
                                       _pointer(workspace))
    _check(status, "global_merge", detail)
    return _dense(merged, new_sizes, int(count[0])) + (new_map,)


def unmerge(values: np.ndarray, token_map: np.ndarray) -> np.ndarray:
    """``out[b, p] = values[b, token_map[b, p]]`` for ``values`` [B, M, K] (float32/float16), map [B, N]."""
    values = _activations(values, "unmerge")
    token_map = np.ascontiguousarray(token_map, dtype=np.int32)
    batch, tokens, width = values.shape
    if token_map.ndim != 2 or token_map.shape[0] != batch:
        raise AlgmExportError(f"unmerge: token_map {token_map.shape} does not fit values {values.shape}")
    patches = token_map.shape[1]
    out = np.empty((batch, patches, width), dtype=values.dtype)
    status = _library().algm_cpu_unmerge(_DTYPES[values.dtype], _pointer(values), _pointer(token_map), _pointer(out),
                                         batch, tokens, width, patches)
    _check(status, "unmerge",
           f"values {values.shape}, token_map {token_map.shape}: entries must lie in [0, {tokens - 1}]")
    return out


def _dense(merged: np.ndarray, sizes: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """The kernels write [B, T', ...] densely into buffers sized for T: reinterpret their prefix."""
    batch, _, channels = merged.shape
    flat_merged = merged.reshape(-1)[: batch * count * channels]
    merged_sizes = sizes.reshape(-1)[: batch * count].reshape(batch, count)
    return flat_merged.reshape(batch, count, channels).copy(), merged_sizes.copy()
