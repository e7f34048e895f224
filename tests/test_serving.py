"""Serving on 127.0.0.1 (serve environment: PyTriton + tritonclient; .ci/run runs this file in .venv-serve):
Triton's schema on the generated configs, the bundled tritonserver on the generated repository, and
``algm-export serve`` under load (8 clients), with bad requests, a disconnecting client, SIGTERM and a killed
server. Every wait is bounded in time; every loop in count."""

from __future__ import annotations

import contextlib
import io
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from serving_support import (
    export_small,
    free_port_base,
    group_gone,
    serve_env_present,
    start_bundled_tritonserver,
    start_serve,
    stop,
    wait_ready,
)

pytestmark = [pytest.mark.serve,
              pytest.mark.skipif(not serve_env_present(), reason="serve environment absent (PyTriton, tritonclient; "
                                 "numpy<2): .ci/run creates .venv-serve and runs these tests there")]

CLIENTS, REQUESTS_PER_CLIENT = 8, 64
REQUEST_TIMEOUT_S = 120  # one image through a loaded 2-core server takes well under a second
LOAD_TIMEOUT_S = 600  # the whole load test: 512 requests, a third of them 1080p frames
# A response matches its image's in-process result when at least this share of its labels agree. The server
# runs windows of concurrent requests in batches of 1-8 while the reference runs them one at a time: ONNX
# Runtime's kernels may round differently by batch size, which can flip a near-tie label (or, rarely, a
# merge). A mixed-up response belongs to another image: another shape, or agreement far below this.
AGREEMENT = 0.99
MAX_PIXELS = 3_000_000  # the served limit in these tests: a 1080p frame (2.1 Mpx) passes, 2000x2000 does not


def images() -> dict[str, np.ndarray]:
    """Mixed sizes: tiny, portrait and 1080p, two of each with different content."""
    from algm_export.photos import sample_photo

    chelsea, astronaut, coffee = sample_photo("chelsea"), sample_photo("astronaut"), sample_photo("coffee")
    hd = lambda photo: np.asarray(Image.fromarray(photo).resize((1920, 1080)))  # noqa: E731
    return {"tiny_a": chelsea[100:124, 200:240], "tiny_b": coffee[50:70, 30:47],
            "portrait_a": astronaut[:400, 100:340], "portrait_b": coffee[:, :250],
            "hd_a": hd(chelsea), "hd_b": hd(astronaut)}


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    return float((a == b).mean()) if a.shape == b.shape else 0.0


def grpc_client(address: str):
    import tritonclient.grpc as grpc

    return grpc.InferenceServerClient(address)


def image_input(photo: np.ndarray, name: str = "image", datatype: str = "UINT8"):
    import tritonclient.grpc as grpc

    data = grpc.InferInput(name, list(photo.shape), datatype)
    data.set_data_from_numpy(photo)
    return data


@pytest.fixture(scope="module")
def exported(tmp_path_factory, tiny_model) -> Path:
    return export_small(tiny_model, tmp_path_factory.mktemp("exported"))


