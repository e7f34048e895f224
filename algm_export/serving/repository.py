"""``algm-export triton DIR -o REPO``: a Triton model repository from an exported folder.

Models written (each ``<name>/config.pbtxt`` + ``<name>/1/<file>``):
  algm_onnx      ONNX Runtime backend, the portable graph model.onnx (standard ops only), dynamic batching
  algm_onnx_ops  with --ort-ops: model.trt.onnx whose algm nodes run libalgm_ort_ops.so (copied in)
  algm_trt       where DIR has model.fp16.plan (algm_trt_int8 for model.fp16.int8.plan): TensorRT backend
  algm_segment   Python backend (BLS): whole image in, labels at its own size out, windows on the core model
"""

from __future__ import annotations

import argparse
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..artifacts import AUTOREGISTER_LIBRARY, INPUT_NAME, PLUGIN_GRAPH, PORTABLE_GRAPH, read_sidecar, sidecar_path
from ..backends import ENGINES, ORT_OPS, ORT_PORTABLE
from ..errors import AlgmExportError
from ..files import output_path, replaced_folder, write_atomically
from .model_config import ModelConfig, TensorSpec, check_config, graph_tensors, metadata_parameters
from .requests import MAX_SERVED_PIXELS

ONNX_MODEL, OPS_MODEL = ORT_PORTABLE.triton_model, ORT_OPS.triton_model  # backends.py's rows
SEGMENT_MODEL = "algm_segment"
MARKER = "triton_repository.json"  # at the repository's root: what wrote it (Triton ignores plain files there)
ORT_OPS_API = 21  # ORT_API_VERSION of the headers .ci/run builds libalgm_ort_ops.so against (ONNX Runtime 1.21)
TRT_TYPES = {"DataType.FLOAT": "TYPE_FP32", "DataType.HALF": "TYPE_FP16", "DataType.INT32": "TYPE_INT32",
             "DataType.INT64": "TYPE_INT64", "DataType.UINT8": "TYPE_UINT8", "float32": "TYPE_FP32"}


@dataclass(frozen=True)
class RepositoryOptions:
    """Settings of ``algm-export triton``."""

    max_batch: int = 8
    ort_ops: Path | None = None
    root: str = "/models"  # the repository's path as the server sees it (op libraries are dlopened by path)
    segment_instances: int = 2


@dataclass
class WrittenModel:
    """A model written into the repository and what its config must match."""

    config: ModelConfig
    files: dict[str, Path | bytes]  # name under <model>/ -> source file or contents
    note: str = ""


def onnx_model(folder: Path, options: RepositoryOptions, info_json: str, batch_rule: str) -> WrittenModel:
    """algm_onnx: the portable graph in the ONNX Runtime backend."""
    inputs, outputs = graph_tensors(folder / PORTABLE_GRAPH)
    config = ModelConfig(ONNX_MODEL, inputs, outputs, options.max_batch, backend="onnxruntime",
                         dynamic_batching=batch_rule != "min", parameters=metadata_parameters(info_json))
    return WrittenModel(config, {"1/model.onnx": folder / PORTABLE_GRAPH})


def ops_model(folder: Path, options: RepositoryOptions, info_json: str, batch_rule: str) -> WrittenModel:
    """algm_onnx_ops: model.trt.onnx with its algm nodes on libalgm_ort_ops.so (copied into the model folder;
    Triton dlopens the path written here, as the server sees it)."""
    library = options.ort_ops
    if not library.is_file():
        raise AlgmExportError(f"--ort-ops {library}: no such file")
    graph = folder / PLUGIN_GRAPH
    if not graph.is_file():
        raise AlgmExportError(f"{folder}: no {PLUGIN_GRAPH} for --ort-ops (re-export the folder)")
    inputs, outputs = graph_tensors(graph)
    config = ModelConfig(OPS_MODEL, inputs, outputs, options.max_batch, backend="onnxruntime",
                         default_model_filename=PLUGIN_GRAPH, dynamic_batching=batch_rule != "min",
                         op_libraries=[f"{options.root.rstrip('/')}/{OPS_MODEL}/{library.name}"],
                         parameters=metadata_parameters(info_json))
    note = (f"{library.name} is dlopened by Triton's ONNX Runtime backend from {config.op_libraries[0]}; built "
            f"against ONNX Runtime API {ORT_OPS_API} (1.{ORT_OPS_API}) by .ci/run: it needs a Triton release whose "
            f"ONNX Runtime is 1.{ORT_OPS_API} or newer (a library built against a newer ONNX Runtime than the "
            "server's fails to load: \"Unsupported version\").")
    import onnx

    from ..export.graph_edits import strip_functions

    # Without its function bodies, so that no algm node can fall back to standard ops: the library must serve.
    stripped = strip_functions(onnx.load(graph)).SerializeToString()
    return WrittenModel(config, {f"1/{PLUGIN_GRAPH}": stripped, library.name: library}, note)


