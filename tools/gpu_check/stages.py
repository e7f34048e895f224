"""Stages 3 (TensorRT: plugin library, loaders, fixture engines) and 4 (algm-export end to end on the GPU).
Standard library only; the TensorRT work runs in child processes (gpu_check.engines)."""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path

from .context import REPO_ROOT, Context, StageFailed, StageSkipped
from .fixtures import FIXTURES, GRAPHS
from .native import missing_gpu, plugin_libraries, skip_if_missing

LOAD_LIMIT = 60
ENGINES_LIMIT = 300
TRTEXEC_LIMIT = 150
CHECKPOINT_LIMIT = 120
EXPORT_LIMIT = 300
BENCH_LIMIT = 240
PLUGIN_NAMES = ["LocalMerge", "GlobalMerge", "Unmerge"]
TOOLS = REPO_ROOT / "tools"


def python_env(shim: Path | None = None) -> dict:
    """Environment for the helper processes: tools/ (gpu_check) and the repository (algm_export) importable,
    ``shim`` (see :func:`package_shim`) first when given."""
    paths = [str(p) for p in (shim, TOOLS, REPO_ROOT) if p] + \
        ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])
    return {"PYTHONPATH": os.pathsep.join(paths), "PYTHONUNBUFFERED": "1"}


def package_shim(context: Context) -> Path:
    """A folder holding ``algm_export/`` as setup.py installs it without installing anything: links to every
    entry of the repository's algm_export/ plus ``calibration`` -> the top-level calibration/ (a checkout that
    travels has no algm_export/calibration link; setup.py maps that package)."""
    shim = context.build / "python"
    package = shim / "algm_export"
    if shim.exists():
        shutil.rmtree(shim)
    package.mkdir(parents=True)
    for entry in (REPO_ROOT / "algm_export").iterdir():
        if entry.name not in ("calibration", "__pycache__"):
            (package / entry.name).symlink_to(entry)
    (package / "calibration").symlink_to(REPO_ROOT / "calibration")
    return shim


def tensorrt_prerequisites(context: Context) -> None:
    """StageSkipped listing every missing prerequisite unless the TensorRT stage can run."""
    missing = missing_gpu(context)
    kernels = context.results.get("cuda_kernels")
    if not context.built.get("cuda_kernels") and not missing:
        missing.append(f"needs the CUDA kernels (stage cuda_kernels {kernels.status if kernels else 'did not run'})")
    facts = context.facts
    if not facts.get("tensorrt_headers"):
        missing.append("TensorRT's headers (NvInferRuntime.h) not found ($TensorRT_ROOT/include, .trt/include, "
                       "/usr/include[/x86_64-linux-gnu])")
    if not facts.get("nvinfer_libraries"):
        missing.append("TensorRT's libraries (libnvinfer.so) not found ($TensorRT_ROOT/lib, .trt/lib, system folders, "
                       "the tensorrt_libs wheel)")
    if not facts.get("python_probe", {}).get("tensorrt") and not facts.get("trtexec"):
        missing.append("neither TensorRT's Python package nor trtexec is present")
    skip_if_missing(missing)


def load_checks(context: Context) -> tuple[dict, list[str]]:
    """Each library flavour loaded in a process of its own, as its loaders do; results and failures."""
    results, failures = {}, []
    flavours = [("load_library", context.built["plugin_library"])]
    if context.built.get("autoreg_library"):
        flavours.append(("dlopen", context.built["autoreg_library"]))
    for mode, library in flavours:
        command = context.run([sys.executable, "-m", "gpu_check.engines", "load", "--library", library,
                               "--mode", mode], LOAD_LIMIT, env=python_env())
        line = next((text for text in command.output.splitlines() if text.startswith("RESULT ")), None)
        results[mode] = json.loads(line[len("RESULT "):]) if line else {"error": command.tail()}
        if command.returncode != 0:
            failures.append(f"{Path(library).name} via {mode}: registry holds "
                            f"{results[mode].get('registered', '?')} ({command.tail(1)})")
    return results, failures


