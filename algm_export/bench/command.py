"""``algm-export bench`` / ``python -m algm_export.bench``: run the benchmark, print and store the table."""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from ..artifacts import BENCH_GRAPHS, REPORT
from ..calibration.int8 import Int8Settings
from ..checkpoints.command_line import export_size, load_model
from ..errors import AlgmExportError
from ..files import check_output_target, replaced_folder
from ..verify.report import load_report, save_report
from .images import bench_photos
from .run import run_benchmark
from .tables import speed_table


def bench_command(args: argparse.Namespace) -> int:
    """Run the benchmark, print the table, store it in report.json."""
    if args.runs < 1 or args.warmup < 0 or args.frames < 0:
        raise AlgmExportError("--runs must be >= 1, --warmup >= 0 and --frames >= 0")
    check_output_target(args.output, carries_everything=True)
    photos = bench_photos(args.images)
    model = load_model(args)
    size = export_size(model, args.image_size)
    int8 = Int8Settings(args.images, None, args.int8_scope, args.calib_method) if args.int8 else None
    if int8:
        int8.check()
    with replaced_folder(args.output, keep=None) as staging:
        speed = run_benchmark(model, staging / BENCH_GRAPHS, size, args.batches, args.runs, args.warmup, photos,
                              args.fp16, args.plugin_lib, int8, args.frames)
        print()
        print(speed_table(speed))
        report = load_report(staging)
        report["speed"] = speed
        save_report(staging, report)
    graphs = args.output / BENCH_GRAPHS
    size_mb = sum(f.stat().st_size for f in graphs.rglob("*") if f.is_file()) / 1e6
    print(f"\nstored under 'speed' in {args.output / REPORT}; the graphs it timed are in {graphs}/ "
          f"(dense/, algm/: {size_mb:.0f} MB, delete them when done)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m algm_export.bench`` = ``algm-export bench``."""
    from ..cli import main as cli_main

    return cli_main(["bench", *(sys.argv[1:] if argv is None else argv)])

