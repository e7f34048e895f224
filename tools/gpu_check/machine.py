"""Stage 1: what this machine has (GPU, driver, CUDA toolkit, TensorRT, Python packages). Nothing is installed.
Standard library only."""

from __future__ import annotations

import glob
import importlib.metadata
import json
import os
import platform
import re
import shutil
import sys
from pathlib import Path

from .context import REPO_ROOT, Context

PACKAGES = ("numpy", "torch", "onnx", "onnxruntime", "onnxruntime-gpu", "onnxscript", "onnx-graphsurgeon",
            "polygraphy", "tensorrt", "tensorrt-cu12", "tensorrt-cu13", "timm", "cuda-python", "cupy-cuda13x",
            "cupy-cuda12x", "nvidia-cuda-runtime", "nvidia-cuda-runtime-cu12", "pytest")
TENSORRT_ROOT_ENV = "TensorRT_ROOT"
# Where TensorRT's headers and libraries are looked for: $TensorRT_ROOT, a folder carried into the tree
# (.trt/, ignored by git), the Debian/Ubuntu packages' folders and the usual unpack places.
TENSORRT_ROOTS = (REPO_ROOT / ".trt", Path("/usr/local/tensorrt"), Path("/opt/tensorrt"), Path("/usr/src/tensorrt"))
HEADER_FOLDERS = (Path("/usr/include/x86_64-linux-gnu"), Path("/usr/include"))
LIBRARY_FOLDERS = (Path("/usr/lib/x86_64-linux-gnu"), Path("/usr/lib64"), Path("/usr/local/lib"))
PYTHON_PROBE_LIMIT = 90  # seconds: importing torch cold takes a while


def candidate_roots() -> list[Path]:
    """TensorRT installation roots to search: $TensorRT_ROOT, the fixed places, then the header-only copies in a
    shared/third_party/ inside or beside the checkout (what .ci/run builds against; headers, no libraries)."""
    roots = [Path(os.environ[TENSORRT_ROOT_ENV])] if os.environ.get(TENSORRT_ROOT_ENV) else []
    roots += TENSORRT_ROOTS
    for shared in (REPO_ROOT / "shared", REPO_ROOT.parent / "shared"):
        roots += [Path(p) for p in sorted(glob.glob(str(shared / "third_party" / "tensorrt-*")), reverse=True)]
    return roots


def tensorrt_headers() -> tuple[Path | None, str | None]:
    """(folder holding NvInferRuntime.h, TensorRT version read from NvInferVersion.h), or (None, None)."""
    for folder in [root / "include" for root in candidate_roots()] + list(HEADER_FOLDERS):
        if (folder / "NvInferRuntime.h").is_file():
            return folder, header_version(folder / "NvInferVersion.h")
    return None, None


def header_version(path: Path) -> str | None:
    """``MAJOR.MINOR.PATCH`` from NvInferVersion.h (TensorRT 10 and 11 spell the numbers TRT_*_ENTERPRISE or
    NV_TENSORRT_*), None when unreadable."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return None
    numbers = []
    for part in ("MAJOR", "MINOR", "PATCH"):
        found = re.search(rf"#define\s+(?:TRT_{part}_ENTERPRISE|NV_TENSORRT_{part})\s+(\d+)", text)
        if not found:
            return None
        numbers.append(found.group(1))
    return ".".join(numbers)


def nvinfer_libraries(python_libs: str | None) -> list[str]:
    """Every libnvinfer.so* found: the ``tensorrt_libs`` wheel's first (the copy TensorRT's Python package loads,
    so that the self-registering plugin library registers into the registry that process uses), then TensorRT
    roots' lib/ and the system folders."""
    folders = [Path(python_libs)] if python_libs else []
    folders += [root / sub for root in candidate_roots() for sub in ("lib", "lib64")] + list(LIBRARY_FOLDERS)
    found = []
    for folder in folders:
        found += sorted(glob.glob(str(folder / "libnvinfer.so*")))
    return found


def trtexec_path() -> str | None:
    """trtexec on PATH or in a TensorRT root's bin/."""
    found = shutil.which("trtexec")
    if found:
        return found
    for root in candidate_roots():
        if (root / "bin" / "trtexec").is_file():
            return str(root / "bin" / "trtexec")
    return None


