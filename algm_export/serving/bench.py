"""Serving bench: throughput and latency through ``algm-export serve`` (N concurrent gRPC clients sending
whole images) beside in-process sliding-window predict at the same ONNX Runtime thread count, on the same
images. ``python -m algm_export.serving.bench MODEL.onnx [--clients 8] [--requests 32] [--threads 2]``
(serve environment). Prints a table and writes JSON with --json."""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from .client import ServerSegmenter

START_TIMEOUT_S = 300


def bench_images() -> list[np.ndarray]:
    """Mixed sizes: a sample photo as is, a portrait crop and a 1080p frame (resized photo)."""
    from PIL import Image

    from ..photos import sample_photo

    chelsea, astronaut = sample_photo("chelsea"), sample_photo("astronaut")
    return [chelsea, astronaut[:400, 100:340], np.asarray(Image.fromarray(astronaut).resize((1920, 1080)))]


def in_process(model: Path, photos: list[np.ndarray], threads: int, batch: int) -> dict:
    """In-process predict (sliding window over ONNX Runtime with ``threads`` threads): images/s."""
    from ..runtime import segment
    from ..runtime.onnxruntime_backend import OnnxRuntimeBackend

    backend = OnnxRuntimeBackend(model, threads=threads)
    segment(backend, photos[:2], batch=batch)  # warm-up
    start = time.perf_counter()
    segment(backend, photos, batch=batch)
    elapsed = time.perf_counter() - start
    return {"images": len(photos), "seconds": round(elapsed, 3), "images_per_s": round(len(photos) / elapsed, 3)}


def through_server(address: str, photos: list[np.ndarray], clients: int, requests: int) -> dict:
    """``clients`` threads each sending ``requests`` images (cycling through ``photos``): throughput, p50/p99."""
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()

    def loop(number: int) -> None:
        segmenter = ServerSegmenter(address, in_flight=1)
        try:
            for index in range(requests):
                photo = photos[(number + index) % len(photos)]
                start = time.perf_counter()
                try:
                    segmenter.segment(photo)
                except Exception as error:  # noqa: BLE001 - reported
                    failures.append(str(error)[:200])
                    continue
                with lock:
                    latencies.append(time.perf_counter() - start)
        finally:
            segmenter.close()

    warm = ServerSegmenter(address, in_flight=1)
    for photo in photos:
        warm.segment(photo)
    warm.close()
    threads = [threading.Thread(target=loop, args=(n,), daemon=True) for n in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(3600)
    elapsed = time.perf_counter() - start
    milliseconds = np.array(latencies) * 1000
    return {"clients": clients, "requests": clients * requests, "failed": len(failures),
            "seconds": round(elapsed, 3), "images_per_s": round(len(latencies) / elapsed, 3),
            "p50_ms": round(float(np.percentile(milliseconds, 50)), 1),
            "p99_ms": round(float(np.percentile(milliseconds, 99)), 1)}


def _free_base() -> int:
    """A port P with P..P+2 free on 127.0.0.1, below the ephemeral range."""
    for _ in range(200):
        base = 20000 + int.from_bytes(os.urandom(2), "little") % 20000
        try:
            for port in range(base, base + 3):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
    raise SystemExit("no free ports")


def main(argv: list[str] | None = None) -> int:
    """Run the bench; prints a table, writes ``--json``."""
    parser = argparse.ArgumentParser(prog="python -m algm_export.serving.bench", description=__doc__)
    parser.add_argument("model", type=Path)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=24, help="requests per client")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="ONNX Runtime threads (both sides)")
    parser.add_argument("--batch", type=int, default=4, help="in-process predict's windows per run (its default)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    photos = bench_images()
    local = in_process(args.model, photos * max(1, (args.clients * args.requests) // (4 * len(photos))),
                       args.threads, args.batch)
    base = _free_base()
    command = [sys.executable, "-m", "algm_export", "serve", str(args.model), "--port", str(base),
               "--threads", str(args.threads), "--image-instances", str(args.clients)]
    log = open(args.json.with_suffix(".server.log") if args.json else os.devnull, "w")
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                ServerSegmenter(f"127.0.0.1:{base + 1}").close()
                break
            except Exception:  # noqa: BLE001 - not up yet
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("the server did not start")
                time.sleep(1)
        served = through_server(f"127.0.0.1:{base + 1}", photos, args.clients, args.requests)
    finally:
        if server.poll() is None:  # SIGTERM to the server alone: it stops tritonserver and the stubs itself
            server.send_signal(signal.SIGTERM)
            server.wait(60)
        log.close()
    result = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
              "load_average": os.getloadavg(), "threads": args.threads, "in_process": local, "server": served,
              "ratio": round(served["images_per_s"] / local["images_per_s"], 3)}
    print(f"in-process predict: {local['images_per_s']} images/s ({args.threads} ONNX Runtime threads)")
    print(f"server, {args.clients} clients: {served['images_per_s']} images/s, p50 {served['p50_ms']} ms, "
          f"p99 {served['p99_ms']} ms, {served['failed']} failed")
    print(f"ratio server / in-process: {result['ratio']}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
