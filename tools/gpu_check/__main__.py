"""tools/gpu_check.sh's driver: everything only a GPU can show, in one bounded run.

    tools/gpu_check.sh [--budget SECONDS] [--out DIR] [--work DIR] [--stages LIST]
                                            (= PYTHONPATH=tools python3 -m gpu_check ...)

Stages, in order, each bounded in time (the whole run by --budget, default 450 s):

1. machine       record nvidia-smi, driver, nvcc, CMake, TensorRT (headers, libraries, Python, trtexec), packages
2. cuda_kernels  build plugins/ for the card present (CMAKE_CUDA_ARCHITECTURES=native), run algm_cuda_check
3. tensorrt      plugin libraries + host test, loading as loadLibrary / dlopen (polygraphy, trtexec
                 --staticPlugins, Triton) do, FP16 / INT8 / INT64-size engines from tools/gpu_check/fixtures/
                 judged against ONNX Runtime's stored outputs, timings, the plugins' share of engine time
4. pipeline      algm-export export -> build -> verify -> bench on the micro sample checkpoint

A stage that cannot run here is skipped with its reason. Writes summary.json, summary.txt and gpu_check.log
(plus cuda_check.txt, tensorrt.json, pipeline_report.json, bench_report.json when those stages ran) to
$OUT when set, else build/gpu_check/out. Exit 0 unless a stage that ran failed (1); 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from .context import REPO_ROOT, Context, StageFailed, StageSkipped
from .machine import record_machine
from .native import cuda_kernels
from .stages import pipeline_stage, tensorrt_stage

DEFAULT_BUDGET = 450  # seconds; tools/gpu_check.sh kills the run at 480 (the 8 minutes)
SCHEMA = 1


@dataclass
class StageResult:
    """One stage's outcome: passed / failed / skipped, why, how long, what it measured."""

    name: str
    status: str
    reason: str
    seconds: float
    figures: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Stage:
    """A stage: its name, what it does (for the table), its function and the least time it needs."""

    name: str
    title: str
    run: Callable[[Context], dict]
    minimum_seconds: float


STAGES = (
    Stage("machine", "record the machine", record_machine, 5),
    Stage("cuda_kernels", "CUDA kernels == CPU kernels (algm_cuda_check)", cuda_kernels, 60),
    Stage("tensorrt", "TensorRT plugins, loaders, fixture engines vs ONNX Runtime", tensorrt_stage, 60),
    Stage("pipeline", "algm-export export -> build -> verify -> bench", pipeline_stage, 90),
)
NAMES = tuple(stage.name for stage in STAGES)


def run_stage(context: Context, stage: Stage) -> StageResult:
    """Run one stage within what is left of the budget; any exception is that stage's failure."""
    start = time.monotonic()
    if context.remaining() < stage.minimum_seconds:
        return StageResult(stage.name, "skipped", f"time budget spent ({context.remaining():.0f} s left, the stage "
                                                  f"needs at least {stage.minimum_seconds:.0f} s)", 0.0)
    context.log(f"\n== {stage.name}: {stage.title}")
    try:
        figures = stage.run(context)
        result = StageResult(stage.name, "passed", "", 0.0, figures)
    except StageSkipped as skipped:
        result = StageResult(stage.name, "skipped", str(skipped), 0.0, skipped.figures)
    except StageFailed as failed:
        result = StageResult(stage.name, "failed", str(failed), 0.0, failed.figures)
    except Exception as error:  # noqa: BLE001 - a crash of the check is that stage's failure, recorded
        context.log(traceback.format_exc())
        result = StageResult(stage.name, "failed", f"{type(error).__name__}: {error}", 0.0)
    result.seconds = round(time.monotonic() - start, 1)
    context.log(f"== {stage.name}: {result.status}{': ' + result.reason if result.reason else ''} "
                f"({result.seconds} s)")
    return result


def summary_table(results: list[StageResult]) -> str:
    """The short text table of summary.txt."""
    lines = [f"{'stage':<13} {'status':<8} {'seconds':>7}  reason / figures", "-" * 100]
    for result in results:
        detail = result.reason or headline(result)
        lines.append(f"{result.name:<13} {result.status:<8} {result.seconds:>7.1f}  {detail}")
    return "\n".join(lines)


