"""Command-line arguments of every subcommand, in plain argparse (no torch import: the parsers are built
before the heavy modules load, so ``--help`` and syntax errors are instant)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import NoReturn

from .calibration.scopes import AFTER_MERGE, ALL_LINEAR, DEFAULT_SCOPE
from .config import BATCH_RULES
from .errors import AlgmExportError
from .artifacts import DEFAULT_OUTPUTS, parse_outputs

PROG = "algm-export"
DEFAULT_OUTPUT = "algm_export_out"
DEFAULT_PREDICT_OUTPUT = "predictions"
DEFAULT_PREDICT_BATCH = 4


class UsageError(Exception):
    """A command-line syntax error; the CLI prints it in one line and exits with code 2."""


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors raise :class:`UsageError` instead of printing the usage block."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: error: {' '.join(message.split())} (see {self.prog} --help)")


def parse_size(text: str) -> tuple[int, int]:
    """``512`` or ``512x640`` (height x width)."""
    parts = text.lower().replace(",", "x").split("x")
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected SIZE or HEIGHTxWIDTH, got {text!r}") from None
    if len(values) not in (1, 2) or min(values) <= 0:
        raise argparse.ArgumentTypeError(f"expected SIZE or HEIGHTxWIDTH with positive sizes, got {text!r}")
    return (values[0], values[-1])


def parse_ints(text: str) -> tuple[int, ...]:
    """A comma-separated list of positive integers (``1,5``)."""
    try:
        values = tuple(int(p) for p in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) <= 0:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def parse_batch_range(text: str) -> tuple[int, int, int]:
    """``N`` or ``MIN,OPT,MAX`` batch sizes for engine optimization profiles."""
    values = parse_ints(text)
    if len(values) == 1:
        values = values * 3
    if len(values) != 3 or not values[0] <= values[1] <= values[2]:
        raise argparse.ArgumentTypeError(f"expected N or MIN,OPT,MAX with MIN <= OPT <= MAX, got {text!r}")
    return values


ENGINES = ("fp16", "int8")  # the TensorRT engines `build` makes (algm_export.pipeline.ENGINE_KINDS)


def parse_engines(text: str) -> tuple[str, ...]:
    """A comma-separated subset of :data:`ENGINES` (``fp16,int8``), in :data:`ENGINES` order."""
    names = {name.strip() for name in text.lower().split(",")}
    if not names <= set(ENGINES):
        raise argparse.ArgumentTypeError(f"expected a comma-separated subset of {','.join(ENGINES)}, got {text!r}")
    return tuple(name for name in ENGINES if name in names)


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments every subcommand takes: the checkpoint and how to read it."""
    parser.add_argument("model", metavar="MODEL", type=Path, help="checkpoint.pth (+ variant.yml) or a bundle .pt")
    parser.add_argument("--trust-checkpoint", action="store_true",
                        help="allow checkpoints that need code to unpickle (only for files you trust)")
    algm = parser.add_argument_group("ALGM overrides (default: the settings stored with the checkpoint)")
    algm.add_argument("--dense", action="store_true", help="ignore ALGM: export/measure the dense model")
    algm.add_argument("--layers", type=parse_ints, metavar="L1,L2",
                      help="1-based encoder blocks that merge: CLAP in the first, GBM in the others (e.g. 1,5)")
    algm.add_argument("--window", type=parse_size, metavar="HxW", help="CLAP window, e.g. 2x2")
    algm.add_argument("--threshold", type=float, help="CLAP similarity threshold, in (0, 1.5]")
    algm.add_argument("--batch-rule", choices=BATCH_RULES,
                      help="per-image: each image of a batch merges as it would alone (the default for research "
                           "checkpoints); min: the published rule, r = minimum over the batch")
    parser.add_argument("--image-size", type=parse_size, metavar="HxW",
                        help="input size of the exported graphs (default: the training size)")
    parser.add_argument("-v", "--verbose", action="store_true", help="full tracebacks and detailed progress")


def add_output_argument(parser: argparse.ArgumentParser) -> None:
    """``-o/--output``."""
    parser.add_argument("-o", "--output", type=Path, default=Path(DEFAULT_OUTPUT), metavar="DIR",
                        help=f"output folder (default: ./{DEFAULT_OUTPUT}/; its parent must exist)")