def trt_models(folder: Path, options: RepositoryOptions) -> list[WrittenModel]:
    """algm_trt (model.fp16.plan) and algm_trt_int8 (model.fp16.int8.plan), where they exist."""
    models = []
    for kind in ENGINES.values():
        name, plan = kind.triton_model, folder / kind.engine
        if not plan.is_file():
            continue
        sidecar = read_sidecar(plan)
        try:
            inputs = [_trt_spec(sidecar["input"])]
            outputs = [_trt_spec(output) for output in sidecar["outputs"]]
            profile_max = int(sidecar["batch_profile"]["max"])
            version = sidecar["tensorrt_version"]
            deployment = json.dumps(sidecar["deployment"], separators=(",", ":"))
            plugin = Path(sidecar.get("plugin_library") or AUTOREGISTER_LIBRARY)
        except (KeyError, TypeError, ValueError) as error:
            raise AlgmExportError(f"{sidecar_path(plan)}: damaged sidecar ({error!r})") from error
        config = ModelConfig(name, inputs, outputs, profile_max, platform="tensorrt_plan", instance_kind="KIND_GPU",
                             parameters=metadata_parameters(deployment))
        files = {"1/model.plan": plan}
        autoreg = plugin.with_name(AUTOREGISTER_LIBRARY)
        if autoreg.is_file():
            files[AUTOREGISTER_LIBRARY] = autoreg
        root = options.root.rstrip("/")
        int64 = [spec.name for spec in outputs if spec.data_type == "TYPE_INT64"]
        note = (f"built with TensorRT {version}: serve it with the Triton release whose TensorRT is exactly {version} "
                f"(engines do not load across versions: \"Version tag does not match\"). Start line:\n"
                f"  tritonserver --model-repository={root} "
                f"--backend-config=tensorrt,plugins={root}/{name}/{AUTOREGISTER_LIBRARY}\n"
                f"(or LD_PRELOAD={root}/{name}/{AUTOREGISTER_LIBRARY} tritonserver ...). The TensorRT backend only "
                f"dlopens the library: {AUTOREGISTER_LIBRARY} registers its creators when loaded (libalgm_plugins.so "
                "does not: it is for IPluginRegistry::loadLibrary)."
                + (" " + ", ".join(int64) + " is INT64: the TensorRT backend takes INT64 I/O from Triton 24.05 "
                   "(TensorRT 10 API) on; older releases need an engine with an INT32 output." if int64 else "")
                + ("" if autoreg.is_file() else f" {AUTOREGISTER_LIBRARY} was not found beside {plugin}: copy it in."))
        models.append(WrittenModel(config, files, note))
    return models


def _trt_spec(entry: dict) -> TensorSpec:
    shape = [int(d) for d in entry["shape"]]
    if not shape or shape[0] != -1:
        raise ValueError(f"{entry['name']} has no dynamic batch dimension: {shape}")
    return TensorSpec(entry["name"], TRT_TYPES[str(entry["dtype"])], tuple(shape[1:]))


def segment_model(options: RepositoryOptions, core: str, info_json: str, window_batch: int) -> WrittenModel:
    """algm_segment: the Python-backend (BLS) whole-image model over ``core``."""
    inputs = [TensorSpec("image", "TYPE_UINT8", (-1, -1, 3), optional=True),
              TensorSpec("encoded", "TYPE_UINT8", (-1,), optional=True)]
    outputs = [TensorSpec("labels", "TYPE_INT32", (-1, -1)), TensorSpec("token_counts", "TYPE_INT64", (-1, -1))]
    parameters = {"core_model": core, "window_batch": str(window_batch), "max_pixels": str(MAX_SERVED_PIXELS),
                  **metadata_parameters(info_json)}
    config = ModelConfig(SEGMENT_MODEL, inputs, outputs, 0, backend="python", dynamic_batching=False,
                         instance_count=options.segment_instances, parameters=parameters)
    source = Path(__file__).with_name("triton_segment_model.py")
    note = ("Python backend: the server's Python needs algm-export (pip install algm-export); windows run on "
            f"{core} through BLS.")
    return WrittenModel(config, {"1/model.py": source}, note)


