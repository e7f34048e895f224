"""The ``algm-export`` command line: argparse subcommands, one-line errors, exit codes.

This module imports no torch: SIGINT/SIGTERM handling is in place before the heavy modules load (importing
torch takes seconds), so an interrupt at any moment prints one line and exits 130 (143 for SIGTERM).
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import threading
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from . import arguments
from .arguments import Parser, UsageError
from .console import PROG
from .errors import AlgmExportError
from .evaluation import EVAL_DESCRIPTION
from .serving import arguments as serving_arguments

DESCRIPTION = """\
Deploy an ALGM/Segmenter checkpoint: load it, export ONNX graphs with explicit merge/unmerge ops,
build TensorRT engines where TensorRT and a GPU exist, and verify parity against PyTorch.

MODEL is a research checkpoint (checkpoint.pth or any name, with variant.yml beside it) or an
algm-export bundle (a single .pt file written by algm_export.save_bundle).

Writes to the output folder: model.onnx (standard ops: ONNX Runtime anywhere), model.trt.onnx (one
algm node per merge/unmerge, for the TensorRT plugins), model.fp16.onnx (--fp16), model.int8.onnx and
with --fp16 model.fp16.int8.onnx plus calibration.cache.json (--int8), the TensorRT engines
model.fp16.plan / model.fp16.int8.plan with their .json sidecars and timing.cache (where TensorRT and a GPU
exist), report.json (parity per backend), and polygraphy_* files + torch_outputs.json to re-check parity
with polygraphy.
The folder is replaced as a whole when the run succeeds; on any error or interrupt it keeps its
previous contents.

other commands (each has --help):
  algm-export verify MODEL -o DIR   re-verify the graphs in DIR against MODEL
  algm-export build MODEL -o DIR    build the TensorRT engines (FP16, INT8) from DIR's graphs, verify them
  algm-export bench MODEL -o DIR    speed table: PyTorch vs ONNX Runtime (and TensorRT), dense vs ALGM
  algm-export predict MODEL INPUT... -o DIR   segment images, folders, videos (sliding window) to PNGs
  algm-export eval MODEL [GRAPH ...] --data ROOT --dataset NAME   mIoU per backend (research protocol)
  algm-export triton DIR -o REPO    write a Triton model repository from an exported folder
  algm-export serve MODEL           serve a model with Triton on this machine (PyTriton)
(`algm-export export MODEL` is the same as `algm-export MODEL`, also for a checkpoint named like a command.)
"""

SAMPLE = "samples/checkpoints/vit_tiny/checkpoint.pth"


def epilog(checks_parity: bool, example: str = "") -> str:
    """Exit codes (1 means a failed parity check only for the commands that verify) and an example."""
    one = "a parity check failed or an internal error" if checks_parity else "an internal error"
    text = (f"exit codes: 0 success; 1 {one}; 2 bad input (one-line reason);\n"
            "130 interrupted (SIGINT), 143 terminated (SIGTERM).\n")
    return text + (f"\nexample:\n  {example}\n" if example else "")


PREDICT_DESCRIPTION = """\
Segment images and videos of any size with Segmenter's sliding window and write one class-index PNG each.

Each image is resized so that its short side is the model's im_size (keeping its aspect ratio), cut into
overlapping windows of the model's input size, the windows run in batches, their logits averaged and
resized back (docs/outputs.md).

MODEL: an exported graph (.onnx: ONNX Runtime), a TensorRT engine (.plan: TensorRT with the algm plugins)
or a checkpoint (research checkpoint.pth + variant.yml, or a bundle: PyTorch).
INPUT: image files, folders (their image and video files, sorted by name) and video files (PyAV:
pip install 'algm-export[video]').

Writes DIR/<stem>.png for every image (DIR/<video stem>_<frame>.png for video frames): one channel, pixel
value = class index (8-bit up to 256 classes, else 16-bit), at the image's own size. Unreadable images
and videos among good ones are skipped with a note.

