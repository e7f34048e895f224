"""``algm-export triton DIR -o REPO``: the repository's layout, each config's tensors from the graph, the
TensorRT entry from an engine's sidecar, the batch rule's effect on batching, and bad input.
(Triton's own schema and the bundled tritonserver: tests/test_serving.py, in the serve environment.)"""

from __future__ import annotations

import contextlib
import io
import json
import shutil

import numpy as np
import onnx
import pytest
from serving_support import stand_in_export

from algm_export.cli import main
from algm_export.deployment import METADATA_KEY
from algm_export.errors import AlgmExportError
from algm_export.serving.model_config import graph_tensors
from algm_export.serving.requests import photo_from_array, photo_from_bytes, request_photo


def triton(*args) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["triton", *map(str, args)])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Graphs with an export's names, types, shapes and metadata, no weights: what the writer reads (a real
    export goes through it in tests/test_serving.py)."""
    return stand_in_export(tmp_path_factory.mktemp("exported"))


@pytest.fixture(scope="module")
def ops_library(tmp_path_factory):
    """A stand-in for libalgm_ort_ops.so: the repository only copies it and names it."""
    path = tmp_path_factory.mktemp("lib") / "libalgm_ort_ops.so"
    path.write_bytes(b"\x7fELF stand-in")
    return path


def config_text(repository, model: str) -> str:
    return (repository / model / "config.pbtxt").read_text()


def test_repository_layout_and_configs_follow_the_graph(exported, ops_library, tmp_path):
    repository = tmp_path / "repo"
    code, out, err = triton(exported, "-o", repository, "--ort-ops", ops_library, "--max-batch", "4",
                            "--repository-root", "/srv/models")
    assert code == 0, err
    assert sorted(p.name for p in repository.iterdir() if p.is_dir()) == ["algm_onnx", "algm_onnx_ops", "algm_segment"]
    assert (repository / "algm_onnx/1/model.onnx").read_bytes() == (exported / "model.onnx").read_bytes()
    assert (repository / "algm_onnx_ops/libalgm_ort_ops.so").read_bytes() == ops_library.read_bytes()
    assert (repository / "algm_segment/1/model.py").is_file()
    text = config_text(repository, "algm_onnx")
    assert 'backend: "onnxruntime"' in text and "max_batch_size: 4" in text
    assert '{ name: "images" data_type: TYPE_FP32 dims: [ 3, 512, 512 ] }' in text
    inputs, outputs = graph_tensors(exported / "model.onnx")
    for spec in inputs + outputs:  # every graph tensor, batch dimension left out
        assert spec.render().strip() in text
    assert [s.name for s in outputs] == ["labels", "scores", "token_counts", "token_maps"]
    assert "preferred_batch_size: [ 4 ]" in text  # never above max_batch_size
    ops = config_text(repository, "algm_onnx_ops")
    assert 'op_library_filename: [ "/srv/models/algm_onnx_ops/libalgm_ort_ops.so" ]' in ops
    assert 'default_model_filename: "model.trt.onnx"' in ops
    stored = onnx.load(repository / "algm_onnx_ops/1/model.trt.onnx", load_external_data=False)
    assert len(stored.functions) == 0  # no standard-op fallback: the algm nodes need the library
    assert any(node.domain.startswith("algm") for node in stored.graph.node)
    segment = config_text(repository, "algm_segment")
    assert 'backend: "python"' in segment and "max_batch_size: 0" in segment
    assert 'key: "core_model" value { string_value: "algm_onnx" }' in segment
    assert "ONNX Runtime API 21" in out and "algm_segment" in out


def test_metadata_parameters_round_trip(exported, tmp_path):
    from google.protobuf import text_encoding

    code, _, err = triton(exported, "-o", tmp_path / "repo")
    assert code == 0, err
    text = config_text(tmp_path / "repo", "algm_onnx")
    line = next(line for line in text.splitlines() if f'key: "{METADATA_KEY}"' in line)
    escaped = line.split('string_value: "', 1)[1].rsplit('" }', 1)[0]
    stored = json.loads(text_encoding.CUnescape(escaped).decode())
    graph = onnx.load(exported / "model.onnx", load_external_data=False)
    assert stored == json.loads({p.key: p.value for p in graph.metadata_props}[METADATA_KEY])
    assert 'key: "batch_rule" value { string_value: "per-image" }' in text


def test_min_batch_rule_turns_dynamic_batching_off(exported, tmp_path):
    folder = tmp_path / "min"
    folder.mkdir()
    stand_in_export(folder, batch_rule="min")
    code, out, err = triton(folder, "-o", tmp_path / "repo")
    assert code == 0, err
    assert "dynamic_batching" not in config_text(tmp_path / "repo", "algm_onnx")
    assert "batch rule min" in out
    code, _, _ = triton(exported, "-o", tmp_path / "repo")  # the per-image graph batches
    assert "dynamic_batching" in config_text(tmp_path / "repo", "algm_onnx")


def test_tensorrt_entry_from_the_engine_sidecar(exported, tmp_path):
    folder = tmp_path / "with_engine"
    folder.mkdir()
    shutil.copy2(exported / "model.onnx", folder / "model.onnx")
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "libalgm_plugins.so").write_bytes(b"loadLibrary flavour")
    (plugins / "libalgm_plugins_autoreg.so").write_bytes(b"autoreg flavour")
    (folder / "model.fp16.plan").write_bytes(b"engine bytes")
    sidecar = {"input": {"name": "images", "shape": [-1, 3, 512, 512], "dtype": "float32"},
               "outputs": [{"name": "labels", "shape": [-1, 512, 512], "dtype": "DataType.INT32"},
                           {"name": "scores", "shape": [-1, 150, 32, 32], "dtype": "DataType.FLOAT"},
                           {"name": "token_counts", "shape": [-1, 2], "dtype": "DataType.INT64"}],
               "batch_profile": {"min": 1, "opt": 8, "max": 16}, "tensorrt_version": "10.9.0.34",
               "deployment": json.loads(onnx.load(exported / "model.onnx", load_external_data=False)
                                        .metadata_props[0].value),
               "plugin_library": str(plugins / "libalgm_plugins.so")}
    (folder / "model.fp16.plan.json").write_text(json.dumps(sidecar))
    code, out, err = triton(folder, "-o", tmp_path / "repo")
    assert code == 0, err
    text = config_text(tmp_path / "repo", "algm_trt")
    assert 'platform: "tensorrt_plan"' in text and "max_batch_size: 16" in text  # the engine profile's max
    assert '{ name: "token_counts" data_type: TYPE_INT64 dims: [ 2 ] }' in text and "KIND_GPU" in text
    assert (tmp_path / "repo/algm_trt/1/model.plan").read_bytes() == b"engine bytes"
    assert (tmp_path / "repo/algm_trt/libalgm_plugins_autoreg.so").read_bytes() == b"autoreg flavour"
    readme = (tmp_path / "repo/README.md").read_text()
    assert "--backend-config=tensorrt,plugins=/models/algm_trt/libalgm_plugins_autoreg.so" in readme
    assert "TensorRT 10.9.0.34" in readme and "24.05" in readme


def test_bad_input_is_one_line_and_keeps_the_folder(exported, tmp_path):
    code, _, err = triton(tmp_path / "missing", "-o", tmp_path / "repo")
    assert code == 2 and "no such folder" in err and err.count("\n") == 1
    code, _, err = triton(tmp_path, "-o", tmp_path / "repo")
    assert code == 2 and "no model.onnx" in err
    code, _, err = triton(exported, "-o", tmp_path / "repo", "--max-batch", "0")
    assert code == 2 and "--max-batch must be >= 1" in err
    code, _, err = triton(exported, "-o", tmp_path / "repo", "--ort-ops", tmp_path / "nothing.so")
    assert code == 2 and "no such file" in err
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    code, _, err = triton(exported, "-o", mine)
    assert code == 2 and "not an algm-export output folder" in err
    assert (mine / "notes.txt").read_text() == "keep me" and len(list(mine.iterdir())) == 1
    assert not (tmp_path / "repo").exists()


def test_a_repository_is_its_own_kind_of_folder(exported, tmp_path, capsys):
    """The repository's marker names `triton`: an export, a predict run or a second source cannot take it over
    unasked, a user's file inside a model folder stops the next `triton`, and -o cannot be the export itself."""
    import json

    from algm_export.artifacts import MARKER

    source = tmp_path / "export"
    shutil.copytree(exported, source)
    before = sorted(p.name for p in source.iterdir())
    code, _, err = triton(source, "-o", source)
    assert code == 2 and "is the export folder" in err and err.count("\n") == 1, err
    assert sorted(p.name for p in source.iterdir()) == before
    repo = tmp_path / "repo"
    assert triton(source, "-o", repo)[0] == 0
    assert json.loads((repo / MARKER).read_text())["command"] == "triton"
    assert triton(source, "-o", repo)[0] == 0  # a repository replaces its own kind
    code = main([str(tmp_path / "no.pth"), "-o", str(repo), "--dry-run"])
    assert code == 2 and "an algm-export triton folder" in capsys.readouterr().err
    (repo / "algm_onnx" / "2").mkdir()
    (repo / "algm_onnx" / "2" / "model.onnx").write_bytes(b"my second version")
    code, _, err = triton(source, "-o", repo)
    assert code == 2 and "holds algm_onnx/2" in err, err
    assert (repo / "algm_onnx" / "2" / "model.onnx").read_bytes() == b"my second version"