def add_verify_arguments(parser: argparse.ArgumentParser) -> None:
    """Which images verification uses."""
    parser.add_argument("--images", type=Path, metavar="DIR",
                        help="verify on the images in DIR instead of the bundled sample photos")
    parser.add_argument("--verify-batch", type=int, default=4, metavar="N",
                        help="size of the mixed batch used for verification (default 4)")


def add_engine_arguments(parser: argparse.ArgumentParser) -> None:
    """TensorRT engine settings."""
    engine = parser.add_argument_group("TensorRT engine (built where TensorRT and a GPU exist)")
    engine.add_argument("--batch", type=parse_batch_range, default=(1, 8, 32), metavar="MIN,OPT,MAX",
                        help="batch sizes of the optimization profile (default 1,8,32)")
    engine.add_argument("--plugin-lib", type=Path, metavar="SO",
                        help="libalgm_plugins.so (default: $ALGM_PLUGIN_LIBRARY, then build/trt/ or build/plugins/trt/)")
    engine.add_argument("--workspace", type=int, default=4096, metavar="MB",
                        help="builder workspace limit in MiB (default 4096)")
    engine.add_argument("--timing-cache", type=Path, metavar="FILE",
                        help="timing cache reused across builds (default: OUTPUT/timing.cache)")


def add_int8_arguments(parser: argparse.ArgumentParser) -> None:
    """``--int8`` and its calibration settings."""
    int8 = parser.add_argument_group("INT8 (Q/DQ graphs calibrated on real images)")
    int8.add_argument("--int8", action="store_true",
                      help="also write model.int8.onnx (ONNX Runtime) and, with --fp16, model.fp16.int8.onnx "
                           "(TensorRT 11, strongly typed), verify them, build the INT8 engine where TensorRT exists")
    int8.add_argument("--calib-images", type=Path, metavar="DIR",
                      help="calibration images (default: the bundled sample photos; use a few hundred of yours)")
    int8.add_argument("--calib-count", type=int, metavar="N", help="calibrate on the first N images (default: all)")
    add_int8_scope_argument(int8)


def add_int8_scope_argument(parser) -> None:
    """``--int8-scope`` (checked when the command runs: a bad value is a one-line error)."""
    parser.add_argument("--int8-scope", default=DEFAULT_SCOPE, metavar="SCOPE",
                        help=f"which Linear layers to quantize: {AFTER_MERGE} (default: only those no merge "
                             f"decision depends on, token maps unchanged) or {ALL_LINEAR} (faster, but merges may change and labels "
                             "often fall below the 0.99 INT8 verification gate: the run then exits 1)")


def output_choice(text: str) -> tuple[str, ...]:
    """argparse type of ``--outputs``."""
    try:
        return parse_outputs(text)
    except AlgmExportError as error:
        raise argparse.ArgumentTypeError(str(error).removeprefix("--outputs: ")) from None


def add_export_arguments(parser: argparse.ArgumentParser) -> None:
    """``algm-export [export] MODEL``: the whole pipeline."""
    add_model_arguments(parser)
    add_output_argument(parser)
    add_verify_arguments(parser)
    add_engine_arguments(parser)
    parser.add_argument("--fp16", action="store_true",
                        help="also write model.fp16.onnx (FP16 with merge maths, norms and softmax in FP32), "
                             "verify it, and build the FP16 TensorRT engine where TensorRT is available")
    parser.add_argument("--outputs", type=output_choice, default=DEFAULT_OUTPUTS, metavar="NAMES",
                        help="deployment outputs of the graphs, comma-separated: labels ([B,H,W] int32 class index), "
                             "scores ([B,n_cls,h,w] patch-grid logits, what sliding windows average), logits "
                             "([B,n_cls,H,W] float32, 157 MB per 512x512 image at 150 classes). Default: labels,scores "
                             "(docs/outputs.md)")
    add_int8_arguments(parser)
    parser.add_argument("--dry-run", action="store_true",
                        help="check the checkpoint, settings, images and output folder, print the summary, "
                             "write nothing")