@pytest.fixture(scope="module")
def references(exported) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each image and its labels from in-process predict, one window per run (the per-image reference)."""
    from algm_export.runtime import segment
    from algm_export.runtime.onnxruntime_backend import OnnxRuntimeBackend

    backend = OnnxRuntimeBackend(exported / "model.onnx", threads=2)
    return {name: (photo, segment(backend, [photo], batch=1)[0]) for name, photo in images().items()}


@pytest.fixture(scope="module")
def server(exported, tmp_path_factory):
    """``algm-export serve`` on 127.0.0.1 (2 ONNX Runtime threads, batches up to 8, 8 image instances)."""
    base = free_port_base()
    log = tmp_path_factory.mktemp("server") / "serve.log"
    process = start_serve(exported / "model.onnx", base, log, "--threads", "2", "--max-batch", "8",
                          "--max-pixels", str(MAX_PIXELS))
    try:
        wait_ready(process, f"127.0.0.1:{base + 1}", ["algm_window", "algm_segment", "algm_info"])
        yield process, f"127.0.0.1:{base + 1}", log
    finally:
        stop(process, signal.SIGKILL if process.poll() is None else signal.SIGTERM)


def segment_via(client, photo: np.ndarray) -> np.ndarray:
    return client.infer("algm_segment", [image_input(photo)], client_timeout=REQUEST_TIMEOUT_S).as_numpy("labels")


def test_configs_parse_with_tritons_schema_and_mutations_are_refused(exported, tmp_path):
    from algm_export.errors import AlgmExportError
    from algm_export.serving.model_config import check_config, parse_config
    from algm_export.serving.repository import RepositoryOptions, write_repository

    library = tmp_path / "libalgm_ort_ops.so"
    library.write_bytes(b"stand-in")
    models = write_repository(exported, tmp_path / "repo", RepositoryOptions(max_batch=8, ort_ops=library))
    assert [m.config.name for m in models] == ["algm_onnx", "algm_onnx_ops", "algm_segment"]
    for model in models:
        text = (tmp_path / "repo" / model.config.name / "config.pbtxt").read_text()
        parsed = parse_config(text, model.config.name)
        check_config(text, model.config.name, model.config.inputs, model.config.outputs)
        assert parsed.name == model.config.name
    onnx_model = models[0]
    text = (tmp_path / "repo/algm_onnx/config.pbtxt").read_text()
    parsed = parse_config(text, "algm_onnx")
    assert [(t.name, list(t.dims)) for t in parsed.input] == [("images", [3, 128, 128])]
    assert list(parsed.dynamic_batching.preferred_batch_size) == [4, 8] and parsed.max_batch_size == 8
    assert parsed.parameters["batch_rule"].string_value == "per-image"
    images_line = '{ name: "images" data_type: TYPE_FP32 dims: [ 3, 128, 128 ] }'
    mutations = {"wrong type": (images_line, images_line.replace("TYPE_FP32", "TYPE_INT32"), "is TYPE_INT32"),
                 "unknown type": (images_line, images_line.replace("TYPE_FP32", "TYPE_FLOAT32"), "TYPE_FLOAT32"),
                 "wrong dims": (images_line, images_line.replace("3, 128, 128", "3, 128, 64"), "dims [3, 128, 64]"),
                 "preferred above max": ("preferred_batch_size: [ 4, 8 ]", "preferred_batch_size: [ 4, 16 ]",
                                         "preferred batch size 16 is above max_batch_size 8"),
                 "unknown field": ("max_batch_size: 8", "max_batch_size: 8\nmax_batchsize: 8", "max_batchsize"),
                 "missing output": ('  { name: "token_maps"', '  { name: "token_mapz"', "differ from the model's")}
    for what, (old, new, message) in mutations.items():
        assert old in text, what
        with pytest.raises(AlgmExportError, match=message.replace("[", r"\[").replace("]", r"\]")):
            check_config(text.replace(old, new), what, onnx_model.config.inputs, onnx_model.config.outputs)


def test_bundled_tritonserver_loads_the_repository(exported, tmp_path, references):
    """Triton's own rules: the Python-backend model reaches READY with auto-complete off; the ONNX Runtime
    models fail only for want of the backend, which this bundled server lacks; the BLS model answers."""
    from algm_export.serving.repository import RepositoryOptions, write_repository

    library = tmp_path / "libalgm_ort_ops.so"
    library.write_bytes(b"stand-in")
    write_repository(exported, tmp_path / "repo", RepositoryOptions(ort_ops=library))
    base = free_port_base()
    process = start_bundled_tritonserver(tmp_path / "repo", base, tmp_path, tmp_path / "tritonserver.log")
    try:
        wait_ready(process, f"127.0.0.1:{base + 1}", ["algm_segment"])
        client = grpc_client(f"127.0.0.1:{base + 1}")
        try:
            index = {m.name: m for m in client.get_model_repository_index().models}
            assert index["algm_segment"].state == "READY"
            for name in ("algm_onnx", "algm_onnx_ops"):
                assert index[name].state == "UNAVAILABLE"
                assert "unable to find backend library for backend 'onnxruntime'" in index[name].reason
            garbage = image_input(np.frombuffer(b"not a png at all", np.uint8), "encoded")
            with pytest.raises(Exception, match="encoded: not a readable image"):
                client.infer("algm_segment", [garbage], client_timeout=REQUEST_TIMEOUT_S)
            with pytest.raises(Exception, match="algm_onnx.*not ready"):  # windows go to algm_onnx through BLS
                segment_via(client, references["tiny_a"][0])
        finally:
            client.close()
    finally:
        assert stop(process) is not None


def test_repository_segment_model_runs_its_windows_through_bls(exported, tmp_path, references, monkeypatch):
    """The repository's algm_segment model.py end to end, in process: Triton's pb_utils replaced by a
    stand-in whose BLS request runs the core graph in ONNX Runtime. (The bundled tritonserver cannot show
    this: its Python backend returns empty output tensors for plain Python-backend models, an echo model
    included; it is built for PyTriton's own data path.)"""
    import importlib.util
    import json
    import sys
    import types

    from algm_export.runtime.onnxruntime_backend import OnnxRuntimeBackend
    from algm_export.serving.repository import RepositoryOptions, write_repository

    write_repository(exported, tmp_path / "repo", RepositoryOptions())
    core = OnnxRuntimeBackend(tmp_path / "repo/algm_onnx/1/model.onnx", threads=2)
    calls: list[tuple[str, int, tuple[str, ...]]] = []

    class Tensor:
        def __init__(self, name, array):
            self.name, self.array = name, array

        def as_numpy(self):
            return self.array

    class Response:
        def __init__(self, output_tensors=(), error=None):
            self.tensors, self.err = {t.name: t for t in output_tensors}, error

        def has_error(self):
            return self.err is not None

        def error(self):
            return self.err

    class InferenceRequest:
        def __init__(self, model_name, requested_output_names, inputs):
            self.model, self.names, self.inputs = model_name, requested_output_names, inputs

        def exec(self):
            images = self.inputs[0].as_numpy()
            calls.append((self.model, len(images), tuple(self.names)))
            prediction = core.run(images)
            found = {**prediction.outputs, "token_counts": prediction.token_counts, "token_maps": prediction.token_maps}
            return Response([Tensor(name, found[name]) for name in self.names])

    class TritonError(Exception):
        def message(self):
            return str(self)

    pb_utils = types.SimpleNamespace(
        Tensor=Tensor, InferenceResponse=Response, InferenceRequest=InferenceRequest, TritonError=TritonError,
        get_input_tensor_by_name=lambda request, name: request.get(name),
        get_output_tensor_by_name=lambda response, name: response.tensors.get(name))
    monkeypatch.setitem(sys.modules, "triton_python_backend_utils", pb_utils)
    spec = importlib.util.spec_from_file_location("algm_segment_model", tmp_path / "repo/algm_segment/1/model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    from google.protobuf import json_format

    from algm_export.serving.model_config import parse_config

    config = parse_config((tmp_path / "repo/algm_segment/config.pbtxt").read_text(), "algm_segment")
    model = module.TritonPythonModel()
    model.initialize({"model_config": json.dumps(json_format.MessageToDict(config, preserving_proto_field_name=True))})
    png = io.BytesIO()
    Image.fromarray(references["portrait_a"][0]).save(png, format="PNG")
    requests = [{"image": Tensor("image", references[name][0])} for name in ("tiny_a", "hd_a")]
    requests += [{"encoded": Tensor("encoded", np.frombuffer(png.getvalue(), np.uint8))},
                 {"image": Tensor("image", np.zeros((0, 0, 3), np.uint8))},
                 {"encoded": Tensor("encoded", np.frombuffer(b"garbage", np.uint8))}]
    responses = model.execute(requests)
    for response, name in zip(responses, ("tiny_a", "hd_a", "portrait_a")):
        assert not response.has_error()
        assert agreement(response.tensors["labels"].as_numpy(), references[name][1]) >= AGREEMENT, name
        assert response.tensors["token_counts"].as_numpy().shape[1] == 2  # two merges per window
    assert "0x0 pixels is empty" in responses[3].error().message()
    assert "not a readable image" in responses[4].error().message()
    assert calls and all(model_name == "algm_onnx" for model_name, _, _ in calls)
    assert any(size > 1 for _, size, _ in calls)  # a 1080p frame's two windows go in one BLS request


def test_load_8_clients_nothing_lost_or_mixed_up_and_batches_form(server, references):
    _, address, _ = server
    names = list(references)
    results: dict[tuple[int, int], tuple[str, float]] = {}
    errors: list[str] = []

    def client_loop(number: int) -> None:
        client = grpc_client(address)
        try:
            for index in range(REQUESTS_PER_CLIENT):
                name = names[(number + index) % len(names)]
                photo, expected = references[name]
                try:
                    labels = segment_via(client, photo)
                except Exception as error:  # noqa: BLE001 - counted as lost
                    errors.append(f"{number}/{index}: {error}")
                    continue
                results[(number, index)] = (name, agreement(labels, expected))
        finally:
            client.close()

    threads = [threading.Thread(target=client_loop, args=(n,), daemon=True) for n in range(CLIENTS)]
    start = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(1.0, LOAD_TIMEOUT_S - (time.monotonic() - start)))
    assert not any(thread.is_alive() for thread in threads), "clients still running after the time limit"
    assert errors == []
    assert len(results) == CLIENTS * REQUESTS_PER_CLIENT  # 0 lost
    worst = min(results.values(), key=lambda item: item[1])
    assert worst[1] >= AGREEMENT, f"mixed up or wrong: {worst}"
    stats = grpc_client(address)
    try:
        batches = {b.batch_size: b.compute_infer.count
                   for b in stats.get_inference_statistics("algm_window").model_stats[0].batch_stats}
    finally:
        stats.close()
    assert any(size > 1 and count > 0 for size, count in batches.items()), batches


def test_bad_requests_get_an_error_naming_the_problem_and_the_next_succeeds(server, references):
    _, address, _ = server
    photo, expected = references["portrait_a"]
    client = grpc_client(address)
    window_nan = np.zeros((1, 3, 128, 128), np.float32)
    window_nan[0, 1, 5, 5] = np.nan
    bad = {"wrong dtype": ("algm_segment", image_input(photo.astype(np.float32), datatype="FP32"), "UINT8"),
           "wrong rank": ("algm_segment", image_input(photo[..., 0]), "unexpected shape"),
           # PyTriton's proxy refuses an empty array before our check can name it (its wording):
           "0x0 image": ("algm_segment", image_input(np.zeros((0, 0, 3), np.uint8)), "zeros in shape"),
           "oversize": ("algm_segment", image_input(np.zeros((2000, 2000, 3), np.uint8)), "above the limit"),
           "NaN pixels": ("algm_window", image_input(window_nan, "images", "FP32"), "NaN"),
           "garbage bytes": ("algm_segment", image_input(np.frombuffer(b"\x89PNG garbage", np.uint8), "encoded"),
                             "not a readable image")}
    try:
        for what, (model, data, message) in bad.items():
            with pytest.raises(Exception, match=message):
                client.infer(model, [data], client_timeout=REQUEST_TIMEOUT_S)
            assert agreement(segment_via(client, photo), expected) >= AGREEMENT, f"after {what}"
    finally:
        client.close()


def test_a_client_that_disconnects_does_not_hurt_others(server, references):
    _, address, _ = server
    photo, _ = references["hd_a"]
    for _ in range(3):  # requests abandoned mid-flight: the connection closes under them
        leaving = grpc_client(address)
        leaving.async_infer("algm_segment", [image_input(photo)], callback=lambda result, error: None,
                            client_timeout=REQUEST_TIMEOUT_S)
        leaving.close()
    client = grpc_client(address)
    try:
        for name in ("hd_b", "tiny_a", "portrait_b"):
            assert agreement(segment_via(client, references[name][0]), references[name][1]) >= AGREEMENT
    finally:
        client.close()


def test_predict_through_the_server_writes_the_files_local_predict_writes(server, exported, references, tmp_path):
    from algm_export.cli import main

    _, address, _ = server
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for name in ("tiny_a", "portrait_b", "hd_a"):
        Image.fromarray(references[name][0]).save(inputs / f"{name}.png")
    quiet = contextlib.redirect_stderr(io.StringIO())
    with quiet, contextlib.redirect_stdout(io.StringIO()) as out:
        assert main(["predict", "--server", address, str(inputs), "-o", str(tmp_path / "served"), "--overlay"]) == 0
    assert "segmented 3 images" in out.getvalue()
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        assert main(["predict", str(exported / "model.onnx"), str(inputs), "-o", str(tmp_path / "local"),
                     "--overlay", "--batch", "1"]) == 0
    served = sorted(p.name for p in (tmp_path / "served").iterdir())
    assert served == sorted(p.name for p in (tmp_path / "local").iterdir()) and len(served) == 7  # + marker
    for name in ("tiny_a", "portrait_b", "hd_a"):
        a, b = (np.asarray(Image.open(tmp_path / kind / f"{name}.png")) for kind in ("served", "local"))
        assert a.dtype == b.dtype == np.uint8 and agreement(a, b) >= AGREEMENT
    with contextlib.redirect_stderr(io.StringIO()) as err:
        assert main(["predict", "--server", "127.0.0.1:1", str(inputs), "-o", str(tmp_path / "none")]) == 2
    assert err.getvalue().count("\n") == 1 and "127.0.0.1:1" in err.getvalue()


def test_sigterm_shuts_the_server_down_cleanly(exported, tmp_path):
    import socket

    base = free_port_base()
    process = start_serve(exported / "model.onnx", base, tmp_path / "serve.log", "--threads", "1")
    try:
        wait_ready(process, f"127.0.0.1:{base + 1}", ["algm_segment"])
        process.send_signal(signal.SIGTERM)
        start = time.monotonic()
        code = process.wait(60)
        assert code == 143 and time.monotonic() - start < 60
        assert group_gone(process.pid, 60), "a tritonserver or Python-backend stub outlived the server"
    finally:
        stop(process, signal.SIGKILL)
    assert "terminated" in (tmp_path / "serve.log").read_text()
    for port in range(base, base + 3):  # tritonserver went with it: its ports are free again
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))


def test_killed_server_makes_clients_fail_promptly(server, references):
    """Last in this file: it kills the shared server."""
    process, address, _ = server
    photo, _ = references["hd_b"]
    failed_at: list[float] = []

    def client_loop() -> None:
        client = grpc_client(address)
        try:
            for _ in range(1000):  # bounded: the server dies within a second
                try:
                    segment_via(client, photo)
                except Exception:  # noqa: BLE001 - the failure this test waits for
                    failed_at.append(time.monotonic())
                    return
        finally:
            client.close()

    threads = [threading.Thread(target=client_loop, daemon=True) for _ in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(1.0)
    killed = time.monotonic()
    stop(process, signal.SIGKILL)
    for thread in threads:
        thread.join(30)
    assert not any(thread.is_alive() for thread in threads), "a client hung after the server died"
    assert len(failed_at) == 4 and max(failed_at) - killed < 30