def test_request_checks_name_the_problem():
    rgb = np.zeros((4, 6, 3), np.uint8)
    assert photo_from_array(rgb).shape == (4, 6, 3) and photo_from_array(rgb[..., 0]).shape == (4, 6, 3)
    cases = [(lambda: photo_from_array(rgb.astype(np.float32)), "pixels of type float32"),
             (lambda: photo_from_array(np.zeros((2, 2, 2, 3), np.uint8)), "expected [H, W, 3]"),
             (lambda: photo_from_array(np.zeros((0, 0, 3), np.uint8)), "0x0 pixels is empty"),
             (lambda: photo_from_array(np.zeros((100, 100, 3), np.uint8), max_pixels=9999), "above the limit"),
             (lambda: photo_from_bytes(b"garbage bytes"), "not a readable image"),
             (lambda: request_photo(None, None), "exactly one of"),
             (lambda: request_photo(None, np.zeros((2, 2), np.uint8)), "expected the file's bytes")]
    for call, message in cases:
        with pytest.raises(AlgmExportError, match=message.replace("[", r"\[").replace("]", r"\]")):
            call()
    png = io.BytesIO()
    from PIL import Image

    Image.fromarray(np.full((5, 7, 3), 9, np.uint8)).save(png, format="PNG")
    decoded = request_photo(None, np.frombuffer(png.getvalue(), np.uint8))
    assert decoded.shape == (5, 7, 3) and (decoded == 9).all()