def engine_summary(report: dict) -> dict:
    """The per-engine figures worth a glance (the full result is tensorrt.json)."""
    summary = {}
    for key, engine in report.get("engines", {}).items():
        if "skipped" in engine:
            summary[key] = {"skipped": engine["skipped"]}
            continue
        agreement = engine.get("label_agreement_vs_onnxruntime") or []
        profile = engine.get("profile", {})
        summary[key] = {"passed": engine.get("passed"), "min_label_agreement": min(agreement, default=None),
                        "token_counts_equal": engine.get("token_counts_equal"),
                        "latency_ms": engine.get("latency_ms_batch", {}).get("median"),
                        "plugin_share": profile.get("plugin_share"), "build_seconds": engine.get("build_seconds"),
                        "plugin_layers": len(engine.get("plugin_layers_in_engine") or []),
                        "failures": engine.get("failures", [])[:3]}
    return summary


def python_engines(context: Context) -> tuple[dict, list[str]]:
    """The fixture engines through TensorRT's Python API (gpu_check.engines); figures and failures."""
    result = context.out / "tensorrt.json"
    command = context.run([sys.executable, "-m", "gpu_check.engines", "engines", "--plugins",
                           context.built["plugin_library"], "--fixtures", FIXTURES, "--work",
                           context.build / "engines", "--result", result], ENGINES_LIMIT, env=python_env())
    if not result.is_file():
        state = "timed out" if command.timed_out else f"exit {command.returncode}"
        return {}, [f"the engine checks wrote no result ({state}): {command.tail()}"]
    report = json.loads(result.read_text())
    return {"tensorrt": report.get("tensorrt"), "engines": engine_summary(report)}, list(report.get("failures", []))


def trtexec_check(context: Context) -> tuple[dict, list[str]]:
    """trtexec builds and times the FP16 fixture engine with the plugins loaded as trtexec loads them:
    --staticPlugins (self-registering flavour) when it was built, else --dynamicPlugins; the plugins' share
    of the layer times from --exportProfile."""
    trtexec = context.facts["trtexec"]
    usage = context.run([trtexec, "--help"], 30).output
    batch_shape = "images:4x3x256x256"
    profile = context.build / "trtexec_profile.json"
    args = [trtexec, f"--onnx={FIXTURES / GRAPHS['fp16']}", f"--shapes={batch_shape}", "--iterations=50",
            "--warmUp=200", "--duration=0", f"--exportProfile={profile}", "--profilingVerbosity=detailed"]
    if "--stronglyTyped" in usage:
        args.append("--stronglyTyped")
    if context.built.get("autoreg_library") and "--staticPlugins" in usage:
        loader = "--staticPlugins"
        args.append(f"--staticPlugins={context.built['autoreg_library']}")
    else:
        loader = "--dynamicPlugins"
        args.append(f"--dynamicPlugins={context.built['plugin_library']}")
    command = context.run(args, TRTEXEC_LIMIT)
    figures = {"loader": loader}
    median = re.search(r"GPU Compute Time:.*?median = ([\d.]+) ms", command.output)
    figures["gpu_compute_median_ms"] = float(median.group(1)) if median else None
    if profile.is_file():
        figures.update(trtexec_plugin_share(json.loads(profile.read_text())))
    if command.returncode != 0:
        state = "timed out" if command.timed_out else f"exit {command.returncode}"
        return figures, [f"trtexec {loader} ({state}): {command.tail()}"]
    return figures, []


def trtexec_plugin_share(profile: list) -> dict:
    """The algm plugins' share of the layer times in a trtexec --exportProfile file (layers named after nodes)."""
    layers = [entry for entry in profile if isinstance(entry, dict) and "name" in entry and "averageMs" in entry]
    total = sum(entry["averageMs"] for entry in layers)
    plugin = sum(entry["averageMs"] for entry in layers if any(name in entry["name"] for name in PLUGIN_NAMES))
    return {"layers_ms": round(total, 4), "plugin_ms": round(plugin, 4),
            "plugin_share": round(plugin / total, 4) if total else None}


def tensorrt_stage(context: Context) -> dict:
    """Stage 3: plugin library + host test, loading as each loader does, FP16/INT8/INT64-size engines judged
    against ONNX Runtime, timings and the plugins' share of engine time."""
    tensorrt_prerequisites(context)
    figures = {"libraries": plugin_libraries(context)}
    failures: list[str] = []
    if context.facts.get("python_probe", {}).get("tensorrt"):
        figures["loading"], failed = load_checks(context)
        failures += failed
        engines, failed = python_engines(context)
        figures.update(engines)
        failures += failed
    else:
        figures["python"] = "skipped: TensorRT's Python package is not installed (no output comparison)"
    if context.facts.get("trtexec"):
        figures["trtexec"], failed = trtexec_check(context)
        failures += failed
    else:
        figures["trtexec"] = "skipped: trtexec not found"
    if failures:
        raise StageFailed("; ".join(failures[:3]) + (f" (+{len(failures) - 3} more)" if len(failures) > 3 else ""),
                          figures)
    return figures


