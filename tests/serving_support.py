"""Helpers of the serving tests: a small exported folder, free ports, servers started on 127.0.0.1 with a
bounded wait, and the tritonserver bundled in nvidia-pytriton."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WINDOW = (128, 128)  # small windows keep the serving tests fast on 2 cores (65 tokens per window)
START_TIMEOUT_S = 180  # torch + ONNX Runtime imports and PyTriton's server start on a busy 2-core machine


def serve_env_present() -> bool:
    """Whether PyTriton and tritonclient import (the serve extra's environment)."""
    try:
        import pytriton.triton  # noqa: F401
        import tritonclient.grpc  # noqa: F401
    except ImportError:
        return False
    return True


def export_small(model, folder: Path, batch_rule: str | None = None) -> Path:
    """``model`` exported at 128x128 (model.onnx + model.trt.onnx) into ``folder``."""
    import dataclasses

    from algm_export.export.onnx_export import export_graphs
    from algm_export.models.segmenter import Segmenter

    if batch_rule is not None:
        segmenter = Segmenter(model.config, dataclasses.replace(model.algm, batch_rule=batch_rule))
        segmenter.load_state_dict(model.state_dict())
        model = segmenter.eval()
    export_graphs(model, folder, WINDOW)
    return folder


def free_port_base() -> int:
    """A port P with P, P+1, P+2 free on 127.0.0.1 (HTTP, gRPC, metrics)."""
    for _ in range(200):
        base = 20000 + int.from_bytes(os.urandom(2), "little") % 30000
        sockets = []
        try:
            for port in range(base, base + 3):
                sock = socket.socket()
                sockets.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise RuntimeError("no three consecutive free ports found")


def subprocess_env(**extra: str) -> dict[str, str]:
    """This interpreter's environment with the worktree first on PYTHONPATH and libpython findable."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    env.update(extra)
    return env


def wait_ready(process: subprocess.Popen, address: str, models: list[str], timeout: float = START_TIMEOUT_S) -> None:
    """Poll until ``models`` are ready at ``address`` (gRPC); fail when the process exits or time runs out."""
    import tritonclient.grpc as grpc

    deadline = time.monotonic() + timeout
    client = grpc.InferenceServerClient(address)
    try:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"server exited with code {process.returncode}")
            try:
                if all(client.is_model_ready(m, client_timeout=2) for m in models):
                    return
            except Exception:  # noqa: BLE001 - not listening yet
                pass
            time.sleep(0.5)
    finally:
        client.close()
    raise TimeoutError(f"{models} not ready at {address} within {timeout} s")


def group_gone(pgid: int, timeout: float = 60) -> bool:
    """Whether every process of group ``pgid`` has exited within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.5)
    return False


def stop(process: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
    """SIGTERM the server (it stops its children) or SIGKILL its whole group, wait (bounded), then SIGKILL
    whatever of the group is left."""
    if process.poll() is None:
        try:
            if sig == signal.SIGKILL:
                os.killpg(process.pid, sig)
            else:
                process.send_signal(sig)
        except ProcessLookupError:
            pass
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
    if not group_gone(process.pid, timeout=10):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(10)
    return process.returncode


def start_serve(model: Path, base: int, log: Path, *extra: str) -> subprocess.Popen:
    """``algm-export serve MODEL`` on 127.0.0.1 in its own process group (so a kill reaches tritonserver)."""
    command = [sys.executable, "-m", "algm_export", "serve", str(model), "--host", "127.0.0.1", "--port", str(base),
               *extra]
    return subprocess.Popen(command, cwd=ROOT, env=subprocess_env(), stdout=log.open("w"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def start_bundled_tritonserver(repository: Path, base: int, workdir: Path, log: Path) -> subprocess.Popen:
    """PyTriton's bundled tritonserver (Python backend only) on ``repository`` with auto-complete off."""
    import pytriton

    package = Path(pytriton.__file__).parent / "tritonserver"
    backends = workdir / "backends"
    shutil.copytree(package / "backends", backends)
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    shutil.copy2(package / "python_backend_stubs" / version / "triton_python_backend_stub", backends / "python")
    libs = Path(pytriton.__file__).parents[1] / "nvidia_pytriton.libs"
    site = Path(pytriton.__file__).parents[1]
    env = subprocess_env(LD_LIBRARY_PATH=os.pathsep.join([sysconfig.get_config_var("LIBDIR"), str(libs)]))
    env["PYTHONPATH"] = os.pathsep.join([env["PYTHONPATH"], str(site)])  # the stub's Python: the serve env
    command = [str(package / "bin" / "tritonserver"), f"--model-repository={repository}",
               f"--backend-directory={backends}", "--disable-auto-complete-config", "--exit-on-error=false",
               "--http-address=127.0.0.1", "--grpc-address=127.0.0.1", "--metrics-address=127.0.0.1",
               f"--http-port={base}", f"--grpc-port={base + 1}", f"--metrics-port={base + 2}", "--exit-timeout-secs=5"]
    return subprocess.Popen(command, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)


def stand_in_export(folder: Path, size: int = 512, classes: int = 150, batch_rule: str = "per-image") -> Path:
    """An exported folder's graphs with the real names, types, shapes and metadata but no weights (the
    repository writer reads only those): model.onnx and model.trt.onnx with one algm node and its function."""
    import json

    import onnx
    from onnx import TensorProto, helper

    grid, merges = size // 16, 2
    info = {"image_size": [size, size], "normalization": {"name": "vit", "mean": [0.5] * 3, "std": [0.5] * 3},
            "class_names": [f"class {i}" for i in range(classes)],
            "algm": {"layers": [1, 5], "window": [2, 2], "threshold": 0.88, "batch_rule": batch_rule},
            "precision": "fp32", "outputs": ["labels", "scores"],
            "windows": {"im_size": size, "window_size": size, "window_stride": size}, "patch_size": 16}
    io = [("images", TensorProto.FLOAT, ["batch", 3, size, size])]
    outputs = [("labels", TensorProto.INT32, ["batch", size, size]),
               ("scores", TensorProto.FLOAT, ["batch", classes, grid, grid]),
               ("token_counts", TensorProto.INT64, ["batch", merges]),
               ("token_maps", TensorProto.INT32, ["batch", merges, grid * grid])]
    values = lambda specs: [helper.make_tensor_value_info(n, t, s) for n, t, s in specs]  # noqa: E731
    for name, with_algm in (("model.onnx", False), ("model.trt.onnx", True)):
        nodes = [helper.make_node("Identity", ["images"], ["copy"])]
        functions, opsets = [], [helper.make_opsetid("", 17)]
        if with_algm:
            nodes.append(helper.make_node("LocalMerge", ["copy"], ["merged"], domain="algm"))
            functions.append(helper.make_function("algm", "LocalMerge", ["x"], ["y"],
                                                  [helper.make_node("Identity", ["x"], ["y"])],
                                                  [helper.make_opsetid("", 17)]))
            opsets.append(helper.make_opsetid("algm", 1))
        graph = helper.make_graph(nodes, "stand_in", values(io), values(outputs))
        model = helper.make_model(graph, opset_imports=opsets, functions=functions)
        helper.set_model_props(model, {"algm_export": json.dumps(info)})
        onnx.save(model, folder / name)
    return folder