def plan_repository(folder: Path, options: RepositoryOptions) -> list[WrittenModel]:
    """The models to write for the exported ``folder``; AlgmExportError when it is not one."""
    from ..deployment import DeploymentInfo

    if options.max_batch < 1:
        raise AlgmExportError(f"--max-batch must be >= 1, got {options.max_batch}")
    if options.segment_instances < 1:
        raise AlgmExportError(f"--segment-instances must be >= 1, got {options.segment_instances}")
    if not folder.is_dir():
        raise AlgmExportError(f"{folder}: no such folder (DIR is an exported folder, e.g. algm_export_out/)")
    portable = folder / PORTABLE_GRAPH
    if not portable.is_file():
        raise AlgmExportError(f"{folder}: no {PORTABLE_GRAPH}; is it a folder written by algm-export?")
    import onnx

    info = DeploymentInfo.from_onnx(str(portable), onnx.load(portable, load_external_data=False))
    info_json = info.to_json()
    batch_rule = info.algm.batch_rule if info.algm else "dense"
    models = [onnx_model(folder, options, info_json, batch_rule)]
    if options.ort_ops is not None:
        models.append(ops_model(folder, options, info_json, batch_rule))
    models += trt_models(folder, options)
    window_batch = models[0].config.max_batch_size
    models.append(segment_model(options, ONNX_MODEL, info_json, window_batch))
    if batch_rule == "min":
        models[0].note = ("batch rule min: windows batched together would share r, so dynamic batching is off "
                          "(re-export with --batch-rule per-image to batch concurrent requests safely)")
    if INPUT_NAME not in {spec.name for spec in models[0].config.inputs}:
        raise AlgmExportError(f"{portable}: no input named {INPUT_NAME!r}")
    return models


def write_repository(folder: Path, output: Path, options: RepositoryOptions) -> list[WrittenModel]:
    """Write the repository for ``folder`` to ``output`` (replaced as a whole; kept as it was on any error)."""
    if output_path(output).resolve() == folder.resolve():
        raise AlgmExportError(f"-o {output}: is the export folder {folder} itself; the repository goes to a "
                              "folder of its own")
    models = plan_repository(folder, options)
    with replaced_folder(output, keep=(), command="triton") as staging:
        for model in models:
            target = staging / model.config.name
            (target / "1").mkdir(parents=True)
            write_atomically(target / "config.pbtxt", lambda p, m=model: p.write_text(m.config.render()))
            for name, source in model.files.items():
                if isinstance(source, bytes):
                    (target / name).write_bytes(source)
                else:
                    shutil.copy2(source, target / name)
        summary = {"source": str(folder.absolute()), "models": {m.config.name: m.note for m in models},
                   "repository_root": options.root}
        (staging / MARKER).write_text(json.dumps(summary, indent=2))
        (staging / "README.md").write_text(repository_readme(models, options))
    return models


def repository_readme(models: list[WrittenModel], options: RepositoryOptions) -> str:
    """What each model is and how to start a server on the repository."""
    lines = ["# Triton model repository written by algm-export", "",
             f"Start: `tritonserver --model-repository={options.root}` (the repository mounted at {options.root}).", ""]
    for model in models:
        lines += [f"## {model.config.name}", "", model.note or "(no extra requirements)", ""]
    return "\n".join(lines)


def verify_repository(output: Path, models: list[WrittenModel]) -> bool:
    """Check every written config.pbtxt with Triton's schema and against its model's tensors; False when
    tritonclient (the serve extra) is not installed, so the schema could not be checked."""
    try:
        import tritonclient.grpc.model_config_pb2  # noqa: F401
    except ImportError:
        return False
    for model in models:
        path = output / model.config.name / "config.pbtxt"
        check_config(path.read_text(), str(path), model.config.inputs, model.config.outputs)
    return True


def triton_command(args: argparse.Namespace) -> int:
    """Run ``algm-export triton``; returns the exit code."""
    options = RepositoryOptions(args.max_batch, args.ort_ops, args.repository_root, args.segment_instances)
    models = write_repository(args.folder, args.output, options)
    checked = verify_repository(args.output, models)
    print(f"wrote the Triton model repository {args.output}/: {', '.join(m.config.name for m in models)}")
    for model in models:
        if model.note:
            print(f"  {model.config.name}: {model.note}")
    print("  config.pbtxt files checked with Triton's schema" if checked else
          "  (schema not checked: pip install 'algm-export[serve]' for tritonclient)")
    print(f"start: tritonserver --model-repository={options.root}  (with {args.output} mounted there)")
    return 0