def pipeline_prerequisites(context: Context) -> tuple[Path, dict]:
    """The plugin library and the environment algm-export runs in, when it can run end to end here; else
    StageSkipped listing what is missing."""
    missing = missing_gpu(context)
    probe = context.facts.get("python_probe", {})
    if not probe.get("torch"):
        missing.append(f"PyTorch is not installed ({probe.get('torch_error', 'import failed')})")
    elif not probe.get("torch_cuda"):
        missing.append("PyTorch sees no CUDA GPU (torch.cuda.is_available() is False)")
    if not probe.get("tensorrt"):
        missing.append(f"TensorRT's Python package is not installed ({probe.get('tensorrt_error', '')})")
    library = context.built.get("plugin_library")
    if not library or not Path(library).is_file():
        missing.append("no plugin library (the tensorrt stage did not build it)")
    skip_if_missing(missing)
    env = python_env(package_shim(context))
    command = context.run([sys.executable, "-c", "import algm_export.cli, algm_export.bench, algm_export.pipeline"],
                          60, env=env)
    if command.returncode != 0:
        raise StageSkipped(f"algm_export's dependencies are not all installed: {command.tail(1)}")
    return Path(library), env


def parity_statuses(report: dict) -> dict:
    """report.json's parity entries as passed / failed / skipped."""
    statuses = {}
    for backend, entry in report.get("parity", {}).items():
        statuses[backend] = "skipped" if "skipped" in entry else "passed" if entry.get("passed") else "failed"
    return statuses


def pipeline_stage(context: Context) -> dict:
    """Stage 4: the micro sample checkpoint through algm-export export (FP16 + INT8) -> engine build -> verify,
    then the bench with its GPU rows."""
    library, env = pipeline_prerequisites(context)
    folder = context.build / "pipeline"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    checkpoint = folder / "micro"
    context.require(context.run([sys.executable, REPO_ROOT / "samples" / "make_sample_checkpoint.py", checkpoint,
                                 "--preset", "micro", "--image-size", "256"], CHECKPOINT_LIMIT, env=env),
                    "making the micro sample checkpoint")
    export = context.run([sys.executable, "-m", "algm_export", checkpoint / "checkpoint.pth", "-o", folder / "out",
                          "--fp16", "--int8", "--plugin-lib", library, "--batch", "1,4,8"], EXPORT_LIMIT,
                         env=env)
    figures = {"export_seconds": round(export.seconds, 1), "export_exit": export.returncode}
    report_path = folder / "out" / "report.json"
    if report_path.is_file():
        report = json.loads(report_path.read_text())
        shutil.copyfile(report_path, context.out / "pipeline_report.json")
        figures["tensorrt"] = report.get("tensorrt", {}).get("status")
        figures["int8_tensorrt"] = report.get("int8", {}).get("tensorrt", {}).get("status")
        figures["parity"] = parity_statuses(report)
    context.require(export, "algm-export export/build/verify", figures)
    bench = context.run([sys.executable, "-m", "algm_export", "bench", checkpoint / "checkpoint.pth", "-o",
                         folder / "bench", "--batches", "1,8", "--runs", "10", "--warmup", "3", "--fp16",
                         "--plugin-lib", library, "--frames", "0"], BENCH_LIMIT, env=env)
    bench_report = folder / "bench" / "report.json"
    if bench_report.is_file():
        speed = json.loads(bench_report.read_text()).get("speed", {})
        shutil.copyfile(bench_report, context.out / "bench_report.json")
        figures["bench_rows"] = [{k: row.get(k) for k in ("backend", "precision", "batch", "latency_ms")}
                                 for row in speed.get("rows", [])]
        figures["bench_tensorrt"] = speed.get("tensorrt", {}).get("status")
    context.require(bench, "algm-export bench", figures)
    failed = [name for name, status in figures.get("parity", {}).items() if status == "failed"]
    if failed:
        raise StageFailed(f"parity failed for {', '.join(failed)}", figures)
    return figures