examples:
  algm-export predict algm_export_out/model.onnx photos/ -o labels/ --overlay
  algm-export predict algm_export_out/model.onnx clip.mp4 --every 10 -o frames/ --show-merges
"""


@dataclass(frozen=True)
class Command:
    """A subcommand: its arguments, its handler (``module:function``, imported when it runs) and help."""

    add_arguments: Callable[[argparse.ArgumentParser], None]
    handler: str
    description: str
    epilog: str


COMMANDS: dict[str, Command] = {
    "export": Command(arguments.add_export_arguments, "algm_export.commands.export:export_command", DESCRIPTION,
                      epilog(True, f"algm-export {SAMPLE} --fp16 -o out/")),
    "verify": Command(arguments.add_verify_command_arguments, "algm_export.commands.export:verify_command",
                      "Compare the graphs already exported to the output folder with PyTorch FP32 and rewrite "
                      "report.json and the polygraphy files. Exits 1 when a parity check fails.",
                      epilog(True, f"algm-export verify {SAMPLE} -o algm_export_out/")),
    "build": Command(arguments.add_build_arguments, "algm_export.commands.export:build_command",
                     "Build TensorRT engines (+ JSON sidecars) from the graphs already exported to the output "
                     "folder: the FP16 engine model.fp16.plan from model.fp16.onnx and the INT8 engine "
                     "model.fp16.int8.plan from model.fp16.int8.onnx (strongly typed Q/DQ), by default each one "
                     "whose graph is there (--engines to choose), then verify them against PyTorch (INT8 with the "
                     "INT8 criterion). Each engine's outcome goes to report.json as in the export pipeline "
                     "(tensorrt, int8.tensorrt, parity). Without TensorRT or a GPU it says so in one line per "
                     "engine, records the reason and exits 0; a failed build exits 1.",
                     epilog(True, f"algm-export build {SAMPLE} -o algm_export_out/ --engines int8")),
    "predict": Command(arguments.add_predict_arguments, "algm_export.commands.predict:predict_command",
                       PREDICT_DESCRIPTION,
                       epilog(False)),
    "eval": Command(arguments.add_eval_arguments, "algm_export.evaluation.command:eval_command", EVAL_DESCRIPTION,
                    epilog(False, f"algm-export eval {SAMPLE} algm_export_out/ --data ADEChallengeData2016 "
                                  "--dataset ade20k -o eval_out/")),
    "bench": Command(arguments.add_bench_arguments, "algm_export.bench:bench_command",
                     "Speed table: PyTorch eager vs ONNX Runtime (and TensorRT where present), dense vs ALGM, "
                     "on real photos; stored under 'speed' in report.json.",
                     epilog(False, f"algm-export bench {SAMPLE} --int8 -o bench_out/")),
    "triton": Command(serving_arguments.add_triton_arguments, "algm_export.serving.repository:triton_command",
                      serving_arguments.TRITON_DESCRIPTION,
                      epilog(False, "algm-export triton algm_export_out/ -o model_repository/")),
    "serve": Command(serving_arguments.add_serve_arguments, "algm_export.serving.server:serve_command",
                     serving_arguments.SERVE_DESCRIPTION,
                     epilog(False, "algm-export serve algm_export_out/model.onnx --port 8000")),
}
DEFAULT_COMMAND = "export"


class Terminated(BaseException):
    """Raised by the SIGTERM handler so that cleanup (``finally`` blocks) runs before exit code 143."""


def _terminate(signum, frame) -> None:
    raise Terminated()


def _exit_at_once(signum, frame) -> None:
    """Signal handler while arguments parse and the heavy modules import: nothing is written yet, so exit
    at once. (A KeyboardInterrupt raised inside ``import torch`` can leave torch half-initialised and turn
    into a RecursionError on the way out.)"""
    interrupted = signum == signal.SIGINT
    os.write(2, f"{PROG}: {'interrupted' if interrupted else 'terminated'}\n".encode())
    os._exit(130 if interrupted else 143)


def build_parser() -> Parser:
    """The root parser with one subparser per command; errors raise :class:`UsageError`."""
    parser = Parser(prog=PROG, description=DESCRIPTION, epilog=COMMANDS[DEFAULT_COMMAND].epilog,
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)
    for name, command in COMMANDS.items():
        prog = PROG if name == DEFAULT_COMMAND else f"{PROG} {name}"
        sub = commands.add_parser(name, prog=prog, description=command.description, epilog=command.epilog,
                                  formatter_class=argparse.RawDescriptionHelpFormatter,
                                  help=command.description.splitlines()[0])
        command.add_arguments(sub)
    return parser


def _with_command(argv: list[str]) -> list[str]:
    """``argv`` with the subcommand made explicit: ``MODEL ...`` means ``export MODEL ...``."""
    if argv and argv[0] in COMMANDS:
        return argv
    return [DEFAULT_COMMAND, *argv]


def parse_arguments(argv: Sequence[str]) -> argparse.Namespace:
    """Parse ``argv``; a first word naming both a command and an existing file (a checkpoint called
    ``verify``) is read as the command when that parses, else as MODEL of the default command."""
    argv = list(argv)
    parser = build_parser()
    try:
        return _parse(parser, _with_command(argv))
    except UsageError:
        if argv and argv[0] in COMMANDS and Path(argv[0]).is_file():
            return _parse(parser, [DEFAULT_COMMAND, *argv])
        raise


def _parse(parser: Parser, argv: list[str]) -> argparse.Namespace:
    """``parser.parse_args``, with unknown options reported by the subcommand that was given them."""
    namespace, unknown = parser.parse_known_args(argv)
    if unknown:
        prog = command_prog(namespace.command)
        raise UsageError(f"{prog}: error: unrecognized arguments: {' '.join(unknown)} (see {prog} --help)")
    return namespace


def _handler(name: str) -> Callable[[argparse.Namespace], int]:
    module, function = COMMANDS[name].handler.split(":")
    return getattr(importlib.import_module(module), function)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``algm-export`` console script; returns the exit code."""
    in_main_thread = threading.current_thread() is threading.main_thread()
    if in_main_thread:
        previous = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
        signal.signal(signal.SIGINT, _exit_at_once)
        signal.signal(signal.SIGTERM, _exit_at_once)
    try:
        return _run(argv, in_main_thread)
    finally:
        if in_main_thread:
            for number, handler in previous.items():
                signal.signal(number, handler)


def command_prog(command: str) -> str:
    """The prefix of a subcommand's messages, the same for usage and run-time errors: ``algm-export`` for the
    default command, ``algm-export predict`` for the others."""
    return PROG if command == DEFAULT_COMMAND else f"{PROG} {command}"


def _run(argv: Sequence[str] | None, in_main_thread: bool) -> int:
    verbose, prog = False, PROG
    try:
        args = parse_arguments(sys.argv[1:] if argv is None else argv)
        verbose, prog = args.verbose, command_prog(args.command)
        handler = _handler(args.command)
        if in_main_thread:  # from here on files may be written: unwind through the cleanup code
            signal.signal(signal.SIGINT, signal.default_int_handler)
            signal.signal(signal.SIGTERM, _terminate)
        return handler(args)
    except UsageError as error:
        print(error, file=sys.stderr)
        return 2
    except AlgmExportError as error:
        if verbose:
            traceback.print_exc()
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except Terminated:
        print(f"{prog}: terminated", file=sys.stderr)
        return 143
    except Exception as error:  # noqa: BLE001 - last resort: one line unless --verbose
        if verbose:
            traceback.print_exc()
        print(f"{prog}: internal error: {type(error).__name__}: {error} (rerun with --verbose for details)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
