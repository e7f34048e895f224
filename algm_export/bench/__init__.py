"""Speed table: PyTorch eager vs ONNX Runtime, dense vs ALGM, on real photos.

    python -m algm_export.bench MODEL [-o DIR] [--batches 1,8] [--runs 20]
    algm-export bench MODEL ...

Exports the dense and the ALGM graph of MODEL into DIR/bench/, then times every backend in this one process (on a
machine with TensorRT, a GPU and the plugin library also PyTorch on the GPU and the dense and ALGM FP16 engines; run
`--batches 1,32` there): warm-up runs, then the median of ``--runs`` runs per (backend, batch). Every batch size
runs the same ``max(--batches)`` images, the sample photos and two flat ones in turn (:mod:`.images`; a mixed batch
whose token counts spread over 3:1, each image merging as alone under the per-image rule). Also reports the FLOP
ratio dense/ALGM from the measured per-image token counts, the speedup over it, the share of padded work per batch
and, from ONNX Runtime's profiler, the share of ALGM time spent in the merge/unmerge nodes (with ``--int8`` also
what INT8 can reach on this CPU: :mod:`algm_export.profiling`). The table is printed and stored under ``speed``
in report.json.

Modules: :mod:`.timing` (CPU medians, interleaved backends, output choices), :mod:`.gpu_timing` (CUDA-event rows),
:mod:`.predict_timing` (``predict`` on 1080p video), :mod:`.machine`, :mod:`.run` (the benchmark),
:mod:`.records` (the report entry), :mod:`.tables` (the printed table), :mod:`.images` (what it runs),
:mod:`.command` (the CLI command).
"""

from .command import bench_command, main
from .records import speed_record
from .run import run_benchmark
from .tables import speed_table
from .timing import Timing, time_interleaved

__all__ = ["Timing", "bench_command", "main", "run_benchmark", "speed_record", "speed_table", "time_interleaved"]
