"""Arguments of ``algm-export triton`` and ``algm-export serve`` (plain argparse, no heavy imports)."""

from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_REPOSITORY = "model_repository"
DEFAULT_MAX_BATCH = 8
DEFAULT_PORT = 8000  # HTTP; gRPC on PORT+1, metrics on PORT+2 (Triton's 8000/8001/8002)

TRITON_DESCRIPTION = """\
Write a Triton Inference Server model repository from an exported folder (DIR, e.g. algm_export_out/):
  algm_onnx      model.onnx in the ONNX Runtime backend, dynamic batching of windows [3,H,W]
  algm_onnx_ops  (--ort-ops LIB) model.trt.onnx with libalgm_ort_ops.so as its custom-op library
  algm_trt       (where DIR has model.fp16.plan) the TensorRT engine; algm_trt_int8 for model.fp16.int8.plan
  algm_segment   Python backend: a whole image (uint8 HWC of any size, or PNG/JPEG file bytes as uint8) in, labels at
                 the image's size out; runs the sliding window and calls algm_onnx through BLS
Each config.pbtxt carries the deployment metadata (classes, normalization, windows, batch rule) as parameters
and is checked with Triton's schema when tritonclient is installed. REPO is replaced as a whole.
"""

SERVE_DESCRIPTION = """\
Serve an exported model with a Triton server on this machine (PyTriton: pip install 'algm-export[serve]'):
  algm_window   windows [3,H,W] float32 -> the graph's outputs, dynamic batching up to --max-batch
  algm_segment  a whole image (uint8 [H,W,3] as 'image', or a PNG/JPEG file's bytes as uint8 'encoded') -> labels [H,W]
                int32 at the image's own size + token_counts; its windows batch on algm_window
Listens on --host (default 127.0.0.1): HTTP on --port, gRPC on --port+1, metrics on --port+2.
SIGTERM or Ctrl-C shuts it down cleanly. Client: algm-export predict --server HOST:GRPC_PORT INPUT... -o DIR
"""


def add_triton_arguments(parser: argparse.ArgumentParser) -> None:
    """``algm-export triton DIR -o REPO``."""
    parser.add_argument("folder", metavar="DIR", type=Path, help="an exported folder (model.onnx, report.json ...)")
    parser.add_argument("-o", "--output", type=Path, default=Path(DEFAULT_REPOSITORY), metavar="REPO",
                        help=f"repository folder (default ./{DEFAULT_REPOSITORY}/; replaced as a whole)")
    parser.add_argument("--max-batch", type=int, default=DEFAULT_MAX_BATCH, metavar="N",
                        help=f"max_batch_size of the ONNX models (default {DEFAULT_MAX_BATCH}; TensorRT models take "
                             "their engine profile's maximum)")
    parser.add_argument("--ort-ops", type=Path, metavar="LIB",
                        help="libalgm_ort_ops.so: also write algm_onnx_ops (copied into the repository)")
    parser.add_argument("--repository-root", default="/models", metavar="PATH",
                        help="where the server will see the repository (default /models): Triton dlopens op and "
                             "plugin libraries by this absolute path")
    parser.add_argument("--segment-instances", type=int, default=2, metavar="N",
                        help="Python-backend instances of algm_segment (default 2)")
    parser.add_argument("-v", "--verbose", action="store_true", help="full tracebacks")


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """``algm-export serve MODEL``."""
    parser.add_argument("model", metavar="MODEL", type=Path, help="model.onnx or a TensorRT engine (.plan)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, metavar="PORT",
                        help=f"HTTP port (default {DEFAULT_PORT}); gRPC on PORT+1, metrics on PORT+2")
    parser.add_argument("--max-batch", type=int, default=DEFAULT_MAX_BATCH, metavar="N",
                        help=f"largest window batch the server forms (default {DEFAULT_MAX_BATCH})")
    parser.add_argument("--threads", type=int, metavar="N", help="ONNX Runtime threads (default: all cores)")
    parser.add_argument("--max-pixels", type=int, default=40 * 10**6, metavar="N",
                        help="largest image accepted, in pixels (default 40 million; larger requests are refused)")
    parser.add_argument("--image-instances", type=int, default=8, metavar="N",
                        help="whole-image requests handled at once (default 8)")
    parser.add_argument("-v", "--verbose", action="store_true", help="full tracebacks and Triton's log")
