"""Stages 2 and 3's native parts: configure plugins/ for the card present, build and run algm_cuda_check,
build the TensorRT plugin libraries and their host test. Standard library only."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from .context import REPO_ROOT, Context, StageFailed, StageSkipped

CONFIGURE_LIMIT = 90
CUDA_BUILD_LIMIT = 240
CUDA_CHECK_LIMIT = 120
CUDA_CHECK_TIMED_RUNS = 20  # per timing case: enough for a stable median, short enough for the budget
PLUGIN_BUILD_LIMIT = 180
HOST_TEST_LIMIT = 60
CUDA_CHECK_SKIPPED = 77  # algm_cuda_check: no usable GPU


def missing_gpu(context: Context) -> list[str]:
    """Why there is no GPU to use (empty when stage 1 saw one)."""
    if context.facts.get("gpu"):
        return []
    return [f"no GPU: {context.facts.get('gpu_reason', 'stage 1 did not run')}"]


def skip_if_missing(missing: list[str]) -> None:
    """StageSkipped listing every missing prerequisite, when there is one."""
    if missing:
        raise StageSkipped("; ".join(missing))


def configure(context: Context) -> Path:
    """Configure plugins/ once into build/gpu_check/plugins for the card present (CMAKE_CUDA_ARCHITECTURES=native),
    with the TensorRT headers and libnvinfer stage 1 found; the build folder."""
    if "plugins" in context.built:
        return context.built["plugins"]
    if not context.facts.get("cmake"):
        raise StageSkipped("cmake not found: plugins/ cannot be built")
    folder = context.build / "plugins"
    args = ["cmake", "-S", REPO_ROOT / "plugins", "-B", folder, "-DCMAKE_BUILD_TYPE=Release",
            "-DCMAKE_CUDA_ARCHITECTURES=native", f"-DCMAKE_CUDA_COMPILER={context.facts['nvcc']}"]
    if context.facts.get("ninja"):
        args += ["-G", "Ninja"]
    if context.facts.get("tensorrt_headers"):
        args.append(f"-DTensorRT_INCLUDE_DIR={context.facts['tensorrt_headers']}")
    libraries = [lib for lib in context.facts.get("nvinfer_libraries", [])
                 if re.search(r"libnvinfer\.so(\.\d+)*$", lib)]
    if libraries:
        args.append(f"-DALGM_NVINFER_LIBRARY={libraries[0]}")
    if folder.exists():
        shutil.rmtree(folder)  # a cache from another machine or toolkit would mislead CMake
    command = context.run(args, CONFIGURE_LIMIT)
    capability = str(context.facts.get("compute_capability", "")).replace(".", "")
    if command.returncode != 0 and "no GPU was detected" in command.output and capability.isdigit():
        # CMake's own GPU detection failed where nvidia-smi saw the card: name its architecture instead.
        context.facts["cuda_architectures"] = f"{capability}-real (CMake's native detection found no GPU)"
        shutil.rmtree(folder, ignore_errors=True)
        args = [f"-DCMAKE_CUDA_ARCHITECTURES={capability}-real" if str(a).startswith("-DCMAKE_CUDA_ARCHITECTURES")
                else a for a in args]
        command = context.run(args, CONFIGURE_LIMIT)
    else:
        context.facts["cuda_architectures"] = "native"
    context.require(command, "cmake configure of plugins/")
    context.facts["cmake_configure"] = [line[3:].strip() for line in command.output.splitlines()
                                        if line.startswith("-- algm")]
    context.built["plugins"] = folder
    return folder


def build_targets(context: Context, targets: list[str], limit: float, what: str) -> float:
    """Build ``targets`` of the configured plugins/; the seconds it took."""
    folder = configure(context)
    command = context.run(["cmake", "--build", folder, "-j", str(context.jobs), "--target", *targets], limit)
    return round(context.require(command, what).seconds, 1)


def parse_cuda_check(output: str) -> dict:
    """Figures from algm_cuda_check's output: GPU line, cases passed/failed, first failures, timing table."""
    lines = output.splitlines()
    results = [line for line in lines if line.startswith(("ok ", "FAIL "))]
    failures = [line for line in results if line.startswith("FAIL")]
    table_start = next((i for i, line in enumerate(lines) if line.startswith("median of")), None)
    table = [line for line in lines[table_start:] if "|" in line or line.startswith("median")] \
        if table_start is not None else []
    gpu = next((line[len("GPU: "):] for line in lines if line.startswith("GPU: ")), None)
    return {"gpu": gpu, "comparisons": len(results), "mismatches": len(failures), "first_mismatches": failures[:5],
            "timings": table}


