"""Command-line arguments of every subcommand, in plain argparse (no torch import: the parsers are built
before the heavy modules load, so ``--help`` and syntax errors are instant)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import NoReturn

from . import backends
from .artifacts import DEFAULT_OUTPUTS, parse_outputs
from .calibration.scopes import (
    AFTER_MERGE,
    ALL_LINEAR,
    CALIBRATION_METHODS,
    DEFAULT_ALPHA,
    DEFAULT_METHOD,
    DEFAULT_SCOPE,
)
from .config import BATCH_RULES
from .errors import AlgmExportError

DEFAULT_OUTPUT = "algm_export_out"
DEFAULT_PREDICT_OUTPUT = "predictions"
DEFAULT_PREDICT_BATCH = 4
DEFAULT_EVAL_OUTPUT = "eval_out"


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


ENGINES = tuple(backends.ENGINES)  # the TensorRT engines `build` makes, by their --engines names


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
                        help="libalgm_plugins.so (default: $ALGM_PLUGIN_LIBRARY, then build/trt/ or "
                             "build/plugins/trt/)")
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
                      help="calibration images (default: 4 bundled photos disjoint from the verification photos; "
                           "use a few hundred of yours)")
    int8.add_argument("--calib-count", type=int, metavar="N", help="calibrate on the first N images (default: all)")
    add_int8_scope_argument(int8)
    add_calib_method_argument(int8)
    int8.add_argument("--smooth-alpha", type=float, default=DEFAULT_ALPHA, metavar="A",
                      help="SmoothQuant: move activation outliers into the weights of the LayerNorm -> Linear pairs of "
                           f"the scope with strength A in [0, 1), e.g. 0.5 (default {DEFAULT_ALPHA:g}: off; it did not "
                           "help on the models measured, see docs/int8.md)")


def add_calib_method_argument(parser) -> None:
    """``--calib-method`` (checked when the command runs: a bad value is a one-line error)."""
    parser.add_argument("--calib-method", default=DEFAULT_METHOD, metavar="METHOD",
                        help=f"activation ranges from ONNX Runtime's calibration: {', '.join(CALIBRATION_METHODS)} "
                             f"(default {DEFAULT_METHOD}: the largest value seen; percentile: 99.999th percentile; "
                             "entropy: KL-divergence of histograms)")


def add_int8_scope_argument(parser) -> None:
    """``--int8-scope`` (checked when the command runs: a bad value is a one-line error)."""
    parser.add_argument("--int8-scope", default=DEFAULT_SCOPE, metavar="SCOPE",
                        help=f"upper bound on the Linear layers to quantize: {AFTER_MERGE} (default: only those no "
                             f"merge decision depends on, token maps unchanged) or {ALL_LINEAR} (faster, but merges "
                             "may change); within it, the MatMuls most sensitive on the calibration images stay float "
                             "until the labels hold (the summary says 'N of M MatMuls INT8')")


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
                        help=f"libalgm_ort_ops.so: also run {backends.ORT_OPS.graph} with its algm nodes on our C++ "
                             f"kernels inside ONNX Runtime (parity entry {backends.ORT_OPS.name}, "
                             f"{backends.ORT_OPS.precision.upper()} criteria)")


def add_build_arguments(parser: argparse.ArgumentParser) -> None:
    """``algm-export build MODEL -o DIR``."""
    add_model_arguments(parser)
    add_output_argument(parser)
    add_verify_arguments(parser)
    add_engine_arguments(parser)
    parser.add_argument("--engines", type=parse_engines, metavar="LIST",
                        help="engines to build, comma-separated: "
                             + ", ".join(f"{name} (from {kind.graph})" for name, kind in backends.ENGINES.items())
                             + " (default: every engine whose graph is in the output folder)")


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
    add_calib_method_argument(parser)
    parser.add_argument("--frames", type=int, default=4, metavar="N",
                        help="1920x1080 video frames for the end-to-end predict timing (default 4; 0: skip)")
    parser.add_argument("--plugin-lib", type=Path, metavar="SO",
                        help="libalgm_plugins.so for the TensorRT rows (default: $ALGM_PLUGIN_LIBRARY, then build/trt/ "
                             "or build/plugins/trt/)")


def add_predict_arguments(parser: argparse.ArgumentParser) -> None:
    """``algm-export predict MODEL INPUT... -o DIR``."""
    parser.add_argument("model", metavar="MODEL", type=path_or_uri, help="model.onnx, model.fp16.plan or a checkpoint")
    parser.add_argument("inputs", metavar="INPUT", type=path_or_uri, nargs="*",
                        help="image files, folders, video files (with --ray also URIs: s3://bucket/photos/)")
    parser.add_argument("--server", metavar="URL", help="segment through a running server (algm-export serve or "
                        "Triton on an algm-export triton repository) at its gRPC address, e.g. 127.0.0.1:8001; "
                        "then every positional argument is an INPUT (no MODEL)")
    parser.add_argument("-o", "--output", type=path_or_uri, default=Path(DEFAULT_PREDICT_OUTPUT), metavar="DIR",
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
    parser.add_argument("--ort-ops", type=Path, metavar="LIB",
                        help="libalgm_ort_ops.so: run an ONNX graph's algm nodes (model.trt.onnx) on our C++ kernels "
                             "inside ONNX Runtime")
    parser.add_argument("-v", "--verbose", action="store_true", help="full tracebacks")
    add_ray_arguments(parser)
    add_test_time_arguments(parser)


def is_uri(text: str) -> bool:
    """``scheme://...`` (a pyarrow file system URI such as s3://bucket/key; a Windows drive is not a scheme)."""
    scheme, separator, _ = text.partition("://")
    return bool(separator) and len(scheme) > 1 and scheme.replace("+", "").isalnum()