def headline(result: StageResult) -> str:
    """One line of a passed stage's figures."""
    figures = result.figures
    if result.name == "machine":
        return (f"GPU {figures.get('gpu') or '-'}, driver {figures.get('driver') or '-'}, "
                f"{figures.get('nvcc_version') or 'no nvcc'}, TensorRT headers "
                f"{figures.get('tensorrt_header_version') or '-'}, python TensorRT "
                f"{figures.get('python_probe', {}).get('tensorrt') or '-'}")
    if result.name == "cuda_kernels":
        return (f"{figures.get('comparisons')} comparisons, {figures.get('mismatches')} mismatches on "
                f"{figures.get('gpu')}")
    if result.name == "tensorrt":
        engines = figures.get("engines", {})
        return "; ".join(f"{key}: labels >= {engine.get('min_label_agreement')}, {engine.get('latency_ms')} ms, "
                         f"plugins {engine.get('plugin_share')}" for key, engine in engines.items()
                         if "skipped" not in engine) or json.dumps(figures.get("trtexec"))[:100]
    if result.name == "pipeline":
        return f"parity {figures.get('parity')}"
    return ""


def write_summary(context: Context, results: list[StageResult], started: float, finished: bool) -> None:
    """summary.json and summary.txt under the output folder (rewritten after every stage)."""
    summary = {
        "schema": SCHEMA,
        "finished": finished,
        "seconds": round(time.monotonic() - started, 1),
        "budget_seconds": context.budget,
        "gpu": context.facts.get("gpu"),
        "exit_code": exit_code(results),
        "stages": {result.name: asdict(result) for result in results},
    }
    (context.out / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    (context.out / "summary.txt").write_text(summary_table(results) + "\n")


def exit_code(results: list[StageResult]) -> int:
    """1 when a stage that ran failed, else 0."""
    return 1 if any(result.status == "failed" for result in results) else 0


def output_folder(explicit: Path | None) -> Path:
    """--out, else $OUT, else build/gpu_check/out."""
    if explicit:
        return explicit
    if os.environ.get("OUT"):
        return Path(os.environ["OUT"])
    return REPO_ROOT / "build" / "gpu_check" / "out"


def run(out: Path, budget: float, stages: tuple[Stage, ...] = STAGES, build: Path | None = None,
        selected: set[str] | None = None) -> int:
    """Run ``stages`` (those in ``selected`` when given; the others are recorded as skipped) within ``budget``
    seconds, writing the summary into ``out``; the exit code."""
    started = time.monotonic()
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_check.log").write_text("")
    build = build or REPO_ROOT / "build" / "gpu_check"
    build.mkdir(parents=True, exist_ok=True)
    context = Context(out=out, build=build, deadline=started + budget, budget=budget)
    results: list[StageResult] = []
    for stage in stages:
        if selected is not None and stage.name not in selected:
            result = StageResult(stage.name, "skipped", "not selected (--stages)", 0.0)
        else:
            result = run_stage(context, stage)
        results.append(result)
        context.results[stage.name] = result
        write_summary(context, results, started, finished=False)
    write_summary(context, results, started, finished=True)
    print("\n" + summary_table(results))
    print(f"\nsummary: {out / 'summary.json'}")
    return exit_code(results)


def main(argv: list[str] | None = None) -> int:
    """Command line."""
    parser = argparse.ArgumentParser(prog="tools/gpu_check.sh", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", type=float, default=DEFAULT_BUDGET,
                        help=f"seconds for all stages together (default {DEFAULT_BUDGET})")
    parser.add_argument("--out", type=Path, help="output folder (default: $OUT, else build/gpu_check/out)")
    parser.add_argument("--work", type=Path, default=REPO_ROOT / "build" / "gpu_check",
                        help="build folder (default build/gpu_check)")
    parser.add_argument("--stages", help=f"comma-separated stages to run (default all: {','.join(NAMES)}); "
                        "a stage needs those before it (tensorrt needs cuda_kernels, every stage needs machine)")
    args = parser.parse_args(argv)
    if args.budget <= 0:
        parser.error("--budget must be positive")
    selected = None
    if args.stages is not None:
        selected = {name.strip() for name in args.stages.split(",") if name.strip()}
        unknown = sorted(selected - set(NAMES))
        if unknown or not selected:
            parser.error(f"--stages: unknown stage {', '.join(unknown) or '(none given)'} (known: {', '.join(NAMES)})")
    return run(output_folder(args.out), args.budget, build=args.work, selected=selected)


if __name__ == "__main__":
    sys.exit(main())
