"""tools/gpu_check.sh on a machine without a GPU: every GPU stage skipped with its reason, the summary's shape,
the time bound, and a stage that runs and fails making the exit code 1. Also the travelling fixtures: small,
complete, and judged as the GPU side will judge an engine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tools" / "gpu_check.sh"
sys.path.insert(0, str(ROOT / "tools"))

from gpu_check import __main__ as driver  # noqa: E402
from gpu_check.context import Context, StageFailed, StageSkipped  # noqa: E402
from gpu_check.fixtures import FIXTURES, GATES, GRAPHS, judge, load_expected, load_inputs  # noqa: E402
from gpu_check.native import parse_cuda_check  # noqa: E402
from gpu_check.stages import trtexec_plugin_share  # noqa: E402

STAGES = ("machine", "cuda_kernels", "tensorrt", "pipeline")
STAGE_KEYS = {"name", "status", "reason", "seconds", "figures"}
FIXTURE_LIMIT = 5_000_000  # bytes: what travels to the GPU machine with the tree must stay small


def fake_bin(folder: Path, gpu: bool, nvcc_works: bool) -> Path:
    """A folder to put first on PATH: an nvidia-smi that lists an H200 (or fails), an nvcc that fails."""
    folder.mkdir()
    smi = folder / "nvidia-smi"
    smi.write_text("#!/bin/sh\necho 'NVIDIA H200, 580.159.03, 143771 MiB, 9.0'\n" if gpu
                   else "#!/bin/sh\necho 'NVIDIA-SMI has failed because it could not communicate with the driver' >&2\n"
                        "exit 9\n")
    if not nvcc_works:
        (folder / "nvcc").write_text("#!/bin/sh\necho 'nvcc: broken' >&2\nexit 1\n")
    for tool in folder.iterdir():
        tool.chmod(0o755)
    return folder


def run_script(tmp_path: Path, env_path: str | None = None, *args: str) -> tuple[subprocess.CompletedProcess, dict]:
    """Run tools/gpu_check.sh with OUT=tmp_path/out; (the process, summary.json)."""
    env = {**os.environ, "OUT": str(tmp_path / "out")}
    if env_path:
        env["PATH"] = env_path
    done = subprocess.run([str(SCRIPT), "--work", str(tmp_path / "work"), *args], capture_output=True, text=True,
                          env=env, timeout=300, cwd=tmp_path)
    return done, json.loads((tmp_path / "out" / "summary.json").read_text())


def check_shape(summary: dict) -> None:
    """summary.json: its keys, and every stage with a known status, a reason when not passed, figures."""
    assert {"schema", "finished", "seconds", "budget_seconds", "gpu", "exit_code", "stages"} <= set(summary)
    assert list(summary["stages"]) == list(STAGES)
    for name, stage in summary["stages"].items():
        assert set(stage) == STAGE_KEYS and stage["name"] == name
        assert stage["status"] in ("passed", "failed", "skipped")
        assert isinstance(stage["figures"], dict) and isinstance(stage["seconds"], (int, float))
        if stage["status"] != "passed":
            assert stage["reason"].strip(), f"{name} is {stage['status']} without a reason"


def test_no_gpu_here_every_gpu_stage_skipped_with_reason(tmp_path):
    fakes = fake_bin(tmp_path / "bin", gpu=False, nvcc_works=True)
    start = time.monotonic()
    done, summary = run_script(tmp_path, f"{fakes}:{os.environ['PATH']}")
    elapsed = time.monotonic() - start
    assert done.returncode == 0, done.stdout + done.stderr
    check_shape(summary)
    stages = summary["stages"]
    assert summary["finished"] and summary["exit_code"] == 0 and summary["gpu"] is None
    assert stages["machine"]["status"] == "passed"
    assert "nvidia-smi lists no GPU" in stages["machine"]["figures"]["gpu_reason"]
    for name in ("cuda_kernels", "tensorrt", "pipeline"):
        assert stages[name]["status"] == "skipped"
        assert stages[name]["reason"].startswith("no GPU: nvidia-smi lists no GPU")
    # TensorRT is absent here too: the reason lists it, so one look says what a GPU machine must bring.
    assert "libnvinfer.so) not found" in stages["tensorrt"]["reason"]
    assert "TensorRT's Python package is not installed" in stages["pipeline"]["reason"]
    table = (tmp_path / "out" / "summary.txt").read_text()
    assert all(f"{name:<13} skipped" in table for name in ("cuda_kernels", "tensorrt", "pipeline"))
    assert (tmp_path / "out" / "gpu_check.log").stat().st_size > 0
    # Time bound: with nothing to build, the whole run is the machine record (seconds, not minutes).
    assert elapsed < 120 and summary["seconds"] <= summary["budget_seconds"]


def test_stage_that_runs_and_fails_makes_exit_code_1(tmp_path):
    # nvidia-smi says there is a GPU, so the CUDA stage runs; the broken nvcc makes its build fail.
    fakes = fake_bin(tmp_path / "bin", gpu=True, nvcc_works=False)
    done, summary = run_script(tmp_path, f"{fakes}:{os.environ['PATH']}")
    assert done.returncode == 1, done.stdout + done.stderr
    check_shape(summary)
    stages = summary["stages"]
    assert summary["gpu"] == "NVIDIA H200" and summary["exit_code"] == 1
    assert stages["cuda_kernels"]["status"] == "failed"
    assert "cmake configure of plugins/ failed" in stages["cuda_kernels"]["reason"]
    assert stages["tensorrt"]["reason"].startswith("needs the CUDA kernels (stage cuda_kernels failed)")


def test_budget_spent_skips_the_remaining_stages(tmp_path):
    def slow(context: Context) -> dict:
        context.run(["sleep", "30"], 30)  # bounded by what is left of the budget, not by its own 30 s
        return {}

    stages = (driver.Stage("machine", "slow", slow, 0), driver.Stage("cuda_kernels", "next", lambda c: {}, 5))
    start = time.monotonic()
    code = driver.run(tmp_path / "out", budget=2, stages=stages, build=tmp_path / "work")
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert time.monotonic() - start < 15
    assert code == 0
    assert summary["stages"]["cuda_kernels"]["status"] == "skipped"
    assert summary["stages"]["cuda_kernels"]["reason"].startswith("time budget spent")


def test_failures_timeouts_and_crashes_are_failed_stages(tmp_path):
    def timed_out(context: Context) -> dict:
        context.require(context.run(["sleep", "10"], 1), "sleeping")
        return {}

    def crashes(context: Context) -> dict:
        raise KeyError("missing")

    def fails(context: Context) -> dict:
        raise StageFailed("it broke", {"measured": 3})

    def skips(context: Context) -> dict:
        raise StageSkipped("not here")

    stages = tuple(driver.Stage(name, name, run, 0) for name, run in
                   (("timeout", timed_out), ("crash", crashes), ("fail", fails), ("skip", skips)))
    code = driver.run(tmp_path / "out", budget=60, stages=stages, build=tmp_path / "work")
    results = json.loads((tmp_path / "out" / "summary.json").read_text())["stages"]
    assert code == 1
    assert results["timeout"]["status"] == "failed" and "sleeping timed out" in results["timeout"]["reason"]
    assert results["crash"]["status"] == "failed" and results["crash"]["reason"].startswith("KeyError")
    assert results["fail"] == {"name": "fail", "status": "failed", "reason": "it broke", "seconds": 0.0,
                               "figures": {"measured": 3}}
    assert results["skip"]["status"] == "skipped" and results["skip"]["reason"] == "not here"


def test_only_skips_exit_0(tmp_path):
    stages = (driver.Stage("a", "a", lambda c: (_ for _ in ()).throw(StageSkipped("no")), 0),)
    assert driver.run(tmp_path / "out", budget=10, stages=stages, build=tmp_path / "work") == 0


def test_bad_budget_is_a_usage_error(tmp_path):
    done = subprocess.run([str(SCRIPT), "--budget", "0", "--out", str(tmp_path)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2 and "--budget must be positive" in done.stderr
    assert not (tmp_path / "summary.json").exists()


def test_cuda_check_output_parsed():
    output = ("GPU: NVIDIA H200 (sm_90)\n\n"
              "ok   local_merge  photo-like B1 32x32 C192 fp32 min   T'=641 (int64 = int32)\n"
              "FAIL global_merge random T64 fp16 min               token maps differ\n\n"
              "median of 20 runs (ms), grid 32x32, window 2x2, threshold 0.88, GBM layer 5\n"
              "dtype     B     C | local_merge      T' | global_merge     T' | unmerge \n"
              "fp32      1   384 |       0.0210    641 |       0.0300    500 |   0.0100\n\nFAIL: 1 mismatches\n")
    figures = parse_cuda_check(output)
    assert figures["gpu"] == "NVIDIA H200 (sm_90)"
    assert figures["comparisons"] == 2 and figures["mismatches"] == 1
    assert figures["first_mismatches"] == ["FAIL global_merge random T64 fp16 min               token maps differ"]
    assert len(figures["timings"]) == 3


def test_trtexec_profile_share():
    profile = [{"count": 50}, {"name": "algm/LocalMerge_0", "averageMs": 0.02}, {"name": "matmul", "averageMs": 0.06},
               {"name": "algm/Unmerge_2", "averageMs": 0.02}]
    assert trtexec_plugin_share(profile) == {"layers_ms": 0.1, "plugin_ms": 0.04, "plugin_share": 0.4}


def test_fixtures_are_small_and_complete():
    files = {path.name: path.stat().st_size for path in FIXTURES.iterdir()}
    assert set(GRAPHS.values()) | {"inputs.npz", "expected.npz", "manifest.json", "functions.onnx"} <= set(files)
    assert sum(files.values()) < FIXTURE_LIMIT
    import onnx

    for name in GRAPHS.values():
        model = onnx.load(FIXTURES / name)
        merges = [node for node in model.graph.node if node.domain == "algm"]
        assert [node.op_type for node in merges] == ["LocalMerge", "GlobalMerge", "Unmerge"]
        assert not model.functions  # stripped: TensorRT must resolve every algm node to a plugin
    if "fp16_int8" in GRAPHS:
        model = onnx.load(FIXTURES / GRAPHS["fp16_int8"])
        assert any(node.op_type == "QuantizeLinear" for node in model.graph.node)


def test_fixture_inputs_match_the_package_preprocessing():
    from algm_export.config import Normalization
    from algm_export.preprocess import make_batch

    images, names = load_inputs()
    with np.load(FIXTURES / "inputs.npz") as data:
        photos, mean, std = data["photos"], data["mean"], data["std"]
    expected = make_batch(list(photos), photos.shape[1:3],
                          Normalization("stored", tuple(map(float, mean)), tuple(map(float, std))))
    assert names == ["astronaut", "chelsea", "coffee", "rocket"]
    # Identical float32 operations on both sides, so the GPU side feeds exactly what ONNX Runtime was fed.
    assert np.array_equal(images, expected)


def test_judge_passes_the_reference_and_fails_wrong_outputs():
    expected = load_expected()
    for key in GATES:
        labels, counts = expected[f"{key}.labels"], expected[f"{key}.token_counts"]
        verdict = judge(key, labels, counts, expected)
        assert verdict["passed"] and verdict["token_counts_equal"], verdict["failures"]
        # Another photo's labels: what an engine computing the wrong rows would look like.
        wrong = judge(key, np.roll(labels, 1, axis=0), counts, expected)
        assert not wrong["passed"] and len(wrong["failures"]) == len(labels)
        # Counts moved by more than the tolerance (10 % of every count) fail; by one token they pass.
        moved = judge(key, labels, counts + np.maximum(counts // 10, 2), expected)
        assert not moved["passed"] and all("tokens vs ONNX Runtime" in f for f in moved["failures"])
        one_off = judge(key, labels, counts + 1, expected)
        assert one_off["passed"] and not one_off["token_counts_equal"]
        shape = judge(key, labels[:2], counts, expected)
        assert not shape["passed"] and shape["failures"][0].startswith("shapes")


def test_int64_size_variant_declares_int64_size_tensors(tmp_path):
    import onnx
    from gpu_check.engines import ONNX_INT64, int64_size_graph

    path = int64_size_graph(FIXTURES / GRAPHS["fp16"], tmp_path / "size_int64.onnx")
    model = onnx.load(path)
    merges = [node for node in model.graph.node if node.op_type in ("LocalMerge", "GlobalMerge")]
    types = {info.name: info.type.tensor_type.elem_type for info in model.graph.value_info}
    assert len(merges) == 2
    for node in merges:
        attributes = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        assert attributes["size_dtype"] == ONNX_INT64
        assert types[node.output[-1]] == onnx.TensorProto.INT64
    original = onnx.load(FIXTURES / GRAPHS["fp16"])
    assert len(original.graph.node) == len(model.graph.node)


def test_plugin_share_by_inspector_type_or_by_name():
    from gpu_check.engines import PROFILED_RUNS, plugin_share

    times = {"algm/LocalMerge_0": 1.0 * PROFILED_RUNS, "gemm": 3.0 * PROFILED_RUNS, "custom": 1.0 * PROFILED_RUNS}
    by_name = plugin_share(times, None)
    assert by_name["plugin_share"] == 0.2 and by_name["classified_by"] == "layer name"
    by_type = plugin_share(times, {"algm/LocalMerge_0", "custom"})
    assert by_type["plugin_share"] == 0.4 and by_type["plugin_ms_per_run"] == 2.0
    assert plugin_share({}, None)["plugin_share"] is None


class FakeCuda:
    """Host memory standing in for the device: what gpu_check.engines.Runner needs of Cuda."""

    def __init__(self):
        self.buffers: dict[int, object] = {}

    def malloc(self, size):
        import ctypes

        buffer = ctypes.create_string_buffer(max(size, 1))
        self.buffers[ctypes.addressof(buffer)] = buffer
        return ctypes.addressof(buffer)

    def free(self, pointer):
        self.buffers.pop(pointer)

    def copy(self, destination, source, size, kind):
        import ctypes

        ctypes.memmove(destination, source, size)

    def stream(self):
        return 0

    def synchronize(self, stream):
        pass

    def time_ms(self, enqueue, stream, runs):
        for _ in range(runs):
            enqueue()
        return [0.5] * runs


def fake_tensorrt(outputs: dict[str, np.ndarray], host_outputs: set[str]):
    """A stand-in for TensorRT's Python module whose engine writes ``outputs`` (rows of the batch it is given)
    into the addresses it was handed, and reports two layer times to a profiler."""
    import ctypes
    import types

    trt = types.SimpleNamespace()
    trt.TensorIOMode = types.SimpleNamespace(INPUT="input", OUTPUT="output")
    trt.TensorLocation = types.SimpleNamespace(HOST="host", DEVICE="device")
    trt.LayerInformationFormat = types.SimpleNamespace(JSON="json")
    trt.nptype = lambda dtype: dtype
    trt.IProfiler = type("IProfiler", (), {"__init__": lambda self: None})
    names = ["images", *outputs]

    class Context:
        profiler = None

        def __init__(self):
            self.addresses, self.batch = {}, None

        def set_input_shape(self, name, shape):
            self.batch = shape[0]

        def get_tensor_shape(self, name):
            return (self.batch, *outputs[name].shape[1:])

        def set_tensor_address(self, name, address):
            self.addresses[name] = address

        def execute_async_v3(self, stream):
            for name, array in outputs.items():
                rows = np.ascontiguousarray(array[: self.batch])
                ctypes.memmove(self.addresses[name], rows.ctypes.data, rows.nbytes)
            if self.profiler is not None:
                self.profiler.report_layer_time("algm/LocalMerge_0", 0.25)
                self.profiler.report_layer_time("gemm", 0.75)
            return True

    class Engine:
        num_io_tensors = len(names)

        def get_tensor_name(self, index):
            return names[index]

        def get_tensor_mode(self, name):
            return "input" if name == "images" else "output"

        def get_tensor_location(self, name):
            return "host" if name in host_outputs else "device"

        def get_tensor_dtype(self, name):
            return outputs[name].dtype

        def create_execution_context(self):
            return Context()

        def create_engine_inspector(self):
            layers = {"Layers": [{"Name": "algm/LocalMerge_0", "LayerType": "PluginV3"}, {"Name": "gemm"}]}
            return types.SimpleNamespace(get_engine_information=lambda fmt: json.dumps(layers))

    trt.Runtime = lambda logger: types.SimpleNamespace(deserialize_cuda_engine=lambda plan: Engine())
    return trt


@pytest.mark.parametrize("wrong", [False, True])
def test_check_engine_runs_judges_times_and_profiles(monkeypatch, wrong):
    from gpu_check import engines

    expected = load_expected()
    images, _ = load_inputs()
    labels = expected["fp16.labels"].astype(np.int32)
    outputs = {"labels": np.roll(labels, 1, axis=0) if wrong else labels,
               "token_counts": expected["fp16.token_counts"].astype(np.int64),
               "token_maps": expected["fp16.token_maps"].astype(np.int32)}
    monkeypatch.setattr(engines, "build", lambda *args: (b"plan", 1.5))
    trt = fake_tensorrt(outputs, host_outputs={"token_counts"})
    result = engines.check_engine(trt, None, FakeCuda(), "fp16", FIXTURES / GRAPHS["fp16"], images, expected)
    assert result["passed"] is (not wrong)
    assert result["deterministic"] and result["token_counts_equal"]
    assert result["latency_ms_batch"] == {"batch": 4, "median": 0.5, "min": 0.5, "runs": engines.TIMED_RUNS}
    assert result["batch1_equals_batch4_row0"] == {"labels": 1.0, "token_counts": True}
    assert result["plugin_layers_in_engine"] == ["algm/LocalMerge_0"]
    assert result["profile"]["plugin_share"] == 0.25
    assert result["token_counts_location"] == "host"


def test_function_bodies_variant_reattaches_the_exported_bodies(tmp_path):
    import onnx
    from gpu_check.engines import with_function_bodies
    from gpu_check.fixtures import FUNCTIONS

    model = onnx.load(with_function_bodies(FIXTURES / GRAPHS["fp16"], FIXTURES / FUNCTIONS, tmp_path / "f.onnx"))
    assert {"LocalMerge", "GlobalMerge", "Unmerge"} <= {function.name for function in model.functions}
    assert "algm.impl" in {entry.domain for entry in model.opset_import}
    assert len({entry.domain for entry in model.opset_import}) == len(model.opset_import)  # no duplicate imports


def test_package_shim_maps_calibration_like_setup_py(tmp_path):
    from gpu_check.stages import package_shim, python_env

    context = Context(out=tmp_path, build=tmp_path / "work", deadline=time.monotonic() + 60)
    shim = package_shim(context)
    env = {**os.environ, **python_env(shim)}
    done = subprocess.run([sys.executable, "-c", "import algm_export.calibration.cache as c;"
                           "print(c.__file__)"], capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(shim / "algm_export" / "calibration" / "cache.py")
    assert Path(done.stdout.strip()).resolve() == ROOT / "calibration" / "cache.py"


@pytest.mark.parametrize("key", sorted(GRAPHS))
def test_fixture_graphs_with_their_bodies_reproduce_the_stored_outputs(tmp_path, key):
    """The stored outputs belong to the stored graphs: ONNX Runtime, run here on the graph with its function
    bodies re-attached, passes the same judgement an engine must pass (the gates, not equality: this CPU's
    SIMD path may differ from the one that wrote them)."""
    from gpu_check.engines import with_function_bodies
    from gpu_check.fixtures import FUNCTIONS

    from algm_export.runtime.onnxruntime_backend import OnnxRuntimeBackend

    graph = with_function_bodies(FIXTURES / GRAPHS[key], FIXTURES / FUNCTIONS, tmp_path / "graph.onnx")
    images, _ = load_inputs()
    prediction = OnnxRuntimeBackend(graph).run(images, ("labels",))
    verdict = judge(key, prediction.outputs["labels"], prediction.token_counts, load_expected())
    assert verdict["passed"], verdict["failures"]


@pytest.mark.slow
def test_cuda_stage_builds_and_runs_the_check_for_the_reported_card(tmp_path):
    """With nvcc here and an nvidia-smi reporting an H200 (compute capability 9.0): CMake's native detection
    finds no GPU, so the stage names sm_90 itself, builds algm_cuda_check and runs it, which finds no GPU
    and exits 77: a skip with the tool's own reason (a minute or more of nvcc on 2 cores)."""
    import shutil

    if shutil.which("nvcc") is None:
        pytest.skip("nvcc not found")
    if Path("/dev/nvidia0").exists():
        pytest.skip("a real GPU is present: CMake would detect it and the check would really run")
    fakes = fake_bin(tmp_path / "bin", gpu=True, nvcc_works=True)
    done, summary = run_script(tmp_path, f"{fakes}:{os.environ['PATH']}")
    stage = summary["stages"]["cuda_kernels"]
    assert done.returncode == 0, done.stdout + done.stderr
    assert stage["status"] == "skipped" and stage["reason"].startswith("algm_cuda_check found no usable GPU")
    assert stage["figures"]["architectures"].startswith("90-real")
    assert (tmp_path / "work" / "plugins" / "core" / "algm_cuda_check").is_file()


def test_stages_option_runs_only_the_selected_ones(tmp_path):
    done, summary = run_script(tmp_path, None, "--stages", "machine")
    assert done.returncode == 0, done.stderr
    check_shape(summary)
    assert summary["stages"]["machine"]["status"] == "passed"
    assert all(summary["stages"][name]["reason"] == "not selected (--stages)" for name in STAGES[1:])
    bad = subprocess.run([str(SCRIPT), "--stages", "machine,gpu", "--out", str(tmp_path / "bad")],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "unknown stage gpu" in bad.stderr and not (tmp_path / "bad").exists()