def package_versions() -> dict[str, str]:
    """Installed versions of the packages that matter here (absent ones left out)."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return versions


PYTHON_PROBE = """
import json, os
facts = {}
try:
    import tensorrt
    facts["tensorrt"] = tensorrt.__version__
except Exception as error:
    facts["tensorrt_error"] = f"{type(error).__name__}: {error}"
try:
    import importlib.util
    spec = importlib.util.find_spec("tensorrt_libs")
    facts["tensorrt_libs"] = os.path.dirname(spec.origin) if spec and spec.origin else None
except Exception:
    facts["tensorrt_libs"] = None
try:
    import torch
    facts["torch"] = torch.__version__
    facts["torch_cuda"] = bool(torch.cuda.is_available())
    facts["torch_gpu"] = torch.cuda.get_device_name(0) if facts["torch_cuda"] else None
except Exception as error:
    facts["torch_error"] = f"{type(error).__name__}: {error}"
print("FACTS " + json.dumps(facts))
"""


def python_facts(context: Context) -> dict:
    """TensorRT's and PyTorch's Python packages, probed in a child process (an import may crash or hang)."""
    command = context.run([sys.executable, "-c", PYTHON_PROBE], PYTHON_PROBE_LIMIT)
    for line in command.output.splitlines():
        if line.startswith("FACTS "):
            return json.loads(line[len("FACTS "):])
    return {"probe_error": "timed out" if command.timed_out else command.tail()}


def gpu_facts(context: Context) -> dict:
    """nvidia-smi's view: GPU name, driver, memory, compute capability; ``gpu`` is None without a GPU."""
    if shutil.which("nvidia-smi") is None:
        return {"gpu": None, "gpu_reason": "nvidia-smi not found (no NVIDIA driver on this machine)"}
    command = context.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total,compute_cap",
                           "--format=csv,noheader"], 30)
    rows = [line.split(", ") for line in command.output.splitlines() if line.count(",") >= 3]
    if command.returncode != 0 or not rows:
        return {"gpu": None, "gpu_reason": f"nvidia-smi lists no GPU ({command.tail(1) or 'no output'})"}
    name, driver, memory, capability = (field.strip() for field in rows[0][:4])
    context.run(["nvidia-smi"], 30)  # the full table, for the log
    return {"gpu": name, "gpus": len(rows), "driver": driver, "gpu_memory": memory, "compute_capability": capability}


def first_line(context: Context, args: list[str], pattern: str = "") -> str | None:
    """The first output line of ``args`` containing ``pattern`` (None when the tool is missing or fails)."""
    if shutil.which(args[0]) is None:
        return None
    command = context.run(args, 30)
    if command.returncode != 0:
        return None
    return next((line.strip() for line in command.output.splitlines() if pattern in line), None)


def record_machine(context: Context) -> dict:
    """Stage 1: collect the facts into ``context.facts`` and return them as the stage's figures."""
    facts = {"host": platform.node(), "machine": platform.machine(), "cpus": os.cpu_count(),
             "python": sys.version.split()[0], "python_path": sys.executable}
    facts.update(gpu_facts(context))
    nvcc = shutil.which("nvcc") or ("/usr/local/cuda/bin/nvcc" if Path("/usr/local/cuda/bin/nvcc").exists() else None)
    facts["nvcc"] = nvcc
    facts["nvcc_version"] = first_line(context, [nvcc, "--version"], "release") if nvcc else None
    facts["cmake"] = first_line(context, ["cmake", "--version"], "version")
    facts["ninja"] = shutil.which("ninja")
    facts["cxx"] = first_line(context, ["g++", "--version"])
    python = python_facts(context)
    facts["python_probe"] = python
    headers, version = tensorrt_headers()
    facts["tensorrt_headers"] = str(headers) if headers else None
    facts["tensorrt_header_version"] = version
    facts["nvinfer_libraries"] = nvinfer_libraries(python.get("tensorrt_libs"))
    facts["trtexec"] = trtexec_path()
    facts["packages"] = package_versions()
    context.facts.update(facts)
    return facts