def cuda_kernels(context: Context) -> dict:
    """Stage 2: build algm_cuda_check for the card present and run it (CUDA == CPU bit for bit on every case,
    twice, both batch rules, both activation dtypes, both size-tensor dtypes)."""
    missing = missing_gpu(context)
    if not context.facts.get("nvcc"):
        missing.append("nvcc not found (no CUDA toolkit): the CUDA kernels cannot be built")
    skip_if_missing(missing)
    seconds = build_targets(context, ["algm_cuda_check"], CUDA_BUILD_LIMIT, "building algm_cuda_check")
    tool = context.built["plugins"] / "core" / "algm_cuda_check"
    command = context.run([tool, str(CUDA_CHECK_TIMED_RUNS)], CUDA_CHECK_LIMIT)
    (context.out / "cuda_check.txt").write_text(command.output)
    figures = {"architectures": context.facts.get("cuda_architectures"), "build_seconds": seconds,
               "run_seconds": round(command.seconds, 1), **parse_cuda_check(command.output)}
    if command.returncode == CUDA_CHECK_SKIPPED:
        raise StageSkipped(f"algm_cuda_check found no usable GPU: {command.tail(1)}", figures)
    if command.timed_out:
        raise StageFailed(f"algm_cuda_check timed out after {command.seconds:.0f} s", figures)
    if command.returncode != 0 or figures["mismatches"] or not figures["comparisons"]:
        detail = "; ".join(figures["first_mismatches"]) or command.tail()
        raise StageFailed(f"algm_cuda_check exit {command.returncode}, {figures['mismatches']} mismatches "
                          f"of {figures['comparisons']}: {detail}", figures)
    context.built["cuda_kernels"] = True
    return figures


def plugin_libraries(context: Context) -> dict:
    """Stage 3's first half: build libalgm_plugins.so, libalgm_plugins_autoreg.so (when CMake found libnvinfer)
    and the host test, and run the host test. Figures, with the library paths in ``context.built``."""
    folder = configure(context)
    seconds = build_targets(context, ["algm_plugins", "algm_plugin_host_test"], PLUGIN_BUILD_LIMIT,
                            "building the TensorRT plugin library")
    figures = {"build_seconds": seconds}
    context.built["plugin_library"] = folder / "trt" / "libalgm_plugins.so"
    # The self-registering flavour is a target only when CMake found libnvinfer.
    autoreg = context.run(["cmake", "--build", folder, "-j", str(context.jobs), "--target", "algm_plugins_autoreg"],
                          PLUGIN_BUILD_LIMIT)
    if autoreg.returncode == 0 and (folder / "trt" / "libalgm_plugins_autoreg.so").is_file():
        context.built["autoreg_library"] = folder / "trt" / "libalgm_plugins_autoreg.so"
        figures["autoreg"] = "built"
    else:
        figures["autoreg"] = f"not built: {autoreg.tail(1)}"
    host = context.run(["ctest", "--test-dir", folder, "-R", "algm_plugin_host_test", "--output-on-failure"],
                       HOST_TEST_LIMIT)
    context.require(host, "the plugin host test (ctest)", figures)
    figures["host_test"] = "passed"
    return figures