def add_verify_command_arguments(parser: argparse.ArgumentParser) -> None:
    """``algm-export verify MODEL -o DIR``."""
    add_model_arguments(parser)
    add_output_argument(parser)
    add_verify_arguments(parser)
    parser.add_argument("--ort-ops", type=Path, metavar="LIB",
                        help="libalgm_ort_ops.so: also run model.trt.onnx with its algm nodes on our C++ kernels "
                             "inside ONNX Runtime (parity entry onnxruntime_algm_ops, FP32 criteria)")


def add_build_arguments(parser: argparse.ArgumentParser) -> None:
    """``algm-export build MODEL -o DIR``."""
    add_model_arguments(parser)
    add_output_argument(parser)
    add_verify_arguments(parser)
    add_engine_arguments(parser)
    parser.add_argument("--engines", type=parse_engines, metavar="LIST",
                        help="engines to build: fp16 (from model.fp16.onnx), int8 (from model.fp16.int8.onnx) or "
                             "fp16,int8 (default: every engine whose graph is in the output folder)")


def add_bench_arguments(parser: argparse.ArgumentParser) -> None:
    """``algm-export bench MODEL``: the speed table."""
    add_model_arguments(parser)
    add_output_argument(parser)
    parser.add_argument("--batches", type=parse_ints, default=(1, 8), metavar="B1,B2",
                        help="batch sizes to time (default 1,8)")
    parser.add_argument("--runs", type=int, default=20, help="timed runs per measurement (default 20)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs first (default 3)")
    parser.add_argument("--fp16", action="store_true", help="also time the FP16 graph in ONNX Runtime")
    parser.add_argument("--images", type=Path, metavar="DIR", help="photos to fill batches with (default: samples)")
    parser.add_argument("--int8", action="store_true",
                        help="also time the INT8 Q/DQ graphs (dense and ALGM) in ONNX Runtime, calibrated on --images")
    add_int8_scope_argument(parser)
    parser.add_argument("--frames", type=int, default=4, metavar="N",
                        help="1920x1080 video frames for the end-to-end predict timing (default 4; 0: skip)")
    parser.add_argument("--plugin-lib", type=Path, metavar="SO",
                        help="libalgm_plugins.so for the TensorRT rows (default: $ALGM_PLUGIN_LIBRARY, then build/trt/ "
                             "or build/plugins/trt/)")


def add_predict_arguments(parser: argparse.ArgumentParser) -> None:
    """``algm-export predict MODEL INPUT... -o DIR``."""
    parser.add_argument("model", metavar="MODEL", type=Path, help="model.onnx, model.fp16.plan or a checkpoint")
    parser.add_argument("inputs", metavar="INPUT", type=Path, nargs="*", help="image files, folders, video files")
    parser.add_argument("--server", metavar="URL", help="segment through a running server (algm-export serve or "
                        "Triton on an algm-export triton repository) at its gRPC address, e.g. 127.0.0.1:8001; "
                        "then every positional argument is an INPUT (no MODEL)")
    parser.add_argument("-o", "--output", type=Path, default=Path(DEFAULT_PREDICT_OUTPUT), metavar="DIR",
                        help=f"folder for the PNGs (default ./{DEFAULT_PREDICT_OUTPUT}/; created if missing)")
    parser.add_argument("--batch", type=int, default=DEFAULT_PREDICT_BATCH, metavar="N",
                        help="windows per model run (windows of consecutive images share batches; default "
                             f"{DEFAULT_PREDICT_BATCH})")
    parser.add_argument("--im-size", type=int, metavar="PX", help="short side images are resized to "
                        "(default: the model's im_size from the checkpoint's inference_kwargs)")
    parser.add_argument("--window-stride", type=int, metavar="PX", help="distance between windows (default: the "
                        "model's window_stride)")
    parser.add_argument("--every", type=int, default=1, metavar="N", help="segment every N-th video frame (default 1)")
    parser.add_argument("--overlay", action="store_true",
                        help="also write <stem>_overlay.png: the image with class colours and a legend")
    parser.add_argument("--show-merges", action="store_true",
                        help="also write <stem>_merges.png: where ALGM merged tokens in each window (ALGM models)")
    parser.add_argument("--trust-checkpoint", action="store_true",
                        help="allow checkpoints that need code to unpickle (only for files you trust)")
    parser.add_argument("-v", "--verbose", action="store_true", help="full tracebacks")