def path_or_uri(text: str) -> Path | str:
    """argparse type: a URI stays a string (``Path`` would fold its ``//``), anything else is a Path."""
    return text if is_uri(text) else Path(text)


def positive_float(text: str) -> float:
    """argparse type of a resource amount: a number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def add_ray_arguments(parser: argparse.ArgumentParser) -> None:
    """``predict --ray``: the same files written by a pool of Ray actors (algm_export/distributed.py)."""
    ray = parser.add_argument_group("Ray (pip install 'algm-export[ray]'; README: Segmenting on a Ray cluster)")
    ray.add_argument("--ray", nargs="?", const="", metavar="ADDRESS",
                     help="run on Ray: bare --ray uses $RAY_ADDRESS or the Ray started on this machine (ray start), "
                          "else starts a local one; 'auto' requires a running cluster; HOST:PORT names one. Writes "
                          "DIR/manifest.jsonl too (one row per image or frame, skipped inputs with their reason)")
    ray.add_argument("--ray-actors", type=positive_int, metavar="N",
                     help="actors, each holding one model (default: as many as the cluster's CPUs, or GPUs with "
                          "--ray-gpus, allow)")
    ray.add_argument("--ray-cpus", type=positive_float, default=1.0, metavar="X",
                     help="CPUs reserved per actor, fractions allowed (default 1)")
    ray.add_argument("--ray-gpus", type=positive_float, metavar="X",
                     help="GPUs per actor (e.g. 1 with a TensorRT engine; default none)")
    ray.add_argument("--ray-threads", type=positive_int, metavar="N",
                     help="ONNX Runtime/PyTorch threads per actor (default: --ray-cpus rounded, at least 1)")
    ray.add_argument("--ray-batch", type=positive_int, default=4, metavar="N",
                     help="inputs handed to an actor at a time (default 4; a video counts as one)")
    ray.add_argument("--resume", action="store_true",
                     help="with --ray: skip images and frames whose output files are complete already (rerun an "
                          "interrupted job with the same command plus --resume)")


def add_test_time_arguments(parser: argparse.ArgumentParser) -> None:
    """``--resize``, ``--multiscale``, ``--flip`` (predict and eval): the research code's test-time options."""
    views = parser.add_argument_group("resize and test-time views (the research protocol)")
    views.add_argument("--resize", choices=("opencv", "pil"), default="opencv",
                       help="image resize: opencv (default: bilinear without antialiasing, bit for bit as mmcv/cv2 "
                            "in the research data pipeline) or pil (PIL bilinear, antialiased when shrinking)")
    views.add_argument("--multiscale", action="store_true",
                       help="the research --multiscale: the image at 0.5, 0.75, 1.0, 1.25, 1.5, 1.75 x im_size, each "
                            "also flipped; the 12 views' softmax maps averaged (20-30x the windows of one view)")
    views.add_argument("--flip", action="store_true",
                       help="average the softmax maps of the image and its horizontal flip (implied by --multiscale)")


def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    """``algm-export eval MODEL [GRAPH_OR_ENGINE ...] --data ROOT --dataset NAME``."""
    parser.add_argument("model", metavar="MODEL", type=Path, help="the checkpoint (PyTorch rows: ALGM and dense)")
    parser.add_argument("graphs", metavar="GRAPH_OR_ENGINE", type=Path, nargs="*",
                        help="exported graphs (.onnx), engines (.plan) or an export folder (its model.onnx, "
                             "model.int8.onnx and engines)")
    parser.add_argument("--data", type=Path, required=True, metavar="ROOT", help="the dataset's root folder")
    parser.add_argument("--dataset", required=True, choices=("ade20k", "cityscapes", "pascal_context", "folder"),
                        help="its layout (see above)")
    parser.add_argument("--split", metavar="NAME", help="split folder or list (default: validation for ade20k, "
                        "val for cityscapes and pascal_context)")
    parser.add_argument("--reference", choices=("labels", "pytorch"), default="labels",
                        help="score against the annotations (default) or against PyTorch's own labels (any folder "
                             "of images, no annotations needed)")
    parser.add_argument("--limit", type=int, metavar="N", help="the first N images only")
    parser.add_argument("-o", "--output", type=Path, default=Path(DEFAULT_EVAL_OUTPUT), metavar="DIR",
                        help=f"folder for eval.json, per_class.csv, confusion_*.png (default ./{DEFAULT_EVAL_OUTPUT}/)")
    parser.add_argument("--batch", type=int, default=DEFAULT_PREDICT_BATCH, metavar="N",
                        help=f"windows per model run (default {DEFAULT_PREDICT_BATCH})")
    parser.add_argument("--trust-checkpoint", action="store_true",
                        help="allow checkpoints that need code to unpickle (only for files you trust)")
    parser.add_argument("-v", "--verbose", action="store_true", help="full tracebacks")
    add_test_time_arguments(parser)