@pytest.mark.parametrize("command", ["triton", "serve"])
def test_help_ends_with_exit_codes_and_an_example(capsys, command):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = capsys.readouterr().out
    assert "127.0.0.1" in text if command == "serve" else "algm_segment" in text
    epilog = text.split("exit codes:", 1)[1]
    assert [line.strip() for line in epilog.splitlines() if line.strip().startswith("algm-export")][0] \
        .startswith(f"algm-export {command} ")


def test_predict_arguments_with_and_without_a_server(tmp_path, capsys):
    picture = tmp_path / "a.png"
    from PIL import Image

    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(picture)
    assert main(["predict", str(picture), "-o", str(tmp_path / "out")]) == 2  # MODEL only: no INPUT
    assert "no INPUT given" in capsys.readouterr().err
    assert main(["predict", "--server", "127.0.0.1:1", str(picture), "--show-merges", "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "--show-merges cannot be used with a server" in err and err.count("\n") == 1
    assert main(["predict", "--server", "http://127.0.0.1:8000", str(picture), "-o", str(tmp_path / "o")]) == 2
    assert "gRPC address" in capsys.readouterr().err
    assert not (tmp_path / "out").exists() and not (tmp_path / "o").exists()


def test_serve_without_the_serve_extra_is_one_line(monkeypatch, capsys, tmp_path):
    import sys

    monkeypatch.setitem(sys.modules, "pytriton", None)  # as if nvidia-pytriton were not installed
    assert main(["serve", str(tmp_path / "model.onnx")]) == 2
    err = capsys.readouterr().err
    assert "pip install 'algm-export[serve]'" in err and err.count("\n") == 1


# As the bundled tritonserver said it (PyTriton 0.7's proxy, one instance of algm_segment refused):
RACE = ("[400] load failed for model 'algm_segment': version 1 is at UNAVAILABLE state: Internal: "
        "TritonModelException: Model initialize error: Traceback (most recent call last):\n"
        "  File \"/tmp/folderWgZ1Af/1/model.py\", line 425, in initialize\n"
        "    inference_handler_config = get_config_from_handshake_server(handshake_socket)\n"
        "  File \"/tmp/folderWgZ1Af/1/communication.py\", line 550, in get_config_from_handshake_server\n"
        "    sock.connect(socket_path.as_posix())\nConnectionRefusedError: [Errno 111] Connection refused\n")


def _stand_in_pytriton(monkeypatch, failures: list[str]) -> list[str]:
    """Install a stand-in ``pytriton`` whose Triton.run() raises ``failures`` in turn, then starts; returns the
    log of starts, stops and serves."""
    import sys
    import types

    log: list[str] = []

    class Triton:
        def __init__(self, **settings):
            pass

        def __enter__(self):
            log.append("start")
            return self

        def __exit__(self, *exc):
            log.append("stop")

        def bind(self, *args, **kwargs):
            pass

        def run(self):
            if failures:
                raise RuntimeError(failures.pop(0))

        def serve(self):
            log.append("serve")

    settings = types.ModuleType("pytriton.model_config")
    settings.DynamicBatcher = settings.ModelConfig = settings.Tensor = lambda *args, **kwargs: None
    triton = types.ModuleType("pytriton.triton")
    triton.Triton, triton.DEFAULT_PROTECTED_ENDPOINTS = Triton, ["statistics", "model-repository"]
    triton.TritonConfig = triton.TritonSecurityConfig = lambda **kwargs: None
    monkeypatch.setitem(sys.modules, "pytriton", types.ModuleType("pytriton"))
    monkeypatch.setitem(sys.modules, "pytriton.model_config", settings)
    monkeypatch.setitem(sys.modules, "pytriton.triton", triton)
    return log


@pytest.mark.parametrize("failures, starts, served", [([], 1, True), ([RACE], 2, True), ([RACE, RACE], 3, True),
                                                        ([RACE, RACE, RACE], 3, False),
                                                        (["load failed: ModuleNotFoundError: No module named x"], 1,
                                                         False)])
def test_only_pytritons_handshake_race_restarts_the_server(monkeypatch, capsys, failures, starts, served):
    """PyTriton's start-up race (a second model instance refused by the first one's handshake socket) restarts the
    server, at most START_ATTEMPTS times in all; any other load failure is raised at once."""
    import argparse
    import types

    from algm_export.serving import server

    log = _stand_in_pytriton(monkeypatch, list(failures))
    monkeypatch.setattr(server, "window_tensors", lambda backend: [])
    closed = [0]

    class SegmentModel:
        def __init__(self, *args):
            pass

        def close(self):
            closed[0] += 1

    monkeypatch.setattr(server, "SegmentModel", SegmentModel)
    info = types.SimpleNamespace(image_size=(32, 32), to_json=lambda: "{}")
    backend = types.SimpleNamespace(info=info, name="stand-in")
    args = argparse.Namespace(host="127.0.0.1", port=8000, max_batch=4, image_instances=2, max_pixels=1 << 20,
                              verbose=False)
    if served:
        server.serve(backend, args)
    else:
        with pytest.raises(RuntimeError, match="load failed"):
            server.serve(backend, args)
    assert log == ["start", "stop"] * (starts - 1) + (["start", "serve", "stop"] if served else ["start", "stop"])
    assert capsys.readouterr().err.count("handshake raced") == starts - 1
    assert closed == [2], "each image instance is closed once, after the last start"
